//! HyRe-style test-time reweighting (Lee et al. 2024): with n labelled pairs of a group held out
//! from its evaluation, weight the heads by a generalised Bayesian posterior,
//! w_k ∝ exp(-eta * sum_i L_ik) with L_ik = -log p_k(pair_i), and use those fixed weights for
//! every pair of the group. On a shared-base ensemble this is HyRe; on MiCRo's heads, MiCRo-HyRe.
//!
//! eta = 1 (the default) is the exact Bayesian posterior under a uniform prior and the heads'
//! own BT likelihoods.

use crate::accuracy::{by_attribute, fixed_credit, Accuracy};
use crate::budget::hold_out_per_attribute;
use crate::error::{Result, RouteError};
use crate::likelihood::{check_compatible, head_log_probs, log_sum_exp};
use micro_cache::EmbeddingCache;
use micro_model::MixtureModel;
use serde::Serialize;
use std::collections::BTreeMap;

/// Labelled pairs per attribute in the paper's HyRe rows.
pub const HYRE_PAIRS: usize = 16;

/// The HyRe weights over the heads from the labelled pairs `idx`.
///
/// A negative or NaN `eta` is read as 0 (uniform weights: no evidence is used); `eta = inf`
/// puts all the mass on the heads with the smallest summed loss. [`hyre_per_attribute`]
/// refuses such values instead.
pub fn hyre_weights(
    model: &MixtureModel,
    cache: &EmbeddingCache,
    idx: &[usize],
    eta: f64,
) -> Vec<f32> {
    let k = model.k();
    let mut loss = vec![0.0f64; k];
    for row in head_log_probs(model, cache, idx).chunks_exact(k.max(1)) {
        for (l, lp) in loss.iter_mut().zip(row) {
            *l -= lp;
        }
    }
    posterior(&loss, eta)
}

/// softmax(-eta * loss) in log space; `eta = inf` is the limit (uniform over the minimisers).
fn posterior(loss: &[f64], eta: f64) -> Vec<f32> {
    let eta = if eta.is_nan() || eta < 0.0 { 0.0 } else { eta };
    if eta.is_infinite() {
        let best = loss.iter().copied().fold(f64::INFINITY, f64::min);
        let ties = loss.iter().filter(|&&l| l == best).count() as f32;
        return loss
            .iter()
            .map(|&l| if l == best { 1.0 / ties } else { 0.0 })
            .collect();
    }
    let scores: Vec<f64> = loss.iter().map(|l| -eta * l).collect();
    let z = log_sum_exp(&scores);
    scores.iter().map(|s| (s - z).exp() as f32).collect()
}

/// HyRe per attribute: the labelled pairs drawn, the weights they give, and the pairs left to
/// evaluate on.
#[derive(Clone, Debug, Serialize)]
pub struct HyreSplit {
    pub eta: f64,
    pub weights: BTreeMap<String, Vec<f32>>,
    pub labelled: BTreeMap<String, Vec<usize>>,
    pub evaluation: BTreeMap<String, Vec<usize>>,
}

/// Draws `n` labelled pairs per attribute from `candidates` (typically the test split), and
/// computes each attribute's weights from them.
pub fn hyre_per_attribute(
    model: &MixtureModel,
    cache: &EmbeddingCache,
    candidates: &[usize],
    n: usize,
    eta: f64,
    seed: u64,
) -> Result<HyreSplit> {
    if !(eta.is_finite() && eta >= 0.0) {
        return Err(RouteError::Eta { eta });
    }
    check_compatible(model, cache)?;
    let mut split = HyreSplit {
        eta,
        weights: BTreeMap::new(),
        labelled: BTreeMap::new(),
        evaluation: BTreeMap::new(),
    };
    for (attr, (labelled, rest)) in hold_out_per_attribute(cache, candidates, n, seed)? {
        split
            .weights
            .insert(attr.clone(), hyre_weights(model, cache, &labelled, eta));
        split.labelled.insert(attr.clone(), labelled);
        split.evaluation.insert(attr, rest);
    }
    Ok(split)
}

/// Accuracy of each attribute's evaluation pairs under its HyRe weights.
pub fn hyre_accuracy(
    model: &MixtureModel,
    cache: &EmbeddingCache,
    split: &HyreSplit,
) -> BTreeMap<String, Accuracy> {
    let mut out = BTreeMap::new();
    for (attr, idx) in &split.evaluation {
        let credit = fixed_credit(model, cache, idx, &split.weights[attr]);
        out.extend(by_attribute(cache, idx, &credit));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Oracle: the posterior written out directly.
    #[test]
    fn posterior_is_the_normalised_exponential_of_minus_eta_loss() {
        let loss = [3.0, 1.0, 2.0];
        let w = posterior(&loss, 0.7);
        let raw: Vec<f64> = loss.iter().map(|l| (-0.7 * l).exp()).collect();
        let z: f64 = raw.iter().sum();
        for (got, r) in w.iter().zip(&raw) {
            assert!((*got as f64 - r / z).abs() < 1e-6);
        }
        assert_eq!(posterior(&loss, 0.0), vec![1.0 / 3.0; 3]);
        assert_eq!(posterior(&loss, f64::INFINITY), vec![0.0, 1.0, 0.0]);
        assert_eq!(posterior(&[1e6, 2e6], 1.0), vec![1.0, 0.0]);
    }
}
