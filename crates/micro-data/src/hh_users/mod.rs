//! A multi-user set on real HH-RLHF conversations: the real human label plus simulated users
//! who reverse each other.
//!
//! The input is the HH-RLHF harmless-base test file (`../shared/data/hh-rlhf/
//! harmless-base-test.jsonl.gz`, 2,312 rows, 2,307 pairs after the [`crate::formats::hh`]
//! loader skips the five whose two transcripts diverge before the last turn). Every pair is a
//! real (prompt, response, response) triple; the prompt keeps the whole conversation as turns.
//!
//! # Users
//! | user | context | prefers | indifferent (pair dropped) when |
//! |---|---|---|---|
//! | `harmless` | "I want a harmless assistant: it should not help with anything dangerous, illegal, unethical or hurtful." | HH-RLHF's `chosen` over its `rejected`, as the human annotators chose | never |
//! | `curious` | "I like an assistant that engages with me: it should end its reply by asking me a question about what I need." | the reply whose last non-blank character is `?` over one with no `?` anywhere | neither or both end with `?`, or the other reply has a `?` somewhere |
//! | `direct` | "Just answer me: I do not want the assistant to ask me questions back." | the reverse of `curious` | as `curious` |
//! | `cautious` | "I value caution: the assistant should admit uncertainty and hedge its claims (maybe, probably, I think) rather than sound sure." | a reply with at least 2 hedge markers over one with none | both have markers, or the hedging one has a single marker |
//! | `confident` | "I want confident answers: the assistant should state things plainly, with no hedging such as maybe, probably or I think." | the reverse of `cautious` | as `cautious` |
//!
//! Hedge markers ([`raters::hedge_markers`]) are counted over lower-case words (runs of ASCII
//! letters and apostrophes, curly apostrophes straightened, quotes trimmed): each of the words
//! maybe, perhaps, possibly, probably, might, may, could, seems, seem, likely, unlikely, unsure,
//! guess, suppose, apparently, and each of the phrases "i think", "not sure", "i don't know",
//! "i believe", "sort of", "kind of", "it depends", counts once. None of these raters reads
//! length, register (contractions, exclamation marks, slang) or topic, the built-in set's
//! criteria.
//!
//! Opposite users judge exactly the same triples in reverse (as in RPR), so any one reward
//! model that ignores who is asking averages 50% over each opposite pair. `attribute` and
//! `user_id` are the user's name, `context` the sentence above (none with
//! [`HhUsersOptions::ids_only`]: users known by id alone); `chosen_rating` /
//! `rejected_rating` are the rater's score (1/0 for asking back, the hedge-marker count, its
//! negation for `confident`; none for `harmless`).
//!
//! # Sizes and split
//! Each rater's decisive triples are shuffled (seeded, one stream per rater) and the first `n`
//! kept, where `n` is the same for every user: [`HhUsersOptions::pairs_per_user`] (450), or
//! fewer when a rater has fewer decisive triples; `harmless` draws its `n` from all 2,307. On
//! the real file 745 triples are decisive for `curious`/`direct` and 374 for
//! `cautious`/`confident` (see [`HhUsersReport`]), so every user gets 374 pairs: 1,870 pairs
//! in all, about 300 train and 75 test per user. Prompts (the whole conversation) are split 80/20 by a seeded
//! shuffle ([`crate::split::PromptSplit`]), the same for every user, so no conversation is in
//! both splits.
//!
//! # Learnability
//! The raters were chosen so that a linear head on all-MiniLM-L6-v2 features (last user turn +
//! response) learns each alone: one single-head BT model per user (`micro train --method
//! single`), test accuracy, mean ± std over seeds 0-4: harmless 0.519 ± 0.081, curious 0.778 ±
//! 0.039, direct 0.775 ± 0.033, cautious 0.798 ± 0.039, confident 0.805 ± 0.038; one single head
//! on all five users: 0.558 / 0.492 / 0.508 / 0.493 / 0.507. `docs/data.md` has the script and
//! the raters tried and dropped.

pub mod raters;

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::split::{check_fraction, PromptSplit};
use crate::{DataError, PrefPair, Result};

/// What a user's preference is computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rater {
    /// The real HH-RLHF label.
    Human,
    /// [`raters::curious`].
    AsksBack,
    /// [`raters::cautious`].
    Hedging,
}

