//! Summary statistics of a pair set: counts per split, attribute and user, context coverage,
//! text lengths and duplicates.

use crate::pair::{PrefPair, Split};
use serde::Serialize;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// Pairs in each split; pairs without a split count as train (see [`PrefPair::is_train`]),
/// and are also counted in `unset`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SplitCounts {
    pub train: usize,
    pub test: usize,
    pub unset: usize,
}

impl SplitCounts {
    fn add(&mut self, split: Option<Split>) {
        match split {
            Some(Split::Test) => self.test += 1,
            Some(Split::Train) => self.train += 1,
            None => {
                self.train += 1;
                self.unset += 1;
            }
        }
    }
}

/// Distribution of lengths in characters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LengthStats {
    pub min: usize,
    pub mean: f64,
    pub median: usize,
    pub p95: usize,
    pub max: usize,
}

impl LengthStats {
    /// Summary of `lengths` (nearest-rank percentiles); all zero when empty.
    pub fn of(mut lengths: Vec<usize>) -> Self {
        if lengths.is_empty() {
            return LengthStats::default();
        }
        lengths.sort_unstable();
        let n = lengths.len();
        let rank = |q: f64| lengths[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        LengthStats {
            min: lengths[0],
            mean: lengths.iter().sum::<usize>() as f64 / n as f64,
            median: rank(0.5),
            p95: rank(0.95),
            max: lengths[n - 1],
        }
    }
}

/// How many pairs carry a context, and how varied the contexts are.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ContextStats {
    pub with_context: usize,
    /// `with_context / pairs` (0 for no pairs).
    pub coverage: f64,
    pub distinct: usize,
    /// Pairs with a context, per attribute.
    pub per_attribute: BTreeMap<String, usize>,
}

/// Repeated or contradictory pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DuplicateStats {
    /// Pairs equal to an earlier one in prompt, chosen, rejected and context.
    pub exact: usize,
    /// Pairs equal to an earlier one in prompt, chosen and rejected (any context or attribute).
    pub same_responses: usize,
    /// Pairs whose reverse (same prompt, chosen and rejected swapped) is also in the set:
    /// contradictions unless their contexts differ (as RPR's do by design).
    pub reversed: usize,
    /// Pairs whose chosen and rejected texts are identical.
    pub chosen_equals_rejected: usize,
}

/// Per-user pair counts (only users that appear).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UserStats {
    pub users: usize,
    pub pairs_with_user: usize,
    pub min_pairs: usize,
    pub median_pairs: usize,
    pub max_pairs: usize,
    pub per_user: BTreeMap<String, usize>,
}

/// Everything [`DataStats::compute`] reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DataStats {
    pub pairs: usize,
    pub splits: SplitCounts,
    /// Per attribute (`all` for pairs without one).
    pub attributes: BTreeMap<String, SplitCounts>,
    pub sources: BTreeMap<String, usize>,
    pub users: UserStats,
    pub context: ContextStats,
    /// Prompt length as flat text.
    pub prompt_chars: LengthStats,
    pub chosen_chars: LengthStats,
    pub rejected_chars: LengthStats,
    /// Pairs whose prompt is a multi-turn conversation.
    pub multi_turn_prompts: usize,
    pub with_ratings: usize,
    pub duplicates: DuplicateStats,
}

fn hash_of(parts: &[&str]) -> u64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

impl DataStats {
    pub fn compute(pairs: &[PrefPair]) -> Self {
        let mut s = DataStats {
            pairs: pairs.len(),
            ..Default::default()
        };
        let mut contexts = HashSet::new();
        let mut users: HashMap<&str, usize> = HashMap::new();
        let (mut exact, mut same) = (HashSet::new(), HashSet::new());
        let mut prompt_len = Vec::with_capacity(pairs.len());
        let prompts: Vec<String> = pairs.iter().map(|p| p.prompt.to_text()).collect();
        for (p, prompt) in pairs.iter().zip(&prompts) {
            s.splits.add(p.split);
            s.attributes
                .entry(p.group().to_string())
                .or_default()
                .add(p.split);
            if let Some(src) = &p.source {
                *s.sources.entry(src.clone()).or_default() += 1;
            }
            if let Some(u) = &p.user_id {
                *users.entry(u.as_str()).or_default() += 1;
            }
            if let Some(c) = &p.context {
                s.context.with_context += 1;
                contexts.insert(c.as_str());
                *s.context
                    .per_attribute
                    .entry(p.group().to_string())
                    .or_default() += 1;
            }
            if matches!(&p.prompt, crate::pair::Prompt::Messages(m) if m.len() > 1) {
                s.multi_turn_prompts += 1;
            }
            if p.chosen_rating.is_some() || p.rejected_rating.is_some() || p.margin.is_some() {
                s.with_ratings += 1;
            }
            prompt_len.push(prompt.chars().count());
            let ctx = p.context.as_deref().unwrap_or("");
            s.duplicates.exact +=
                usize::from(!exact.insert(hash_of(&[prompt, &p.chosen, &p.rejected, ctx])));
            s.duplicates.same_responses +=
                usize::from(!same.insert(hash_of(&[prompt, &p.chosen, &p.rejected])));
            s.duplicates.chosen_equals_rejected += usize::from(p.chosen == p.rejected);
        }
        s.duplicates.reversed = pairs
            .iter()
            .zip(&prompts)
            .filter(|(p, prompt)| {
                p.chosen != p.rejected && same.contains(&hash_of(&[prompt, &p.rejected, &p.chosen]))
            })
            .count();
        s.context.distinct = contexts.len();
        s.context.coverage = if pairs.is_empty() {
            0.0
        } else {
            s.context.with_context as f64 / pairs.len() as f64
        };
        s.prompt_chars = LengthStats::of(prompt_len);
        s.chosen_chars = LengthStats::of(pairs.iter().map(|p| p.chosen.chars().count()).collect());
        s.rejected_chars =
            LengthStats::of(pairs.iter().map(|p| p.rejected.chars().count()).collect());
        s.users = user_stats(users);
        s
    }
}

