//! A seeded train/test split by prompt, for sets that come without one (or whose only split is
//! too small to train on).
//!
//! Splitting by prompt rather than by pair keeps every prompt's responses on one side, so a
//! model is tested on prompts it never saw. The assignment depends only on the set of distinct
//! prompts, the fraction and the seed, not on the order of the file: the distinct prompt texts
//! are sorted, shuffled with a ChaCha8 generator seeded by `seed`, and the first
//! `round(n * fraction)` (at least one, at most all but one) go to test.

use std::collections::{BTreeSet, HashSet};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};
use crate::pair::{PrefPair, Split};

/// Which prompts are in the test split.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PromptSplit {
    test: HashSet<String>,
}

impl PromptSplit {
    /// Splits the distinct prompt texts of `keys` (see the module docs).
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>, fraction: f64, seed: u64) -> Self {
        let distinct: BTreeSet<&str> = keys.into_iter().collect();
        let mut order: Vec<&str> = distinct.into_iter().collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let n = order.len();
        let k = ((n as f64 * fraction).round() as usize).clamp(1.min(n), n.saturating_sub(1));
        PromptSplit {
            test: order.into_iter().take(k).map(str::to_string).collect(),
        }
    }

    /// The split of the prompt whose text is `key`.
    pub fn of(&self, key: &str) -> Split {
        if self.test.contains(key) {
            Split::Test
        } else {
            Split::Train
        }
    }

    /// How many prompts are in the test split.
    pub fn test_prompts(&self) -> usize {
        self.test.len()
    }
}

/// Checks a test fraction given on the command line or in options.
pub fn check_fraction(fraction: f64) -> Result<()> {
    if fraction > 0.0 && fraction < 1.0 {
        Ok(())
    } else {
        Err(DataError::TestFraction { fraction })
    }
}

/// Overwrites every pair's split by its prompt (the key is [`crate::Prompt::to_text`]);
/// returns how many distinct prompts went to test.
pub fn split_by_prompt(pairs: &mut [PrefPair], fraction: f64, seed: u64) -> usize {
    let keys: Vec<String> = pairs.iter().map(|p| p.prompt.to_text()).collect();
    let split = PromptSplit::new(keys.iter().map(String::as_str), fraction, seed);
    for (pair, key) in pairs.iter_mut().zip(&keys) {
        pair.split = Some(split.of(key));
    }
    split.test_prompts()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_free_seeded_and_sized() {
        let keys: Vec<String> = (0..50).map(|i| format!("prompt {i}")).collect();
        let a = PromptSplit::new(keys.iter().map(String::as_str), 0.2, 7);
        let b = PromptSplit::new(keys.iter().rev().map(String::as_str), 0.2, 7);
        assert_eq!(a, b, "the file's order does not matter");
        assert_eq!(a.test_prompts(), 10);
        let c = PromptSplit::new(keys.iter().map(String::as_str), 0.2, 8);
        assert_ne!(a, c, "another seed, another split");
        // Duplicated keys count once.
        let twice = keys.iter().chain(&keys).map(String::as_str);
        assert_eq!(PromptSplit::new(twice, 0.2, 7), a);
        // Never empty, never everything.
        assert_eq!(PromptSplit::new(["x", "y"], 0.01, 0).test_prompts(), 1);
        assert_eq!(PromptSplit::new(["x", "y"], 0.99, 0).test_prompts(), 1);
    }

    #[test]
    fn pairs_of_one_prompt_stay_together() {
        let mut pairs: Vec<PrefPair> = (0..40)
            .map(|i| PrefPair::new(format!("q{}", i % 10), "a", "b"))
            .collect();
        assert_eq!(split_by_prompt(&mut pairs, 0.3, 1), 3);
        for p in &pairs {
            let same = pairs.iter().filter(|q| q.prompt == p.prompt);
            assert!(same.map(|q| q.split).all(|s| s == p.split));
        }
        assert_eq!(pairs.iter().filter(|p| !p.is_train()).count(), 12);
        assert!(check_fraction(0.0).is_err() && check_fraction(1.0).is_err());
        assert!(check_fraction(f64::NAN).is_err() && check_fraction(0.5).is_ok());
    }
}
