//! Users known only by id, offline: each user's labelled training pairs, up to a budget of B
//! (drawn at random or chosen one at a time by the information of their answers), folded into
//! that user's weights over the experts, the very state the server keeps for a user
//! ([`UserState`]: the experts' prior, the Bayesian update). A user with fewer than B pairs uses
//! what there is; the states say how many each had. Evaluation then scores each user's test
//! pairs with their own weights, and `micro serve` can start from the states.
//!
//! Real people mostly arrive this way, as ids with a few labels each and no sentence about
//! themselves; the pairs a user labelled with a context go to context routing instead
//! ([`crate::adapt()`]).
//!
//! ```
//! use micro_route::evidence::ExpertView;
//! use micro_route::fixture::{random_model, users_cache};
//! use micro_route::users::{adapt_users, UserJob};
//! let model = random_model(4, 3, None, 1);
//! let cache = users_cache(4, &[("ann", 30), ("bob", 4)], 2);
//! let view = ExpertView::new(&model, &cache, None).unwrap();
//! let states = adapt_users(&view, &UserJob { budget: 10, ..UserJob::default() }).unwrap();
//! assert_eq!((states.users["ann"].used, states.users["ann"].pool), (10, 30));
//! assert_eq!((states.users["bob"].used, states.users["bob"].pool), (4, 4));
//! assert_eq!(states.users["ann"].state.k(), 4); // three heads and the gate
//! ```

use crate::budget::{draw, has_context};
use crate::error::{Result, RouteError};
use crate::evidence::ExpertView;
use crate::experts::{Experts, Fit};
use crate::online::{UserState, BAYES};
use crate::query::information::{tie_key, Candidates};
use crate::query::MIN_INFORMATION;
use micro_cache::EmbeddingCache;
use micro_model::{MixtureModel, Selection};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The file of adapted user states in a model folder (one JSON object per line).
pub const USER_STATES_FILE: &str = "user-states.jsonl";

/// How to adapt the users.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UserJob {
    /// Labelled pairs per user, at most (B).
    pub budget: usize,
    pub select: Selection,
    /// Seeds the random draw (and the active choice's ties).
    pub seed: u64,
}

impl Default for UserJob {
    fn default() -> Self {
        UserJob {
            budget: 50,
            select: Selection::Random,
            seed: 0,
        }
    }
}

/// One user's adapted state and what it was made from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub user_id: String,
    /// The user's labelled training pairs.
    pub pool: usize,
    /// Of them, the ones folded in (min(B, pool)).
    pub used: usize,
    /// The cache rows used, in the order folded in.
    #[serde(default)]
    pub rows: Vec<usize>,
    /// Every expert's margin on each row used (its evidence), in the order folded in: what a
    /// server replays as the user's feedback log when it starts from these states.
    #[serde(default)]
    pub margins: Vec<Vec<f32>>,
    /// What the weights favour: a head, or the shared reward.
    pub fit: Fit,
    pub state: UserState,
}

/// Every adapted user, by id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserStates {
    pub users: BTreeMap<String, UserRecord>,
    /// Labelled pairs judged in sample (no cross-fitted evidence for them).
    pub in_sample: usize,
}

