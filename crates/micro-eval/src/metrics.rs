//! The pairwise metrics: the mixture's preference probability, its correctness, log-loss, and
//! mean ± std over runs.
//!
//! A pair is right when the mixture prefers the chosen response, P = sum_k f_k sigma(delta_k) > 1/2.
//! Because sigma(d) - 1/2 = tanh(d/2)/2, the decision is taken on sum_k f_k tanh(delta_k/2) > 0:
//! an exact tie (all margins 0, P = 1/2 exactly) then reads as 0 and counts as wrong, instead of
//! as rounding noise on either side of 1/2.

use serde::{Deserialize, Serialize};

/// Whether the mixture with log weights `log_w` prefers the chosen response (ties are wrong):
/// micro-model's one accuracy rule.
pub use micro_model::mixture_correct;

/// log P(chosen > rejected) = log sum_k f_k sigma(delta_k), with f renormalised from `log_w`.
pub fn mixture_log_prob(log_w: &[f32], margins: &[f32]) -> f64 {
    let terms: Vec<f64> = log_w
        .iter()
        .zip(margins)
        .map(|(lw, d)| *lw as f64 + log_sigmoid(*d as f64))
        .collect();
    let norm: Vec<f64> = log_w.iter().map(|lw| *lw as f64).collect();
    log_sum_exp(&terms) - log_sum_exp(&norm)
}

/// The f64 log-space helpers live with Stage 2's likelihoods; re-exported for this crate's users.
pub use micro_route::likelihood::{log_sigmoid, log_sum_exp};

/// A mean ± std over independent runs, with the runs' values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub mean: f64,
    /// Population standard deviation (divides by the number of runs, as numpy's default).
    pub std: f64,
    pub values: Vec<f64>,
}

impl Stat {
    pub fn of(values: Vec<f64>) -> Stat {
        if values.is_empty() {
            return Stat {
                mean: f64::NAN,
                std: f64::NAN,
                values,
            };
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        Stat {
            mean,
            std: var.sqrt(),
            values,
        }
    }
}

/// The unweighted mean of the values (the paper's "Average" over attributes); NaN when empty.
pub fn mean<'a>(values: impl IntoIterator<Item = &'a f64>) -> f64 {
    let (s, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigma(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    #[test]
    fn log_prob_matches_the_direct_sum() {
        let w = [0.2f32, 0.5, 0.3];
        let d = [1.5f32, -0.7, 0.1];
        let log_w: Vec<f32> = w.iter().map(|v| v.ln()).collect();
        let direct: f64 = w
            .iter()
            .zip(&d)
            .map(|(w, d)| *w as f64 * sigma(*d as f64))
            .sum();
        assert!((mixture_log_prob(&log_w, &d) - direct.ln()).abs() < 1e-6);
        assert_eq!(mixture_correct(&log_w, &d), direct > 0.5);
    }

    #[test]
    fn unnormalised_log_weights_are_renormalised() {
        let d = [2.0f32, -1.0];
        let a = mixture_log_prob(&[0.25f32.ln(), 0.75f32.ln()], &d);
        let b = mixture_log_prob(&[1.0f32.ln() + 3.0, 3.0f32.ln() + 3.0], &d);
        assert!((a - b).abs() < 1e-6);
    }

    #[test]
    fn an_exact_tie_is_wrong_and_a_hair_above_is_right() {
        let log_w = [0.3f32.ln(), 0.7f32.ln()];
        assert!(!mixture_correct(&log_w, &[0.0, 0.0]));
        // 0.3 * tanh(0.35) = 0.1009..., 0.7 * tanh(-0.15) = -0.1044...: slightly below a half.
        assert!(!mixture_correct(&log_w, &[0.7, -0.3]));
        assert!(mixture_correct(&log_w, &[0.7, -0.29]));
    }

    #[test]
    fn extreme_margins_stay_finite() {
        let log_w = [0.5f32.ln(), 0.5f32.ln()];
        let lp = mixture_log_prob(&log_w, &[-1000.0, -1000.0]);
        assert!((lp - (-1000.0)).abs() < 1e-9, "{lp}");
        assert!(mixture_log_prob(&log_w, &[1000.0, 1000.0]).abs() < 1e-12);
    }

    #[test]
    fn stat_is_mean_and_population_std() {
        let s = Stat::of(vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.mean, 2.5);
        assert!((s.std - 1.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(Stat::of(vec![0.7]).std, 0.0);
    }
}
