//! The experts a user's or a context's weights are over: the model's K heads (among them, where
//! Stage 1 kept one, the shared head: the single BT model trained beside the mixture) and the
//! gate: the model's own mixture for the pair, routed on its prompt (and context) with the
//! user's table row where Stage 1 knew the user. The gate and the shared head are the shared
//! predictions; a head is personal.
//!
//! **Do no harm.** The prior gives the shared predictions [`SHARED_SHARE`] of the mass and splits
//! the rest over the mixture's heads, and the posterior is Bayesian (Hedge at eta = 1 on
//! log-losses, [`crate::BAYES`]), so a head takes a user over only when the user's answers
//! favour it clearly, and a user whose answers no head explains better stays on the shared
//! reward ("no head fits this user"). Measured in a numpy replica of both stages (5 splits by
//! prompt, B = 50 per user, cross-fitted evidence): per-user accuracy of this rule against the
//! paper's (the heads alone, tau = 1e-3): UniEval Topical-Chat's qualities known by id 0.5933 /
//! 0.5831, PandaLM's annotators 0.5596 / 0.5674 (10 splits: 0.5530 / 0.5413), HH-RLHF users
//! known by id 0.7172 / 0.7020, the built-in HelpSteer2-style set 0.7093 / 0.7038, RPR-style
//! 0.8785 / 0.8697; shares of 0.3, 0.5 and 0.8 on the heads were within noise of each other.
//!
//! ```
//! use micro_route::experts::Experts;
//! // Three heads, the last the shared head, and the gate.
//! let e = Experts::new(3, Some(2));
//! assert_eq!((e.len(), e.gate()), (4, 3));
//! let prior = e.prior();
//! assert!((prior[0] - 0.25).abs() < 1e-12 && (prior[2] - 0.25).abs() < 1e-12);
//! // Each expert is seen through a margin m_e, p_e = sigma(m_e): a head's own, and for the gate
//! // the logit of its mixture of the heads (here (sigma(2) + sigma(-2)) / 2 = 1/2, margin 0).
//! let log_gate = [0.5f32.ln(), 0.5f32.ln(), f32::NEG_INFINITY];
//! let m = e.margins(&[2.0, -2.0, 0.0], &log_gate);
//! assert_eq!(m[..3], [2.0, -2.0, 0.0]);
//! assert!(m[3].abs() < 1e-6);
//! // Weights over experts become weights over heads for scoring: the gate's mass follows it.
//! let w = e.head_weights(&[0.0, 0.0, 0.5, 0.5], &log_gate);
//! assert!((w[0] - 0.25).abs() < 1e-6 && (w[2] - 0.5).abs() < 1e-6);
//! ```

use crate::likelihood::{log_sigmoid, log_sum_exp};
use serde::{Deserialize, Serialize};

/// The prior mass of the shared predictions (the gate and the shared head).
pub const SHARED_SHARE: f64 = 0.5;

/// The experts of a model with `k` heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Experts {
    k: usize,
    shared_head: Option<usize>,
}

/// Which expert a user's weights favour, as the API and the reports say it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fit {
    /// The shared predictions hold most of the weight: no head fits this user (better than
    /// the shared reward does).
    Shared { weight: f64 },
    /// Head `head` holds the most weight.
    Head { head: usize, weight: f64 },
}

impl std::fmt::Display for Fit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fit::Shared { weight } => write!(
                f,
                "no head fits this user: the shared reward ({:.0}% of the weight)",
                100.0 * weight
            ),
            Fit::Head { head, weight } => {
                write!(f, "head {head} ({:.0}% of the weight)", 100.0 * weight)
            }
        }
    }
}

impl Experts {
    /// The experts of `k` heads, `shared_head` being the single model's if there is one.
    pub fn new(k: usize, shared_head: Option<usize>) -> Self {
        Experts {
            k,
            shared_head: shared_head.filter(|&h| h < k),
        }
    }

    /// The experts of `model`.
    pub fn of(model: &micro_model::MixtureModel) -> Self {
        Experts::new(model.k(), model.shared_head())
    }

