//! The Stage 2 labelling budget: B context-labelled training pairs per attribute, drawn at
//! random with a seed.
//!
//! A cache may mix the paper's two kinds of data: binary-only Stage 1 pairs (no context; often
//! no attribute either, so they group as `all`) and context-labelled pairs per attribute. The
//! budget is drawn from the attributes whose training pairs carry a context; the others are
//! left to Stage 1 and listed in [`Budget::left_to_stage1`].
//!
//! Each attribute is drawn from its own generator (seeded by the seed and the attribute's
//! name), as a prefix of one seeded shuffle: the sample of one attribute does not depend on which
//! others exist, and for a fixed seed the B = 10 sample is contained in the B = 25 one, so a
//! budget sweep adds labels rather than redrawing them.

use crate::error::{Result, RouteError};
use micro_cache::EmbeddingCache;
use micro_data::PrefPair;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Whether a pair carries a (non-blank) context.
pub fn has_context(p: &PrefPair) -> bool {
    p.context.as_deref().is_some_and(|c| !c.trim().is_empty())
}

/// A drawn budget: which pairs were drawn per attribute, and what was left out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Budget {
    /// Attribute -> the drawn training pairs, in drawing order.
    pub groups: BTreeMap<String, Vec<usize>>,
    /// Attributes whose training pairs carry no context, with their number of training pairs:
    /// Stage 1 data, not drawn from.
    pub left_to_stage1: BTreeMap<String, usize>,
}

impl Budget {
    /// Every drawn pair, sorted by attribute, then in drawing order.
    pub fn indices(&self) -> Vec<usize> {
        self.groups.values().flatten().copied().collect()
    }

    /// The attributes with fewer labelled pairs than `budget`, with what they have.
    pub fn short(&self, budget: usize) -> BTreeMap<String, usize> {
        (self.groups.iter())
            .filter(|(_, g)| g.len() < budget)
            .map(|(a, g)| (a.clone(), g.len()))
            .collect()
    }
}

/// `budget` training pairs with a context per attribute, all attributes together (sorted by
/// attribute, then in drawing order).
pub fn sample_budget(cache: &EmbeddingCache, budget: usize, seed: u64) -> Result<Vec<usize>> {
    Ok(draw_budget(cache, budget, seed)?.indices())
}

/// [`sample_budget`], by attribute.
pub fn sample_budget_groups(
    cache: &EmbeddingCache,
    budget: usize,
    seed: u64,
) -> Result<BTreeMap<String, Vec<usize>>> {
    Ok(draw_budget(cache, budget, seed)?.groups)
}

/// Draws up to `budget` context-labelled training pairs from each attribute that has any (all of
/// an attribute's when it has fewer: [`Budget::short`] says which).
///
/// Errors: no training pairs; no training pair with a context.
pub fn draw_budget(cache: &EmbeddingCache, budget: usize, seed: u64) -> Result<Budget> {
    let mut out = context_pools(cache)?;
    if out.groups.is_empty() {
        return Err(RouteError::NoContext {
            pairs: cache.indices(PrefPair::is_train).len(),
        });
    }
    for (attr, pool) in out.groups.iter_mut() {
        *pool = draw(pool, budget, seed, attr);
    }
    Ok(out)
}

/// Every context-labelled training pair per attribute (in cache order): the pools a budget is
/// drawn or chosen from, with the attributes left to Stage 1 (neither a context nor user ids:
/// pairs of users known by id are adapted per user, [`crate::users`]). No group when no
/// training pair has a context.
///
/// Errors: no training pairs.
pub fn context_pools(cache: &EmbeddingCache) -> Result<Budget> {
    let train = cache.indices(PrefPair::is_train);
    if train.is_empty() {
        return Err(RouteError::NoTrainPairs);
    }
    let mut out = Budget::default();
    for (attr, idx) in group_by_attribute(cache, &train) {
        let with_context: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| has_context(&cache.pairs[i]))
            .collect();
        let users = idx.iter().any(|&i| cache.pairs[i].user_id.is_some());
        match (with_context.is_empty(), users) {
            (false, _) => {
                out.groups.insert(attr, with_context);
            }
            (true, false) => {
                out.left_to_stage1.insert(attr, idx.len());
            }
            (true, true) => {}
        }
    }
    Ok(out)
}

/// (drawn, rest) pair indices of one attribute.
pub type HeldOut = (Vec<usize>, Vec<usize>);

/// The pairs `candidates` split per attribute into `n` drawn at random and the rest, e.g. HyRe's
/// labelled pairs and the pairs it is evaluated on. Errors when an attribute has no pair left.
pub fn hold_out_per_attribute(
    cache: &EmbeddingCache,
    candidates: &[usize],
    n: usize,
    seed: u64,
) -> Result<BTreeMap<String, HeldOut>> {
    let mut out = BTreeMap::new();
    for (attr, idx) in group_by_attribute(cache, candidates) {
        if idx.len() <= n {
            return Err(RouteError::HoldsOutAll {
                attribute: attr,
                pairs: idx.len(),
                held_out: n,
            });
        }
        let taken = draw(&idx, n, seed, &attr);
        let mut rest: Vec<usize> = idx.iter().copied().filter(|i| !taken.contains(i)).collect();
        rest.sort_unstable();
        out.insert(attr, (taken, rest));
    }
    Ok(out)
}

