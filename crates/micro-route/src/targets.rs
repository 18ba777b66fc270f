//! The Hedge soft labels of Algorithm 1 (Eq. 5): w_ik ∝ f_k(x_i, c_i) * p_k(pair_i)^(1/tau).
//!
//! With the paper's tau = 1e-3 or 1e-4, p^(1/tau) under- and overflows any float, so the labels
//! are formed in log space, log w_ik = log f_k + log p_k / tau, and normalised by log-sum-exp in
//! f64. As tau -> 0 they tend to the one-hot argmax of p_k; among heads whose p_k tie exactly,
//! the mass is the prior restricted to the tied heads (so the prior breaks the tie). As
//! tau -> inf they tend to the prior.

use crate::error::{Result, RouteError};
use crate::likelihood::log_sum_exp;

/// Refuses a temperature that is not a positive number (`inf` is allowed: targets = prior).
pub fn check_tau(tau: f64) -> Result<()> {
    if tau.is_nan() || tau <= 0.0 {
        return Err(RouteError::Tau { tau });
    }
    Ok(())
}

/// Soft labels for one pair into `out` (length K): softmax(log_prior + log_p / tau).
///
/// `log_prior` is log f_k(x, c) (need not be normalised), `log_p` is log p_k. If every score is
/// -inf (all p_k exactly 0, which finite margins cannot produce) the prior is returned.
pub fn hedge_target(log_prior: &[f64], log_p: &[f64], tau: f64, out: &mut [f64]) {
    debug_assert!(log_prior.len() == log_p.len() && out.len() == log_p.len());
    // Measured from the best head, log p_k / tau is huge for the others only: the tied best
    // heads get exactly 0 and keep the prior's full precision for breaking the tie.
    let best = log_p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for ((o, lf), lp) in out.iter_mut().zip(log_prior).zip(log_p) {
        // A gap of 0 stays 0 even for tau = inf (0 / inf), and all -inf stays -inf below.
        let gap = if *lp == best { 0.0 } else { lp - best };
        *o = lf + gap / tau;
    }
    let z = log_sum_exp(out);
    if !z.is_finite() {
        softmax_into(log_prior, out);
        return;
    }
    for o in out.iter_mut() {
        *o = (*o - z).exp();
    }
}

/// Soft labels for `n` pairs: `log_prior` and `log_p` are row-major [n, k]; returns [n, k] f32.
pub fn hedge_targets(log_prior: &[f64], log_p: &[f64], k: usize, tau: f64) -> Result<Vec<f32>> {
    check_tau(tau)?;
    let mut out = vec![0.0f32; log_p.len()];
    let mut row = vec![0.0f64; k];
    for ((lf, lp), o) in log_prior
        .chunks_exact(k)
        .zip(log_p.chunks_exact(k))
        .zip(out.chunks_exact_mut(k))
    {
        hedge_target(lf, lp, tau, &mut row);
        for (o, r) in o.iter_mut().zip(&row) {
            *o = *r as f32;
        }
    }
    Ok(out)
}