/// One user of the set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HhUser {
    pub name: &'static str,
    pub rater: Rater,
    /// Prefers the other reply of every pair its rater is decisive on.
    pub reversed: bool,
    pub context: &'static str,
}

/// The five users, in output order; opposite users follow each other.
pub const USERS: [HhUser; 5] = [
    HhUser {
        name: "harmless",
        rater: Rater::Human,
        reversed: false,
        context: "I want a harmless assistant: it should not help with anything dangerous, illegal, unethical or hurtful.",
    },
    HhUser {
        name: "curious",
        rater: Rater::AsksBack,
        reversed: false,
        context: "I like an assistant that engages with me: it should end its reply by asking me a question about what I need.",
    },
    HhUser {
        name: "direct",
        rater: Rater::AsksBack,
        reversed: true,
        context: "Just answer me: I do not want the assistant to ask me questions back.",
    },
    HhUser {
        name: "cautious",
        rater: Rater::Hedging,
        reversed: false,
        context: "I value caution: the assistant should admit uncertainty and hedge its claims (maybe, probably, I think) rather than sound sure.",
    },
    HhUser {
        name: "confident",
        rater: Rater::Hedging,
        reversed: true,
        context: "I want confident answers: the assistant should state things plainly, with no hedging such as maybe, probably or I think.",
    },
];

/// How to build the set (with the `clap` feature: the flags of `micro data hh-users`). Every
/// user gets the same number of pairs: `pairs_per_user`, or the fewest decisive triples of any
/// rater when that is less.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct HhUsersOptions {
    /// Random seed (selection and split).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = HhUsersOptions::default().seed))]
    pub seed: u64,
    /// Pairs per user (fewer only when a rater has fewer decisive pairs).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = HhUsersOptions::default().pairs_per_user))]
    pub pairs_per_user: usize,
    /// Fraction of the prompts in the test split.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = HhUsersOptions::default().test_fraction))]
    pub test_fraction: f64,
    /// Leave out the users' context sentences: users known only by their id, as real annotator
    /// sets arrive.
    #[cfg_attr(feature = "clap", arg(long))]
    pub ids_only: bool,
}

impl Default for HhUsersOptions {
    fn default() -> Self {
        HhUsersOptions {
            seed: 0,
            pairs_per_user: 450,
            test_fraction: 0.2,
            ids_only: false,
        }
    }
}

/// What the build found and kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HhUsersReport {
    /// Input pairs (triples).
    pub input: usize,
    /// Triples each rater is decisive on (`harmless`: all).
    pub decisive: BTreeMap<String, usize>,
    /// Pairs kept per user.
    pub pairs: BTreeMap<String, usize>,
    /// Distinct prompts in each split, over the whole input.
    pub train_prompts: usize,
    pub test_prompts: usize,
}

impl HhUsersReport {
    /// What `micro data hh-users` prints once `pairs` (summarised by `stats`) are written to
    /// `output`: a line per user, then the totals.
    pub fn lines(&self, stats: &crate::DataStats, output: &std::path::Path) -> Vec<String> {
        let mut lines: Vec<String> = (self.pairs.iter())
            .map(|(user, n)| {
                let decisive = self.decisive.get(user).copied().unwrap_or(0);
                format!("  {user:<10} {n} pairs of {decisive} decisive")
            })
            .collect();
        lines.push(format!(
            "wrote {} pairs (train {}, test {}; {} / {} prompts) to {}",
            stats.pairs,
            stats.splits.train,
            stats.splits.test,
            self.train_prompts,
            self.test_prompts,
            output.display()
        ));
        lines
    }
}

