//! Pairwise accuracy as Stage 2 reports it: a pair counts as right when the predicted
//! P(chosen > rejected) is above 1/2 (a tie counts half), per attribute, and the average is the
//! unweighted mean over attributes (the paper's "Average").

use crate::budget::group_by_attribute;
use crate::likelihood::head_margins;
use micro_cache::EmbeddingCache;
use micro_model::{sigmoid, MixtureModel};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// Accuracy of one group of pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Accuracy {
    /// Pairs right (ties count 1/2).
    pub correct: f64,
    pub n: usize,
}

impl Accuracy {
    pub fn value(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.correct / self.n as f64
        }
    }
}

/// 1, 1/2 or 0 for a predicted probability that the chosen response wins.
pub fn credit(p: f32) -> f64 {
    if p > 0.5 {
        1.0
    } else if p == 0.5 {
        0.5
    } else {
        0.0
    }
}

/// Per-pair credit of the model routing each pair by its own context-augmented prompt
/// embedding e(x, c) (e(x) for a pair without a context).
pub fn routed_credit(model: &MixtureModel, cache: &EmbeddingCache, idx: &[usize]) -> Vec<f64> {
    let margins = head_margins(model, cache, idx);
    let k = model.k();
    idx.par_iter()
        .zip(margins.par_chunks(k.max(1)))
        .map(|(&i, m)| {
            let lw = model.log_weights(cache.routed_input(i));
            credit(micro_model::model::mixture_prob(&lw, m))
        })
        .collect()
}

/// Per-pair credit with the same mixture `weights` for every pair (HyRe, a fixed user state).
pub fn fixed_credit(
    model: &MixtureModel,
    cache: &EmbeddingCache,
    idx: &[usize],
    weights: &[f32],
) -> Vec<f64> {
    let k = model.k();
    head_margins(model, cache, idx)
        .chunks(k.max(1))
        .map(|m| credit(weights.iter().zip(m).map(|(w, d)| w * sigmoid(*d)).sum()))
        .collect()
}

/// Sums per-pair credit (aligned with `idx`) per attribute.
pub fn by_attribute(
    cache: &EmbeddingCache,
    idx: &[usize],
    credit: &[f64],
) -> BTreeMap<String, Accuracy> {
    let pos: BTreeMap<usize, f64> = idx.iter().copied().zip(credit.iter().copied()).collect();
    group_by_attribute(cache, idx)
        .into_iter()
        .map(|(attr, rows)| {
            let correct = rows.iter().map(|i| pos[i]).sum();
            (
                attr,
                Accuracy {
                    correct,
                    n: rows.len(),
                },
            )
        })
        .collect()
}

/// Unweighted mean over attributes.
pub fn average(acc: &BTreeMap<String, Accuracy>) -> f64 {
    if acc.is_empty() {
        return 0.0;
    }
    acc.values().map(Accuracy::value).sum::<f64>() / acc.len() as f64
}

/// Accuracy of every head alone, [K], from margins [n, K].
pub fn head_accuracy(margins: &[f32], k: usize) -> Vec<Accuracy> {
    let mut acc = vec![Accuracy::default(); k];
    for row in margins.chunks_exact(k) {
        for (a, d) in acc.iter_mut().zip(row) {
            a.correct += credit(sigmoid(*d));
            a.n += 1;
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_count_half_and_heads_are_scored_alone() {
        assert_eq!(credit(0.5), 0.5);
        let acc = head_accuracy(&[1.0, -1.0, 2.0, 0.0], 2);
        assert_eq!(acc[0].value(), 1.0);
        assert_eq!(acc[1].value(), 0.25);
    }
}