impl UserStates {
    /// The state of `user`, if adapted.
    pub fn get(&self, user: &str) -> Option<&UserState> {
        self.users.get(user).map(|r| &r.state)
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Writes `dir/user-states.jsonl` (nothing is written for no users).
    pub fn save(&self, dir: &Path) -> Result<()> {
        if self.users.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for r in self.users.values() {
            let line = serde_json::to_string(r).map_err(|e| RouteError::UserStates {
                path: dir.join(USER_STATES_FILE).display().to_string(),
                message: e.to_string(),
            })?;
            text.push_str(&line);
            text.push('\n');
        }
        let path = dir.join(USER_STATES_FILE);
        std::fs::write(&path, text).map_err(|e| RouteError::UserStates {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Reads `dir/user-states.jsonl`; no users when the folder has none.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(USER_STATES_FILE);
        if !path.is_file() {
            return Ok(UserStates::default());
        }
        let bad = |line: usize, message: String| RouteError::UserStates {
            path: format!("{}:{line}", path.display()),
            message,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| bad(0, e.to_string()))?;
        let mut users = BTreeMap::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let r: UserRecord =
                serde_json::from_str(line).map_err(|e| bad(n + 1, e.to_string()))?;
            users.insert(r.user_id.clone(), r);
        }
        Ok(UserStates {
            users,
            in_sample: 0,
        })
    }
}

/// log weights over the heads that pair `i` of `cache` is scored with: its user's adapted
/// weights over the experts where `users` has them (the gate's share handed to the heads as the
/// gate weighs them), else the model's gate with the user's table row where Stage 1 knew them.
pub fn pair_log_weights(
    model: &MixtureModel,
    cache: &EmbeddingCache,
    i: usize,
    users: &UserStates,
) -> Vec<f32> {
    let user = cache.pairs[i].user_id.as_deref();
    let log_gate = model.log_weights_for(cache.routed_input(i), user);
    match user.and_then(|u| users.get(u)) {
        Some(state) => {
            let w: Vec<f64> = state.log_weights.iter().map(|l| l.exp()).collect();
            let heads = Experts::of(model).head_weights(&w, &log_gate);
            heads.iter().map(|w| w.max(0.0).ln()).collect()
        }
        None => log_gate,
    }
}

/// The training pairs of each user known only by id: pairs with a `user_id` and no context, in
/// cache order.
pub fn id_pools(cache: &EmbeddingCache) -> BTreeMap<String, Vec<usize>> {
    let mut pools: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, p) in cache.pairs.iter().enumerate() {
        if let (true, false, Some(u)) = (p.is_train(), has_context(p), p.user_id.as_deref()) {
            pools.entry(u.to_string()).or_default().push(i);
        }
    }
    pools
}

/// Every id-only user's state, from up to `job.budget` of their labelled training pairs.
///
/// Errors: no user known only by id among the training pairs.
pub fn adapt_users(view: &ExpertView<'_>, job: &UserJob) -> Result<UserStates> {
    let pools = id_pools(view.cache);
    if pools.is_empty() {
        return Err(RouteError::NoUserIds {
            pairs: view.cache.indices(|p| p.is_train()).len(),
        });
    }
    let picked: BTreeMap<&str, Vec<usize>> = (pools.iter())
        .map(|(user, pool)| {
            let rows = match job.select {
                Selection::Random => draw(pool, job.budget, job.seed, user),
                Selection::Active => choose(view, pool, job.budget, job.seed),
            };
            (user.as_str(), rows)
        })
        .collect();
    let mut out = states_of(view, &picked);
    for (user, r) in out.users.iter_mut() {
        r.pool = pools[user].len();
    }
    Ok(out)
}

/// Each user's state from the labelled rows given for them (already budgeted, in the order to
/// fold them in); `pool` is set to the rows given.
pub fn states_of(view: &ExpertView<'_>, rows: &BTreeMap<&str, Vec<usize>>) -> UserStates {
    let mut out = UserStates::default();
    for (&user, rows) in rows {
        out.in_sample += view.in_sample(rows);
        let margins: Vec<Vec<f32>> = rows.iter().map(|&i| view.evidence(i)).collect();
        let state = fold_margins(view, &margins);
        let w: Vec<f64> = state.log_weights.iter().map(|l| l.exp()).collect();
        out.users.insert(
            user.to_string(),
            UserRecord {
                user_id: user.to_string(),
                pool: rows.len(),
                used: rows.len(),
                fit: view.experts().fit(&w),
                rows: rows.clone(),
                margins,
                state,
            },
        );
    }
    out
}

/// The rows of `rows` that belong to users known only by id, by user (in the given order).
pub fn by_user<'c>(cache: &'c EmbeddingCache, rows: &[usize]) -> BTreeMap<&'c str, Vec<usize>> {
    let mut out: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in rows {
        let p = &cache.pairs[i];
        if let (false, Some(u)) = (has_context(p), p.user_id.as_deref()) {
            out.entry(u).or_default().push(i);
        }
    }
    out
}

/// A new user's state folded with the evidence of `rows` (each pair's chosen response first).
pub fn fold(view: &ExpertView<'_>, rows: &[usize]) -> UserState {
    let margins: Vec<Vec<f32>> = rows.iter().map(|&i| view.evidence(i)).collect();
    fold_margins(view, &margins)
}

/// A new user's state (the experts' prior, the Bayesian update) folded with `margins`.
fn fold_margins(view: &ExpertView<'_>, margins: &[Vec<f32>]) -> UserState {
    let prior: Vec<f32> = view.experts().prior().iter().map(|&w| w as f32).collect();
    let mut state = UserState::with_rate(&prior, BAYES);
    for m in margins {
        state.update(m);
    }
    state
}

