//! The train split of the HelpSteer2 layout: Stage 1 pairs labelled by latent users whose share
//! depends on the prompt's topic, and a context-labelled pool per user for Stage 2.

use std::collections::{BTreeMap, HashMap, HashSet};

use rand::seq::SliceRandom;
use rand::Rng;

use super::candidates::{BasePair, Pool};
use super::raters::{Criterion, UserType, USER_TYPES};
use super::select::{rng, to_pair};
use super::BuiltinOptions;
use crate::{PrefPair, Split};

/// Independent random streams (the selection module uses 1-3).
const STREAM_FAVOUR: u64 = 4;
const STREAM_LATENT: u64 = 5;

/// For each topic: whether it favours the reversed user of a criterion (`detailed`,
/// `playful`, `culture_fan`) rather than the forward one.
pub type Favour = HashMap<String, bool>;

/// Assigns each topic a favoured side so that the two sides favour about the same number of
/// Stage 1 pairs: topics in a seeded order, each to the side with fewer pairs so far (a coin
/// flip on a tie). Balanced masses keep each side's overall share near one half, so a model
/// that ignores the prompt sits near 0.5 on both users.
pub fn favoured_sides(pool: &Pool, stage1: &[&BasePair], rng: &mut impl Rng) -> Favour {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for b in stage1 {
        *counts
            .entry(pool.questions[b.question].topic.as_str())
            .or_insert(0) += 1;
    }
    let mut order: Vec<(&str, usize)> = counts.into_iter().collect();
    order.shuffle(rng);
    let (mut forward, mut reversed) = (0, 0);
    let mut favour = Favour::new();
    for (topic, n) in order {
        let to_reversed = match reversed.cmp(&forward) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => rng.random_bool(0.5),
        };
        *(if to_reversed {
            &mut reversed
        } else {
            &mut forward
        }) += n;
        favour.insert(topic.to_string(), to_reversed);
    }
    favour
}

/// The train pairs of the HelpSteer2 layout: per criterion, the train-prompt pairs in
/// round-robin order give first the pool (`pool_per_user` per user, dealt in turn, so opposite
/// users get different triples), then up to `pairs_per_user` Stage 1 pairs.
pub fn train_pairs(
    pool: &Pool,
    ordered: &BTreeMap<Criterion, Vec<BasePair>>,
    test: &HashSet<usize>,
    opts: &BuiltinOptions,
) -> Vec<PrefPair> {
    let mut favour_rng = rng(opts.seed, STREAM_FAVOUR);
    let mut latent_rng = rng(opts.seed, STREAM_LATENT);
    let mut out = Vec::new();
    for (criterion, bases) in ordered {
        let users: Vec<&UserType> = USER_TYPES
            .iter()
            .filter(|u| u.criterion == *criterion)
            .collect();
        let mut train = bases.iter().filter(|b| !test.contains(&b.question));
        for (i, base) in train
            .by_ref()
            .take(opts.pool_per_user * users.len())
            .enumerate()
        {
            let user = users[i % users.len()];
            let mut p = to_pair(pool, user, base, Split::Train, i / users.len());
            p.id = Some(format!("builtin-pool-{}-{:04}", user.name, i / users.len()));
            out.push(p);
        }
        let stage1: Vec<&BasePair> = train.take(opts.pairs_per_user).collect();
        let favour = favoured_sides(pool, &stage1, &mut favour_rng);
        for (i, base) in stage1.into_iter().enumerate() {
            let favours_reversed = favour[&pool.questions[base.question].topic];
            let user = latent_user(
                &users,
                favours_reversed,
                opts.majority_share,
                &mut latent_rng,
            );
            let mut p = to_pair(pool, user, base, Split::Train, i);
            p.id = Some(format!("builtin-stage1-{criterion:?}-{i:04}").to_lowercase());
            p.context = None;
            p.attribute = None;
            out.push(p);
        }
    }
    out
}

/// The user who labels one Stage 1 pair: the only user of a one-user criterion, else the side
/// the topic favours with probability `share` and the other side otherwise.
fn latent_user<'a>(
    users: &[&'a UserType],
    favours_reversed: bool,
    share: f64,
    rng: &mut impl Rng,
) -> &'a UserType {
    let [forward, reversed] = users else {
        return users[0];
    };
    let majority = rng.random_bool(share);
    if favours_reversed == majority {
        reversed
    } else {
        forward
    }
}