/// Builds the set from HH-RLHF pairs (as the `hh-rlhf` loader gives them); see the module docs.
pub fn build(input: &[PrefPair], opts: &HhUsersOptions) -> Result<(Vec<PrefPair>, HhUsersReport)> {
    check_fraction(opts.test_fraction)?;
    if opts.pairs_per_user == 0 {
        return Err(DataError::NoPairsPerUser);
    }
    if input.is_empty() {
        return Err(DataError::NoInputPairs);
    }
    let keys: Vec<String> = input.iter().map(|p| p.prompt.to_text()).collect();
    let split = PromptSplit::new(
        keys.iter().map(String::as_str),
        opts.test_fraction,
        opts.seed,
    );
    let distinct: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    let mut report = HhUsersReport {
        input: input.len(),
        test_prompts: split.test_prompts(),
        train_prompts: distinct.len() - split.test_prompts(),
        ..Default::default()
    };
    let raters = [Rater::Human, Rater::AsksBack, Rater::Hedging];
    let decisive: Vec<Vec<(usize, bool)>> = raters.iter().map(|r| decisive(input, *r)).collect();
    // Balanced: every user gets as many pairs as the scarcest rater allows, up to the cap.
    let n = decisive
        .iter()
        .map(Vec::len)
        .fold(opts.pairs_per_user, usize::min);
    let mut out = Vec::new();
    for (stream, (rater, triples)) in raters.into_iter().zip(decisive).enumerate() {
        let chosen = select(triples.clone(), n, opts.seed, stream as u64);
        for user in USERS.iter().filter(|u| u.rater == rater) {
            report.decisive.insert(user.name.into(), triples.len());
            report.pairs.insert(user.name.into(), chosen.len());
            for &(i, a_first) in &chosen {
                let mut pair = to_pair(&input[i], user, a_first, split.of(&keys[i]));
                if opts.ids_only {
                    pair.context = None;
                }
                out.push(pair);
            }
        }
    }
    Ok((out, report))
}

/// The indices of the triples `rater` is decisive on, each with whether the forward user
/// prefers the input's `chosen`.
fn decisive(input: &[PrefPair], rater: Rater) -> Vec<(usize, bool)> {
    input
        .iter()
        .enumerate()
        .filter(|(_, p)| p.chosen != p.rejected)
        .filter_map(|(i, p)| {
            let verdict = match rater {
                Rater::Human => Some(true),
                Rater::AsksBack => raters::curious(&p.chosen, &p.rejected),
                Rater::Hedging => raters::cautious(&p.chosen, &p.rejected),
            };
            verdict.map(|v| (i, v))
        })
        .collect()
}

/// A seeded shuffle of `triples`, the first `n` kept, in input order.
fn select(mut triples: Vec<(usize, bool)>, n: usize, seed: u64, stream: u64) -> Vec<(usize, bool)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    triples.shuffle(&mut rng);
    triples.truncate(n);
    triples.sort_unstable();
    triples
}

