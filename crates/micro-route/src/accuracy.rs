//! Pairwise accuracy as Stage 2 reports it, by micro-model's one rule
//! ([`micro_model::pair_correct`]): a pair counts as right when the mixture's margin is strictly
//! positive (P(chosen > rejected) above 1/2; a tie is wrong), per attribute, and the average is
//! the unweighted mean over attributes (the paper's "Average").

use crate::budget::group_by_attribute;
use crate::likelihood::head_margins;
use micro_cache::EmbeddingCache;
use micro_model::MixtureModel;
use micro_model::{mixture_correct, mixture_margin, pair_correct};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// Accuracy of one group of pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Accuracy {
    /// Pairs right (ties are wrong).
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

/// 1 for a pair right, 0 for one wrong.
pub fn credit(right: bool) -> f64 {
    if right {
        1.0
    } else {
        0.0
    }
}

/// Per-pair credit of the model routing each pair by its own context-augmented prompt
/// embedding e(x, c) (e(x) for a pair without a context), or by its user's adapted weights
/// where `users` has them ([`crate::users::pair_log_weights`]).
pub fn routed_credit(
    model: &MixtureModel,
    cache: &EmbeddingCache,
    idx: &[usize],
    users: &crate::UserStates,
) -> Vec<f64> {
    let margins = head_margins(model, cache, idx);
    let k = model.k();
    idx.par_iter()
        .zip(margins.par_chunks(k.max(1)))
        .map(|(&i, m)| {
            let lw = crate::users::pair_log_weights(model, cache, i, users);
            credit(mixture_correct(&lw, m))
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
        .map(|m| {
            credit(pair_correct(mixture_margin(
                weights.iter().map(|w| *w as f64),
                m,
            )))
        })
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
            a.correct += credit(pair_correct(*d as f64));
            a.n += 1;
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_are_wrong_and_heads_are_scored_alone() {
        let acc = head_accuracy(&[1.0, -1.0, 2.0, 0.0], 2);
        assert_eq!(acc[0].value(), 1.0);
        assert_eq!(acc[1].value(), 0.0);
    }
}
