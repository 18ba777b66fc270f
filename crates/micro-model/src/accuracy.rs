//! The one pairwise accuracy rule of the workspace, used by `micro eval`, `micro adapt` and the
//! Stage 2 tools alike: a pair is right when the model's reward margin
//! r(chosen) - r(rejected) is strictly positive; a tie (margin exactly 0) counts as wrong, as in
//! the paper.
//!
//! For a mixture the margin is taken as sum_k f_k tanh(delta_k / 2) = 2 (P - 1/2), with
//! P = sum_k f_k sigma(delta_k): positive exactly when the mixture prefers the chosen response,
//! and an exact tie (all margins 0) reads as 0 instead of as rounding noise on either side of 1/2.

/// Whether a pair with reward margin r(chosen) - r(rejected) is right (a tie is wrong).
pub fn pair_correct(margin: f64) -> bool {
    margin > 0.0
}

/// The share of pairs right, from their reward margins r(chosen) - r(rejected); 0 for none.
pub fn pairwise_accuracy(margins: impl IntoIterator<Item = f64>) -> f64 {
    let (right, n) = margins.into_iter().fold((0usize, 0usize), |(r, n), m| {
        (r + usize::from(pair_correct(m)), n + 1)
    });
    if n == 0 {
        0.0
    } else {
        right as f64 / n as f64
    }
}

/// The preference margin of a mixture with (linear, summing to 1) `weights` over the heads'
/// margins delta_k: sum_k w_k tanh(delta_k / 2), which has the sign of P - 1/2.
pub fn mixture_margin(weights: impl IntoIterator<Item = f64>, margins: &[f32]) -> f64 {
    weights
        .into_iter()
        .zip(margins)
        .map(|(w, d)| w * (*d as f64 / 2.0).tanh())
        .sum()
}

/// Whether the mixture with log weights `log_w` prefers the chosen response (a tie is wrong).
pub fn mixture_correct(log_w: &[f32], margins: &[f32]) -> bool {
    pair_correct(mixture_margin(
        log_w.iter().map(|lw| (*lw as f64).exp()),
        margins,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tie_is_wrong_and_only_a_positive_margin_is_right() {
        assert!(pair_correct(1e-9));
        assert!(!pair_correct(0.0));
        assert!(!pair_correct(-0.5));
        assert_eq!(pairwise_accuracy([1.0, 0.0, -1.0, 2.0]), 0.5);
        assert_eq!(pairwise_accuracy(std::iter::empty()), 0.0);
    }

    #[test]
    fn the_mixture_margin_has_the_sign_of_p_minus_a_half() {
        let log_w = [0.3f32.ln(), 0.7f32.ln()];
        assert!(!mixture_correct(&log_w, &[0.0, 0.0]));
        // 0.3 * tanh(0.35) = 0.1009..., 0.7 * tanh(-0.15) = -0.1044...: slightly below a half.
        assert!(!mixture_correct(&log_w, &[0.7, -0.3]));
        assert!(mixture_correct(&log_w, &[0.7, -0.29]));
        let sigma = |x: f64| 1.0 / (1.0 + (-x).exp());
        let m = mixture_margin([0.25, 0.75], &[2.0, -1.0]);
        let p = 0.25 * sigma(2.0) + 0.75 * sigma(-1.0);
        assert!((m - 2.0 * (p - 0.5)).abs() < 1e-6, "{m} vs {p}");
    }
}
