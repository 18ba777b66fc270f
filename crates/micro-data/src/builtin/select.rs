//! Choosing balanced pairs per criterion, splitting by prompt, and giving pairs to users.

use std::collections::{BTreeMap, HashSet};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::candidates::{draw_candidates, judge_pairs, BasePair, Candidate, Pool};
use super::corpus::Corpus;
use super::raters::{domain_of, Criterion, Domain, UserType, USER_TYPES};
use super::{latent, BuiltinLayout, BuiltinOptions};
use crate::{PrefPair, Prompt, Split};

/// Independent random streams, so changing one step does not reshuffle the others.
const STREAM_CANDIDATES: u64 = 1;
const STREAM_SELECT: u64 = 2;
const STREAM_SPLIT: u64 = 3;

pub(super) const SOURCE: &str = "chatterbot-corpus 1.3.3";

pub(super) fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

pub fn pairs_from_corpus(corpus: &Corpus, opts: &BuiltinOptions) -> Vec<PrefPair> {
    let pool = Pool::new(&corpus.exchanges);
    let mut by_criterion: BTreeMap<Criterion, Vec<BasePair>> = BTreeMap::new();
    let mut cand_rng = rng(opts.seed, STREAM_CANDIDATES);
    for q in 0..pool.questions.len() {
        let cands = draw_candidates(&pool, q, opts.candidates_per_prompt, &mut cand_rng);
        for p in judge_pairs(&pool, q, &cands) {
            by_criterion.entry(p.criterion).or_default().push(p);
        }
    }
    // Every decisive pair in round-robin order; the default layout keeps the first
    // `pairs_per_user`, the HelpSteer2 layout keeps those as its test split and draws its train
    // split from the rest of the order.
    let mut select_rng = rng(opts.seed, STREAM_SELECT);
    let ordered: BTreeMap<Criterion, Vec<BasePair>> = by_criterion
        .into_iter()
        .map(|(c, pairs)| (c, round_robin(pairs, usize::MAX, &mut select_rng)))
        .collect();
    let test = test_questions(&pool, opts);
    let keep_train = opts.layout == BuiltinLayout::Rpr;
    let mut out = Vec::new();
    for user in &USER_TYPES {
        let chosen = ordered.get(&user.criterion).into_iter().flatten();
        for (i, base) in chosen.take(opts.pairs_per_user).enumerate() {
            let split = if test.contains(&base.question) {
                Split::Test
            } else {
                Split::Train
            };
            if split == Split::Test || keep_train {
                out.push(to_pair(&pool, user, base, split, i));
            }
        }
    }
    if opts.layout == BuiltinLayout::HelpSteer2 {
        out.extend(latent::train_pairs(&pool, &ordered, &test, opts));
    }
    out
}

/// Shuffles, then orders by how many earlier pairs the same prompt has, so every prompt with a
/// decisive pair gives one before any gives a second; keeps the first `n`.
fn round_robin(mut pairs: Vec<BasePair>, n: usize, rng: &mut ChaCha8Rng) -> Vec<BasePair> {
    pairs.shuffle(rng);
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    let mut ranked: Vec<(usize, usize, BasePair)> = pairs
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let rank = seen.entry(p.question).or_insert(0);
            *rank += 1;
            (*rank, i, p)
        })
        .collect();
    ranked.sort_by_key(|(rank, i, _)| (*rank, *i));
    ranked.into_iter().take(n).map(|(_, _, p)| p).collect()
}

/// The questions in the test split: a seeded shuffle of all prompts, the first
/// `test_fraction` of them (at least one, at most all but one).
fn test_questions(pool: &Pool, opts: &BuiltinOptions) -> HashSet<usize> {
    let mut order: Vec<usize> = (0..pool.questions.len()).collect();
    order.shuffle(&mut rng(opts.seed, STREAM_SPLIT));
    let n = order.len();
    let k = ((n as f64 * opts.test_fraction).round() as usize).clamp(1.min(n), n.saturating_sub(1));
    order.into_iter().take(k).collect()
}

pub(super) fn to_pair(
    pool: &Pool,
    user: &UserType,
    base: &BasePair,
    split: Split,
    i: usize,
) -> PrefPair {
    let (chosen, rejected) = if user.reversed {
        (&base.second, &base.first)
    } else {
        (&base.first, &base.second)
    };
    PrefPair {
        id: Some(format!("builtin-{}-{i:04}", user.name)),
        prompt: Prompt::Text(pool.questions[base.question].text.clone()),
        chosen: pool.answers[chosen.answer].text.clone(),
        rejected: pool.answers[rejected.answer].text.clone(),
        context: Some(user.context.to_string()),
        attribute: Some(user.name.to_string()),
        user_id: Some(user.name.to_string()),
        split: Some(split),
        chosen_rating: Some(rating(pool, user, chosen)),
        rejected_rating: Some(rating(pool, user, rejected)),
        margin: None,
        source: Some(SOURCE.to_string()),
    }
}

/// The rater's score of one reply for `user`, higher = preferred.
fn rating(pool: &Pool, user: &UserType, c: &Candidate) -> f64 {
    let a = &pool.answers[c.answer];
    let forward = match user.criterion {
        Criterion::Length => -(a.words as f64),
        Criterion::Register => -(a.markers as f64),
        Criterion::Domain => f64::from(u8::from(domain_of(&c.topic) == Domain::Tech)),
        Criterion::Relevance => f64::from(c.relevance),
    };
    match (user.reversed, user.criterion) {
        (false, _) => forward,
        (true, Criterion::Domain) => 1.0 - forward,
        (true, _) => -forward,
    }
}