    /// K heads and the gate.
    pub fn len(&self) -> usize {
        self.k + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Heads of the model.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The gate's index, after the heads.
    pub fn gate(&self) -> usize {
        self.k
    }

    /// Whether expert `e` is a shared prediction: the gate, the shared head, or the one head of
    /// a model that has one (the same prediction as its gate).
    pub fn is_shared(&self, e: usize) -> bool {
        e == self.gate() || Some(e) == self.shared_head || self.k == 1
    }

    /// The prior: [`SHARED_SHARE`] split evenly over the shared predictions, the rest over the
    /// mixture's heads. A model of one head has nothing personal: all on the shared ones.
    pub fn prior(&self) -> Vec<f64> {
        let shared: Vec<usize> = (0..self.len()).filter(|&e| self.is_shared(e)).collect();
        let personal = self.len() - shared.len();
        let share = if personal == 0 { 1.0 } else { SHARED_SHARE };
        (0..self.len())
            .map(|e| {
                if self.is_shared(e) {
                    share / shared.len() as f64
                } else {
                    (1.0 - share) / personal as f64
                }
            })
            .collect()
    }

    /// Every expert's margin on a pair, from the heads' margins delta_k and the gate's log
    /// weights (both over the K heads): the heads' own, then the gate's, the logit of its
    /// mixture, log sum_k f_k sigma(delta_k) - log sum_k f_k sigma(-delta_k). A pair's answer
    /// the other way round negates every margin, as for a head.
    pub fn margins(&self, head_margins: &[f32], log_gate: &[f32]) -> Vec<f32> {
        let mix = |sign: f64| {
            let terms: Vec<f64> = (log_gate.iter().zip(head_margins))
                .map(|(&g, &d)| g as f64 + log_sigmoid(sign * d as f64))
                .collect();
            log_sum_exp(&terms)
        };
        let mut out = head_margins.to_vec();
        out.push((mix(1.0) - mix(-1.0)) as f32);
        out
    }

    /// Weights over the K heads from weights `w` over the experts, for a pair whose gate gives
    /// `log_gate`: w_k + w_gate f_k. Scoring mixes the heads' rewards with these.
    pub fn head_weights(&self, w: &[f64], log_gate: &[f32]) -> Vec<f32> {
        let g = w[self.gate()];
        (0..self.k)
            .map(|k| (w[k] + g * (log_gate[k] as f64).exp()) as f32)
            .collect()
    }

    /// What weights `w` over the experts favour.
    pub fn fit(&self, w: &[f64]) -> Fit {
        let shared: f64 = (0..self.len())
            .filter(|&e| self.is_shared(e))
            .map(|e| w[e])
            .sum();
        let best = (0..self.k)
            .filter(|&e| !self.is_shared(e))
            .max_by(|&a, &b| w[a].total_cmp(&w[b]));
        match best {
            Some(h) if w[h] > shared => Fit::Head {
                head: h,
                weight: w[h],
            },
            _ => Fit::Shared { weight: shared },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prior_holds_the_shared_predictions() {
        let e = Experts::new(5, Some(4));
        let p = e.prior();
        assert_eq!(p.len(), 6);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((p[4] + p[5] - SHARED_SHARE).abs() < 1e-12);
        assert!((p[0] - (1.0 - SHARED_SHARE) / 4.0).abs() < 1e-12);
        // Without a shared head the gate holds the shared mass alone; one head: all of it.
        assert!((Experts::new(3, None).prior()[3] - SHARED_SHARE).abs() < 1e-12);
        assert_eq!(Experts::new(1, None).prior(), vec![0.5, 0.5]);
    }

    /// Oracle: the gate's probability is the mixture sum_k f_k sigma(delta_k), written directly.
    #[test]
    fn the_gate_predicts_its_mixture() {
        let e = Experts::new(3, None);
        let margins = [1.5f32, -0.5, 3.0];
        let f = [0.2f64, 0.3, 0.5];
        let log_gate: Vec<f32> = f.iter().map(|w| w.ln() as f32).collect();
        let m = e.margins(&margins, &log_gate);
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let want: f64 = f.iter().zip(margins).map(|(w, m)| w * sig(m as f64)).sum();
        assert!((sig(m[3] as f64) - want).abs() < 1e-6);
        // Extreme margins stay finite (log space): all heads sure of the first response.
        let far = e.margins(&[80.0, 90.0, 85.0], &log_gate);
        assert!(far[3].is_finite() && far[3] > 70.0, "{far:?}");
        let w = e.head_weights(&[0.1, 0.0, 0.1, 0.8], &log_gate);
        assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((w[2] - (0.1 + 0.8 * 0.5)).abs() < 1e-6);
    }

    #[test]
    fn the_fit_names_a_head_only_above_the_shared_mass() {
        let e = Experts::new(3, Some(2));
        assert_eq!(
            e.fit(&[0.6, 0.1, 0.1, 0.2]),
            Fit::Head {
                head: 0,
                weight: 0.6
            }
        );
        let shared = e.fit(&[0.3, 0.1, 0.3, 0.3]);
        assert!(matches!(shared, Fit::Shared { weight } if (weight - 0.6).abs() < 1e-12));
        assert!(shared.to_string().starts_with("no head fits this user"));
    }
}