fn to_pair(p: &PrefPair, user: &HhUser, input_chosen_first: bool, split: crate::Split) -> PrefPair {
    let keep = input_chosen_first != user.reversed;
    let (chosen, rejected) = if keep {
        (&p.chosen, &p.rejected)
    } else {
        (&p.rejected, &p.chosen)
    };
    let rating = |text: &str| match user.rater {
        Rater::Human => None,
        Rater::AsksBack => Some(f64::from(u8::from(
            raters::asks_back(text) != user.reversed,
        ))),
        Rater::Hedging => {
            let n = raters::hedge_markers(text) as f64;
            Some(if user.reversed { -n } else { n })
        }
    };
    PrefPair {
        id: Some(format!("{}:{}", p.id.as_deref().unwrap_or("hh"), user.name)),
        prompt: p.prompt.clone(),
        chosen: chosen.clone(),
        rejected: rejected.clone(),
        context: Some(user.context.to_string()),
        attribute: Some(user.name.to_string()),
        user_id: Some(user.name.to_string()),
        split: Some(split),
        chosen_rating: rating(chosen),
        rejected_rating: rating(rejected),
        margin: None,
        source: Some("hh-rlhf harmless-base, micro hh-users".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Split;

    fn pair(q: &str, chosen: &str, rejected: &str) -> PrefPair {
        PrefPair {
            id: Some(q.into()),
            ..PrefPair::new(q, chosen, rejected)
        }
    }

    #[test]
    fn opposite_users_reverse_the_same_triples() {
        let input = vec![
            pair("q1", "Fine, here.", "What do you need?"),
            pair("q2", "Maybe, probably.", "Yes."),
            pair("q3", "No.", "Why?"),
            pair("q4", "Nope.", "Perhaps, maybe not."),
        ];
        let opts = HhUsersOptions {
            pairs_per_user: 10,
            test_fraction: 0.5,
            seed: 1,
            ids_only: false,
        };
        let (pairs, report) = build(&input, &opts).unwrap();
        assert_eq!(report.decisive["harmless"], 4);
        assert_eq!(report.decisive["curious"], 2);
        assert_eq!(report.decisive["cautious"], 2);
        let of = |u: &str| pairs.iter().filter(|p| p.group() == u).collect::<Vec<_>>();
        let (curious, direct) = (of("curious"), of("direct"));
        assert_eq!(curious.len(), 2);
        for (c, d) in curious.iter().zip(&direct) {
            assert_eq!(
                (c.prompt.clone(), &c.chosen, &c.rejected),
                (d.prompt.clone(), &d.rejected, &d.chosen)
            );
            assert!(raters::asks_back(&c.chosen));
            assert_eq!((c.chosen_rating, c.rejected_rating), (Some(1.0), Some(0.0)));
        }
        let chosen = |u: &str| of(u).iter().map(|p| p.chosen.as_str()).collect::<Vec<_>>();
        assert_eq!(
            chosen("cautious"),
            ["Maybe, probably.", "Perhaps, maybe not."]
        );
        assert_eq!(chosen("confident"), ["Yes.", "Nope."]);
        // The real label keeps HH's own choice; two of its four triples are drawn.
        let harmless = of("harmless");
        assert_eq!(harmless.len(), 2);
        assert!(harmless.iter().all(|p| input
            .iter()
            .any(|q| q.chosen == p.chosen && q.rejected == p.rejected)));
        // Each prompt is in one split for every user.
        for p in &pairs {
            let same = pairs.iter().filter(|q| q.prompt == p.prompt);
            assert!(same.map(|q| q.split).all(|s| s == p.split));
            assert!(p.context.is_some() && p.user_id == p.attribute);
        }
        let test_prompts: BTreeSet<String> = pairs
            .iter()
            .filter(|p| p.split == Some(Split::Test))
            .map(|p| p.prompt.to_text())
            .collect();
        assert_eq!(report.test_prompts, 2);
        assert!(test_prompts.len() <= 2);
        // Ids only: the same pairs without their context sentences.
        let ids = build(
            &input,
            &HhUsersOptions {
                ids_only: true,
                ..opts
            },
        )
        .unwrap()
        .0;
        assert_eq!(ids.len(), pairs.len());
        for (a, b) in ids.iter().zip(&pairs) {
            assert_eq!(a.context, None);
            assert_eq!((&a.user_id, &a.chosen), (&b.user_id, &b.chosen));
        }
    }

    #[test]
    fn the_cap_balances_users() {
        let input: Vec<PrefPair> = (0..30)
            .map(|i| pair(&format!("q{i}"), "Is that it?", "That is it."))
            .collect();
        let mut input = input;
        input[0].chosen = "Maybe, I think.".into();
        input[1].rejected = "Perhaps it might.".into();
        let opts = HhUsersOptions {
            pairs_per_user: 7,
            ..Default::default()
        };
        let (pairs, report) = build(&input, &opts).unwrap();
        let stats = crate::DataStats::compute(&pairs);
        let lines = report.lines(&stats, std::path::Path::new("hh.jsonl"));
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[0], "  cautious   2 pairs of 2 decisive");
        assert_eq!(lines[2], "  curious    2 pairs of 29 decisive");
        assert_eq!(
            lines[5],
            format!(
                "wrote 10 pairs (train {}, test {}; {} / {} prompts) to hh.jsonl",
                stats.splits.train, stats.splits.test, report.train_prompts, report.test_prompts
            )
        );
        assert_eq!(stats.splits.train + stats.splits.test, 10);
        // Hedging is decisive on two triples only: every user gets two.
        assert_eq!(report.decisive["cautious"], 2);
        assert_eq!(report.decisive["curious"], 29);
        assert_eq!(report.pairs.values().collect::<Vec<_>>(), [&2; 5]);
        assert_eq!(pairs.len(), 10);
        let opts = HhUsersOptions {
            pairs_per_user: 1,
            ..opts
        };
        assert_eq!(build(&input, &opts).unwrap().0.len(), 5);
        assert!(build(
            &input,
            &HhUsersOptions {
                pairs_per_user: 0,
                ..opts
            }
        )
        .is_err());
    }
}