fn softmax_into(z: &[f64], out: &mut [f64]) {
    let lse = log_sum_exp(z);
    if !lse.is_finite() {
        out.fill(1.0 / out.len().max(1) as f64);
        return;
    }
    for (o, v) in out.iter_mut().zip(z) {
        *o = (v - lse).exp();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(prior: &[f64], p: &[f64], tau: f64) -> Vec<f64> {
        let lf: Vec<f64> = prior.iter().map(|x| x.ln()).collect();
        let lp: Vec<f64> = p.iter().map(|x| x.ln()).collect();
        let mut out = vec![0.0; p.len()];
        hedge_target(&lf, &lp, tau, &mut out);
        out
    }

    /// Oracle: the paper's formula evaluated directly, where it does not overflow.
    #[test]
    fn matches_the_direct_formula_at_moderate_temperatures() {
        let prior = [0.5, 0.3, 0.2];
        let p = [0.6, 0.9, 0.2];
        for tau in [0.25, 0.5, 1.0, 3.0] {
            let raw: Vec<f64> = prior
                .iter()
                .zip(&p)
                .map(|(f, p): (&f64, &f64)| f * p.powf(1.0 / tau))
                .collect();
            let z: f64 = raw.iter().sum();
            for (got, want) in target(&prior, &p, tau)
                .iter()
                .zip(raw.iter().map(|r| r / z))
            {
                assert!((got - want).abs() < 1e-12, "tau {tau}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn small_temperature_gives_the_one_hot_argmax() {
        let prior = [0.7, 0.2, 0.1];
        let p = [0.60, 0.61, 0.2];
        let t = target(&prior, &p, 1e-4);
        assert!(t[0] < 1e-70 && t[1] == 1.0 && t[2] == 0.0, "{t:?}");
        assert_eq!(target(&prior, &p, 1e-6), vec![0.0, 1.0, 0.0]);
        // At 1e-3 a 1.6% likelihood gap leaves e^-16.5 * 0.7 / 0.2 = 2.3e-7 on the runner-up.
        let t = target(&prior, &p, 1e-3);
        let want = 3.5 * ((0.60f64 / 0.61).ln() / 1e-3).exp();
        assert!(
            (t[0] - want).abs() < 1e-12 && (t[1] - (1.0 - want)).abs() < 1e-12,
            "{t:?}"
        );
    }

    #[test]
    fn exact_ties_are_broken_by_the_prior() {
        let prior = [0.1, 0.6, 0.3];
        let p = [0.9, 0.2, 0.9];
        let t = target(&prior, &p, 1e-4);
        // The tied heads 0 and 2 share the mass in the prior's ratio 0.1 : 0.3.
        assert!(
            (t[0] - 0.25).abs() < 1e-12 && (t[2] - 0.75).abs() < 1e-12 && t[1] == 0.0,
            "{t:?}"
        );
    }

    #[test]
    fn large_temperature_gives_the_prior() {
        let prior = [0.5, 0.3, 0.2];
        let p = [0.99, 0.01, 0.5];
        for (got, want) in target(&prior, &p, 1e12).iter().zip(&prior) {
            assert!((got - want).abs() < 1e-9);
        }
        assert_eq!(target(&prior, &p, f64::INFINITY), prior.to_vec());
    }

    #[test]
    fn extreme_probabilities_and_temperature_stay_finite() {
        let t = target(&[0.5, 0.5], &[1e-300, 1e-300], 1e-6);
        assert!(
            (t[0] - 0.5).abs() < 1e-12 && (t[1] - 0.5).abs() < 1e-12,
            "{t:?}"
        );
        let t = target(&[0.999, 0.001], &[1e-300, 1e-299], 1e-6);
        assert_eq!(t, vec![0.0, 1.0]);
        let t = target(&[0.5, 0.5], &[1.0, 1e-300], 1e-6);
        assert_eq!(t, vec![1.0, 0.0]);
        let all_zero = {
            let mut out = vec![0.0; 2];
            hedge_target(
                &[0.2f64.ln(), 0.8f64.ln()],
                &[f64::NEG_INFINITY; 2],
                1e-6,
                &mut out,
            );
            out
        };
        assert!((all_zero[0] - 0.2).abs() < 1e-12 && (all_zero[1] - 0.8).abs() < 1e-12);
    }

    #[test]
    fn non_positive_temperatures_are_refused() {
        for tau in [0.0, -1e-3, f64::NAN] {
            let e = hedge_targets(&[0.0], &[0.0], 1, tau).unwrap_err();
            assert!(matches!(e, RouteError::Tau { .. }), "{e}");
            assert!(e.to_string().starts_with("tau must be > 0"), "{e}");
        }
    }

    #[test]
    fn batched_rows_match_single_rows() {
        let lf = [0.5f64.ln(), 0.5f64.ln(), 0.9f64.ln(), 0.1f64.ln()];
        let lp = [-0.1, -2.0, -1.0, -0.5];
        let t = hedge_targets(&lf, &lp, 2, 0.5).unwrap();
        let mut one = vec![0.0; 2];
        hedge_target(&lf[2..], &lp[2..], 0.5, &mut one);
        assert!((t[2] as f64 - one[0]).abs() < 1e-7 && (t[3] as f64 - one[1]).abs() < 1e-7);
        assert!((t[0] + t[1] - 1.0).abs() < 1e-6);
    }
}