fn user_stats(users: HashMap<&str, usize>) -> UserStats {
    let mut counts: Vec<usize> = users.values().copied().collect();
    counts.sort_unstable();
    UserStats {
        users: users.len(),
        pairs_with_user: counts.iter().sum(),
        min_pairs: counts.first().copied().unwrap_or(0),
        median_pairs: counts
            .get(counts.len().saturating_sub(1) / 2)
            .copied()
            .unwrap_or(0),
        max_pairs: counts.last().copied().unwrap_or(0),
        per_user: users.into_iter().map(|(u, n)| (u.to_string(), n)).collect(),
    }
}

impl std::fmt::Display for DataStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sp = &self.splits;
        writeln!(
            f,
            "pairs        {} (train {}, test {}; {} without a split count as train)",
            self.pairs, sp.train, sp.test, sp.unset
        )?;
        writeln!(f, "attributes   {}", self.attributes.len())?;
        for (name, c) in &self.attributes {
            let ctx = self.context.per_attribute.get(name).copied().unwrap_or(0);
            writeln!(
                f,
                "  {name:<32} train {:>7}  test {:>7}  with context {:>7}",
                c.train, c.test, ctx
            )?;
        }
        if !self.sources.is_empty() {
            let list: Vec<String> = self
                .sources
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            writeln!(f, "sources      {}", list.join(", "))?;
        }
        let u = &self.users;
        if u.users > 0 {
            writeln!(
                f,
                "users        {} ({} pairs; per user min {}, median {}, max {})",
                u.users, u.pairs_with_user, u.min_pairs, u.median_pairs, u.max_pairs
            )?;
        } else {
            writeln!(f, "users        none")?;
        }
        let c = &self.context;
        writeln!(
            f,
            "context      {} pairs ({:.1}%), {} distinct",
            c.with_context,
            100.0 * c.coverage,
            c.distinct
        )?;
        writeln!(
            f,
            "multi-turn   {} prompts; ratings on {} pairs",
            self.multi_turn_prompts, self.with_ratings
        )?;
        writeln!(
            f,
            "length (chars)      min     mean   median      p95      max"
        )?;
        for (name, l) in [
            ("prompt", &self.prompt_chars),
            ("chosen", &self.chosen_chars),
            ("rejected", &self.rejected_chars),
        ] {
            writeln!(
                f,
                "  {name:<10} {:>9} {:>8.0} {:>8} {:>8} {:>8}",
                l.min, l.mean, l.median, l.p95, l.max
            )?;
        }
        let d = &self.duplicates;
        write!(
            f,
            "duplicates   {} exact, {} same responses (other context/attribute), {} reversed, {} chosen = rejected",
            d.exact, d.same_responses, d.reversed, d.chosen_equals_rejected
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_percentiles_match_nearest_rank() {
        let l = LengthStats::of((1..=20).collect());
        assert_eq!((l.min, l.median, l.p95, l.max), (1, 10, 19, 20));
        assert!((l.mean - 10.5).abs() < 1e-12);
        assert_eq!(LengthStats::of(vec![]), LengthStats::default());
    }

    #[test]
    fn counts_splits_contexts_users_and_duplicates() {
        let mut a = PrefPair::new("p", "good", "bad");
        a.attribute = Some("x".into());
        a.context = Some("be good".into());
        a.user_id = Some("u1".into());
        a.split = Some(Split::Train);
        let mut b = a.clone(); // exact duplicate
        b.user_id = Some("u2".into());
        let mut c = PrefPair::new("p", "bad", "good"); // reverse of a, other context
        c.attribute = Some("y".into());
        c.context = Some("be bad".into());
        c.split = Some(Split::Test);
        let d = PrefPair::new("q", "same", "same");
        let s = DataStats::compute(&[a, b, c, d]);
        assert_eq!(
            s.splits,
            SplitCounts {
                train: 3,
                test: 1,
                unset: 1
            }
        );
        assert_eq!(
            s.attributes["x"],
            SplitCounts {
                train: 2,
                test: 0,
                unset: 0
            }
        );
        assert_eq!(s.attributes["all"].unset, 1);
        assert_eq!((s.context.with_context, s.context.distinct), (3, 2));
        assert!((s.context.coverage - 0.75).abs() < 1e-12);
        assert_eq!((s.users.users, s.users.pairs_with_user), (2, 2));
        assert_eq!(
            s.duplicates,
            DuplicateStats {
                exact: 1,
                same_responses: 1,
                reversed: 3,
                chosen_equals_rejected: 1
            }
        );
        assert_eq!(s.chosen_chars.max, 4);
        assert!(s.to_string().contains("duplicates   1 exact"));
    }
}