/// Up to `budget` rows of `pool` chosen one at a time: the pair whose answer is expected to tell
/// most about which expert the user follows under the weights so far (each label read once its
/// pair is chosen); below [`MIN_INFORMATION`] nats, a pair drawn at random.
fn choose(view: &ExpertView<'_>, pool: &[usize], budget: usize, seed: u64) -> Vec<usize> {
    let e = view.experts().len();
    let margins: Vec<f32> = pool.iter().flat_map(|&i| view.margins(i)).collect();
    let Ok(candidates) = Candidates::new(&margins, e) else {
        return draw(pool, budget, seed, "");
    };
    let mut state = fold(view, &[]);
    let mut asked = vec![false; pool.len()];
    let mut rows = Vec::with_capacity(budget.min(pool.len()));
    while rows.len() < budget.min(pool.len()) {
        let w: Vec<f64> = state.log_weights.iter().map(|l| l.exp()).collect();
        let Some(best) = candidates.best(&w, |j| asked[j], seed) else {
            break;
        };
        let j = if best.information >= MIN_INFORMATION {
            best.index
        } else {
            let left: Vec<usize> = (0..pool.len()).filter(|&j| !asked[j]).collect();
            left[tie_key(seed ^ 0xD2A3, rows.len() as u64) as usize % left.len()]
        };
        asked[j] = true;
        rows.push(pool[j]);
        state.update(&view.evidence(pool[j]));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{model_config, users_cache};
    use micro_cache::Matrix;
    use micro_model::{Gate, MixtureModel, Router};
    use rand::{Rng, SeedableRng};

    /// Two opposite heads, a shared head that is indifferent and a router that weighs the two
    /// halves evenly: a known model to check the users against.
    fn model() -> MixtureModel {
        let heads = Matrix::new(3, 2, vec![3.0, 0.0, -3.0, 0.0, 0.2, 0.0]);
        let mut r = Router::zeros(2, 3, None, micro_model::Activation::Relu);
        r.b2 = vec![0.0, 0.0, micro_model::SHARED_HEAD_LOGIT];
        let mut config = model_config(2, 3, None);
        config.shared_head = Some(2);
        MixtureModel::new(config, heads, Gate::Router(r)).unwrap()
    }

    /// A user who follows head 0 gets it within 20 answers; a user whose labels are random
    /// stays on the shared reward.
    #[test]
    fn a_user_earns_a_head_and_random_labels_stay_shared() {
        let model = model();
        let mut cache = users_cache(2, &[("follower", 20), ("coin", 60)], 3);
        let (mut rng, cols) = (rand_chacha::ChaCha8Rng::seed_from_u64(9), 2);
        for i in 0..cache.len() {
            // The follower's chosen response is higher on coordinate 0 (head 0 agrees); the
            // coin's is higher or lower at random.
            let flip = cache.pairs[i].user_id.as_deref() == Some("coin") && rng.random::<bool>();
            let s = if flip { -1.0 } else { 1.0 };
            cache.chosen.data[i * cols] = s * 0.6;
            cache.rejected.data[i * cols] = -s * 0.6;
        }
        let view = ExpertView::new(&model, &cache, None).unwrap();
        let states = adapt_users(&view, &UserJob::default()).unwrap();
        let follower = &states.users["follower"];
        assert_eq!(follower.used, 20);
        assert!(
            matches!(follower.fit, Fit::Head { head: 0, weight } if weight > 0.9),
            "{:?}",
            follower.fit
        );
        let coin = &states.users["coin"];
        assert!(matches!(coin.fit, Fit::Shared { .. }), "{:?}", coin.fit);
        // Saved and read back as the server would seed them.
        let dir = tempfile::tempdir().unwrap();
        states.save(dir.path()).unwrap();
        let back = UserStates::load(dir.path()).unwrap();
        assert_eq!(back.users.len(), 2);
        assert_eq!(back.users["coin"].state.updates, 50);
    }

    #[test]
    fn unequal_label_counts_use_what_each_user_has_and_active_choices_are_their_own() {
        let model = model();
        let cache = users_cache(2, &[("a", 3), ("b", 40), ("c", 12)], 4);
        let view = ExpertView::new(&model, &cache, None).unwrap();
        for select in [Selection::Random, Selection::Active] {
            let job = UserJob {
                budget: 10,
                select,
                seed: 1,
            };
            let s = adapt_users(&view, &job).unwrap();
            let used: Vec<(usize, usize)> = s.users.values().map(|r| (r.used, r.pool)).collect();
            assert_eq!(used, [(3, 3), (10, 40), (10, 12)], "{select}");
            for r in s.users.values() {
                assert!(r
                    .rows
                    .iter()
                    .all(|&i| cache.pairs[i].user_id.as_deref() == Some(r.user_id.as_str())));
                let mut d = r.rows.clone();
                d.sort_unstable();
                d.dedup();
                assert_eq!(d.len(), r.used);
            }
            assert_eq!(
                s.in_sample, 23,
                "no evidence kept: every used pair is in sample"
            );
        }
        let mut none = cache.clone();
        none.pairs.iter_mut().for_each(|p| p.user_id = None);
        let view = ExpertView::new(&model, &none, None).unwrap();
        let e = adapt_users(&view, &UserJob::default()).unwrap_err();
        assert!(matches!(e, RouteError::NoUserIds { pairs: 55 }), "{e}");
    }
}