/// Indices grouped by attribute (`"all"` for pairs without one), each in cache order.
pub fn group_by_attribute(cache: &EmbeddingCache, idx: &[usize]) -> BTreeMap<String, Vec<usize>> {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for &i in idx {
        groups
            .entry(cache.pairs[i].group().to_string())
            .or_default()
            .push(i);
    }
    groups
}

/// The first `n` of `idx` in a shuffle seeded by `seed` and the group's name `attr`.
pub(crate) fn draw(idx: &[usize], n: usize, seed: u64, attr: &str) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a(attr.as_bytes()));
    let mut v = idx.to_vec();
    v.shuffle(&mut rng);
    v.truncate(n);
    v
}

/// A hash that is the same on every platform and Rust version (unlike `DefaultHasher`), so a
/// seed names the same sample forever.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use micro_cache::{CacheMeta, Matrix};
    use micro_data::Split;

    fn cache(groups: &[(&str, usize, bool)]) -> EmbeddingCache {
        let mut pairs = Vec::new();
        for (attr, n, ctx) in groups {
            for i in 0..*n {
                let mut p = PrefPair::new(format!("{attr}{i}"), "a", "b");
                p.attribute = Some(attr.to_string());
                p.context = ctx.then(|| format!("criterion {attr}"));
                pairs.push(p);
            }
        }
        let n = pairs.len();
        let m = || Matrix::zeros(n, 2);
        EmbeddingCache::new(CacheMeta::default(), pairs, m(), m(), m()).unwrap()
    }

    #[test]
    fn draws_the_budget_per_attribute_reproducibly() {
        let c = cache(&[("a", 30, true), ("b", 12, true)]);
        let g = sample_budget_groups(&c, 10, 7).unwrap();
        assert_eq!(g["a"].len(), 10);
        assert_eq!(g["b"].len(), 10);
        assert!(g["a"].iter().all(|&i| c.pairs[i].group() == "a"));
        assert_eq!(g, sample_budget_groups(&c, 10, 7).unwrap());
        assert_ne!(g["a"], sample_budget_groups(&c, 10, 8).unwrap()["a"]);
        let mut distinct = g["a"].clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 10);
    }

    #[test]
    fn larger_budgets_extend_smaller_ones() {
        let c = cache(&[("a", 40, true)]);
        let small = sample_budget(&c, 10, 3).unwrap();
        let large = sample_budget(&c, 25, 3).unwrap();
        assert_eq!(&large[..10], &small[..]);
    }

    #[test]
    fn only_training_pairs_with_context_are_drawn() {
        let mut c = cache(&[("a", 20, true)]);
        for p in &mut c.pairs[..10] {
            p.split = Some(Split::Test);
        }
        c.pairs[10].context = None;
        let all = sample_budget(&c, 9, 0).unwrap();
        assert!(all.iter().all(|&i| i > 10));
        // Up to the budget: an attribute with fewer gives all it has, and says so.
        let b = draw_budget(&c, 10, 0).unwrap();
        assert_eq!(b.groups["a"].len(), 9);
        assert_eq!(b.short(10), BTreeMap::from([("a".to_string(), 9)]));
        assert!(b.short(9).is_empty());
    }

    #[test]
    fn attributes_without_context_are_left_to_stage_1() {
        let c = cache(&[("a", 20, true), ("all", 30, false)]);
        let b = draw_budget(&c, 5, 0).unwrap();
        assert_eq!(b.groups.keys().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(b.left_to_stage1, BTreeMap::from([("all".to_string(), 30)]));
        assert!(b.indices().iter().all(|&i| c.pairs[i].group() == "a"));
        let none = cache(&[("b", 20, false)]);
        let e = sample_budget(&none, 5, 0).unwrap_err();
        assert!(matches!(e, RouteError::NoContext { pairs: 20 }), "{e}");
        assert!(
            e.to_string()
                .contains("none of the 20 training pairs carries a `context`"),
            "{e}"
        );
    }

    #[test]
    fn hold_out_splits_every_attribute() {
        let c = cache(&[("a", 20, false), ("b", 17, false)]);
        let all: Vec<usize> = (0..c.len()).collect();
        let h = hold_out_per_attribute(&c, &all, 16, 1).unwrap();
        assert_eq!(h["a"].0.len(), 16);
        assert_eq!(h["a"].1.len(), 4);
        assert_eq!(h["b"].1.len(), 1);
        assert!(h["a"].1.iter().all(|i| !h["a"].0.contains(i)));
        assert!(matches!(
            hold_out_per_attribute(&c, &all, 17, 1),
            Err(RouteError::HoldsOutAll {
                pairs: 17,
                held_out: 17,
                ..
            })
        ));
    }
}
