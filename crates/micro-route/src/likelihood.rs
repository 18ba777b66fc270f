//! Per-pair, per-head quantities every Stage 2 tool starts from: the margins
//! delta_ik = w_k . (h_w - h_l) and the log-likelihoods log p_k = log sigma(delta_ik).
//!
//! The heads are frozen in Stage 2, so these are computed once per set of pairs.

use crate::error::Result;
use micro_cache::EmbeddingCache;
use micro_model::linalg::dot;
use micro_model::MixtureModel;
use rayon::prelude::*;

/// Refuses a cache whose widths or backbone differ from the model's.
pub fn check_compatible(model: &MixtureModel, cache: &EmbeddingCache) -> Result<()> {
    Ok(model.check_cache(&cache.meta)?)
}

/// delta_ik for the pairs `idx`, row-major [idx.len(), K].
pub fn head_margins(model: &MixtureModel, cache: &EmbeddingCache, idx: &[usize]) -> Vec<f32> {
    let k = model.k();
    let mut out = vec![0.0f32; idx.len() * k];
    if k == 0 {
        return out;
    }
    out.par_chunks_mut(k).zip(idx.par_iter()).for_each_init(
        || vec![0.0f32; cache.chosen.cols],
        |diff, (row, &i)| {
            for ((d, c), r) in diff
                .iter_mut()
                .zip(cache.chosen.row(i))
                .zip(cache.rejected.row(i))
            {
                *d = c - r;
            }
            for (o, head) in row.iter_mut().zip(0..k) {
                *o = dot(model.heads().row(head), diff);
            }
        },
    );
    out
}

/// log p_k(pair_i) = log sigma(delta_ik) in f64, row-major [idx.len(), K]. Kept in f64 because
/// Stage 2 divides it by a temperature as small as 1e-4.
pub fn head_log_probs(model: &MixtureModel, cache: &EmbeddingCache, idx: &[usize]) -> Vec<f64> {
    head_margins(model, cache, idx)
        .into_iter()
        .map(|d| log_sigmoid(d as f64))
        .collect()
}

/// log sum exp in f64 ([`micro_model::float::log_sum_exp`]); -inf for an empty or all -inf
/// input.
pub fn log_sum_exp(v: &[f64]) -> f64 {
    micro_model::float::log_sum_exp(v)
}

/// log sigma(x) in f64, stable for any sign and magnitude.
pub fn log_sigmoid(x: f64) -> f64 {
    micro_model::float::Float::log_sigmoid(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sigmoid_matches_the_naive_formula_and_survives_extremes() {
        for x in [-30.0f64, -2.0, 0.0, 0.5, 12.0] {
            let naive = (1.0 / (1.0 + (-x).exp())).ln();
            assert!((log_sigmoid(x) - naive).abs() < 1e-12, "{x}");
        }
        assert!((log_sigmoid(-800.0) + 800.0).abs() < 1e-9);
        assert_eq!(log_sigmoid(800.0), 0.0);
    }

    #[test]
    fn log_sum_exp_matches_direct_sum() {
        let v = [0.1, -2.0, 3.0];
        let direct = v.iter().map(|x: &f64| x.exp()).sum::<f64>().ln();
        assert!((log_sum_exp(&v) - direct).abs() < 1e-12);
        assert!((log_sum_exp(&[-1e9, -1e9]) - (-1e9 + 2f64.ln())).abs() < 1e-6);
        assert_eq!(log_sum_exp(&[]), f64::NEG_INFINITY);
    }
}
