//! Which labelled train pairs each run of a budget study sees: per attribute, a run's random
//! order (budget B takes the first B), with seeds that keep runs on separate random streams.

use micro_cache::EmbeddingCache;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Stage 2 learns to route by context, so where an attribute's train pairs carry one, only
/// those are sampled (as `micro adapt` does). In a cache that mixes binary-only Stage 1 pairs
/// with context-labelled ones, the attributes without any context are Stage 1 data and are not
/// sampled; only a cache with no context at all samples every attribute's pairs.
pub(super) fn with_context_first(
    cache: &EmbeddingCache,
    groups: BTreeMap<String, Vec<usize>>,
) -> BTreeMap<String, Vec<usize>> {
    let with_context: BTreeMap<String, Vec<usize>> = groups
        .iter()
        .map(|(a, rows)| {
            let with: Vec<usize> = rows
                .iter()
                .copied()
                .filter(|&i| micro_route::budget::has_context(&cache.pairs[i]))
                .collect();
            (a.clone(), with)
        })
        .filter(|(_, with)| !with.is_empty())
        .collect();
    if with_context.is_empty() {
        groups
    } else {
        with_context
    }
}

/// A seed for one (run, purpose): runs never share a random stream.
pub(super) fn run_seed(seed: u64, run: usize, purpose: u64) -> u64 {
    let mut z = seed
        ^ (run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ purpose.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Each attribute's train rows in a run's random order. Budget B takes the first B of each, so
/// within a run the samples are nested across budgets (less noise along the curve).
pub fn shuffled_train(
    train: &BTreeMap<String, Vec<usize>>,
    seed: u64,
    run: usize,
) -> BTreeMap<String, Vec<usize>> {
    shuffled(train, run_seed(seed, run, 1))
}

pub(super) fn shuffled(
    groups: &BTreeMap<String, Vec<usize>>,
    seed: u64,
) -> BTreeMap<String, Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    groups
        .iter()
        .map(|(a, rows)| {
            let mut v = rows.clone();
            v.shuffle(&mut rng);
            (a.clone(), v)
        })
        .collect()
}

/// The first `budget` rows of each attribute.
pub fn take_budget(order: &BTreeMap<String, Vec<usize>>, budget: usize) -> Vec<usize> {
    order
        .values()
        .flat_map(|v| v.iter().take(budget).copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_nested_across_budgets_and_differ_across_runs() {
        let train: BTreeMap<String, Vec<usize>> = [
            ("a".to_string(), (0..50).collect()),
            ("b".to_string(), (50..60).collect()),
        ]
        .into();
        let o0 = shuffled_train(&train, 7, 0);
        let o1 = shuffled_train(&train, 7, 1);
        assert_ne!(o0, o1);
        assert_eq!(o0, shuffled_train(&train, 7, 0));
        let b5 = take_budget(&o0, 5);
        let b20 = take_budget(&o0, 20);
        assert_eq!(b5.len(), 10);
        // attribute b has only 10 rows: B = 20 takes them all.
        assert_eq!(b20.len(), 30);
        assert!(b5.iter().all(|i| b20.contains(i)));
    }
}
