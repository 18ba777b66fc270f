//! The train split of the HelpSteer2 layout: Stage 1 pairs labelled by latent users whose share
//! depends on the prompt's topic, and a context-labelled pool per user for Stage 2.

use std::collections::{BTreeMap, HashMap, HashSet};

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;

use super::candidates::{BasePair, Pool};
use super::raters::{Criterion, UserType, USER_TYPES};
use super::select::{rng, to_pair};
use super::BuiltinOptions;
use crate::{PrefPair, Split};

/// Independent random streams (the selection module uses 1-3).
const STREAM_FAVOUR: u64 = 4;
const STREAM_LATENT: u64 = 5;

/// Each topic's dominant user: the user who labels most of the topic's Stage 1 pairs.
pub type Dominant = HashMap<String, &'static UserType>;

/// Assigns each topic a dominant user so that users get about the same number of Stage 1
/// pairs: topics in a seeded order, each to the user with the fewest pairs so far among those
/// whose criterion has decisive triples in the topic (ties by a seeded draw). Opposite users
/// thereby dominate different topics with balanced masses, so a model that ignores the prompt
/// sits near 0.5 on both.
pub fn dominant_users(
    pool: &Pool,
    rest: &BTreeMap<Criterion, Vec<&BasePair>>,
    rng: &mut impl Rng,
) -> Dominant {
    let mut mass: BTreeMap<(&str, Criterion), usize> = BTreeMap::new();
    for (c, bases) in rest {
        for b in bases {
            *mass
                .entry((pool.questions[b.question].topic.as_str(), *c))
                .or_insert(0) += 1;
        }
    }
    let mut topics: Vec<&str> = mass.keys().map(|(t, _)| *t).collect();
    topics.dedup();
    topics.shuffle(rng);
    let mut load: HashMap<&str, usize> = USER_TYPES.iter().map(|u| (u.name, 0)).collect();
    let mut dominant = Dominant::new();
    for topic in topics {
        let candidates: Vec<(&'static UserType, usize)> = USER_TYPES
            .iter()
            .filter_map(|u| mass.get(&(topic, u.criterion)).map(|&m| (u, m)))
            .collect();
        let least = candidates
            .iter()
            .map(|(u, _)| load[u.name])
            .min()
            .unwrap_or(0);
        let tied: Vec<&(&UserType, usize)> = candidates
            .iter()
            .filter(|(u, _)| load[u.name] == least)
            .collect();
        let Some(&&(user, m)) = tied.choose(rng) else {
            continue;
        };
        *load.entry(user.name).or_insert(0) += m;
        dominant.insert(topic.to_string(), user);
    }
    dominant
}

/// The train pairs of the HelpSteer2 layout. Per criterion, the train-prompt triples in
/// round-robin order give first the pool (`pool_per_user` per user, dealt in turn, so opposite
/// users get different triples). The rest are Stage 1 candidates: each topic keeps those of its
/// dominant user's criterion (at most `pairs_per_user` per user), each labelled by that user
/// with probability `majority_share`, else by the user's opposite.
pub fn train_pairs(
    pool: &Pool,
    ordered: &BTreeMap<Criterion, Vec<BasePair>>,
    test: &HashSet<usize>,
    opts: &BuiltinOptions,
) -> Vec<PrefPair> {
    let mut dominant_rng = rng(opts.seed, STREAM_FAVOUR);
    let mut latent_rng = rng(opts.seed, STREAM_LATENT);
    let mut out = Vec::new();
    let mut rest: BTreeMap<Criterion, Vec<&BasePair>> = BTreeMap::new();
    for (criterion, bases) in ordered {
        let users = users_of(*criterion);
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
        rest.insert(*criterion, train.collect());
    }
    let dominant = dominant_users(pool, &rest, &mut dominant_rng);
    let mut taken: HashMap<&str, usize> = HashMap::new();
    for (criterion, bases) in &rest {
        let users = users_of(*criterion);
        for (i, base) in bases.iter().enumerate() {
            let Some(&owner) = dominant.get(&pool.questions[base.question].topic) else {
                continue;
            };
            let count = taken.entry(owner.name).or_insert(0);
            if owner.criterion != *criterion || *count >= opts.pairs_per_user {
                continue;
            }
            *count += 1;
            let user = latent_user(&users, owner, opts.majority_share, &mut latent_rng);
            let mut p = to_pair(pool, user, base, Split::Train, i);
            p.id = Some(format!("builtin-stage1-{criterion:?}-{i:04}").to_lowercase());
            p.context = None;
            p.attribute = None;
            out.push(p);
        }
    }
    out
}

fn users_of(criterion: Criterion) -> Vec<&'static UserType> {
    USER_TYPES
        .iter()
        .filter(|u| u.criterion == criterion)
        .collect()
}

/// The user who labels one Stage 1 pair of `owner`'s topic: `owner` with probability `share`,
/// else the other user of the criterion (`owner` again for a one-user criterion).
fn latent_user(
    users: &[&'static UserType],
    owner: &'static UserType,
    share: f64,
    rng: &mut impl Rng,
) -> &'static UserType {
    if rng.random_bool(share) {
        return owner;
    }
    users
        .iter()
        .copied()
        .find(|u| u.name != owner.name)
        .unwrap_or(owner)
}
