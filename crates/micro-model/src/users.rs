//! Stage 1's per-user table: where training pairs carry user ids, each training user gets a row
//! of K logits that is added to the router's, log f(x, u) = log softmax(z(x) + b_u), learned
//! jointly with the heads and the router.
//!
//! Why: when people judge the very same prompts differently and arrive as ids without a context
//! sentence, a router that reads the prompt alone cannot tell them apart, and a mixture of two
//! opposite heads then has the likelihood of one indifferent head, so the heads never split
//! (README, "Router input"). With the table, pairs of one user share a row, the mixture
//! likelihood rewards heads that split along people, and each training user's row says which
//! heads they follow. Measured on the HH-RLHF multi-user set with its contexts removed (5 users
//! known by id, K = 8, 5 splits by prompt; numpy replica of this trainer): test accuracy
//! 0.51 without the table, 0.71 with it. Whether a model gets one is decided like the other
//! Stage 1 choices, by held-out NLL ([`crate::train_search`]).
//!
//! A pair of a user the table does not know (a new user, or a pair without a user id) is routed
//! by the router alone (b = 0).
//!
//! ```
//! use micro_data::PrefPair;
//! use micro_model::UserIds;
//! let mut pairs = vec![PrefPair::new("q", "a", "b"); 3];
//! pairs[0].user_id = Some("ann".into());
//! pairs[2].user_id = Some("bob".into());
//! let ids = UserIds::of_pairs(&pairs, &[0, 1, 2]);
//! assert_eq!(ids.names, ["ann", "bob"]);
//! assert_eq!(ids.rows, [0, micro_model::NO_USER, 1]);
//! ```

use micro_cache::Matrix;
use micro_data::PrefPair;
use std::collections::HashMap;

/// The table row of a pair without a known user.
pub const NO_USER: u32 = u32::MAX;

/// The table row of each pair's user: the users of the training rows, in first-seen order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserIds {
    /// The users, one per table row.
    pub names: Vec<String>,
    /// Per pair of the arrays: its user's row, [`NO_USER`] for none (or a user outside `rows`).
    pub rows: Vec<u32>,
}

impl UserIds {
    /// The users of the pairs `rows` (the training rows); every pair gets its user's row.
    pub fn of_pairs(pairs: &[PrefPair], rows: &[usize]) -> Self {
        let mut index: HashMap<&str, u32> = HashMap::new();
        let mut names = Vec::new();
        for &i in rows {
            if let Some(u) = pairs[i].user_id.as_deref() {
                index.entry(u).or_insert_with(|| {
                    names.push(u.to_string());
                    (names.len() - 1) as u32
                });
            }
        }
        let rows = pairs
            .iter()
            .map(|p| {
                p.user_id
                    .as_deref()
                    .and_then(|u| index.get(u).copied())
                    .unwrap_or(NO_USER)
            })
            .collect();
        UserIds { names, rows }
    }

    /// Users in the table.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The learned table of a model: a row of K logits per training user.
#[derive(Clone, Debug, PartialEq)]
pub struct UserTable {
    names: Vec<String>,
    index: HashMap<String, usize>,
    /// [users, K]
    logits: Matrix,
}

impl UserTable {
    /// A table from its users and their rows ([users, K]); `None` when their counts differ.
    pub fn new(names: Vec<String>, logits: Matrix) -> Option<Self> {
        if names.len() != logits.rows {
            return None;
        }
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Some(UserTable {
            names,
            index,
            logits,
        })
    }

    /// The row of logits of `user`, when the table knows them.
    pub fn row(&self, user: &str) -> Option<&[f32]> {
        self.index.get(user).map(|&i| self.logits.row(i))
    }

    /// The users, in table order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// [users, K].
    pub fn logits(&self) -> &Matrix {
        &self.logits
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The table over the heads `keep` (columns, in that order).
    pub(crate) fn select(&self, keep: &[usize]) -> UserTable {
        let rows: Vec<Vec<f32>> = (0..self.logits.rows)
            .map(|u| keep.iter().map(|&h| self.logits.row(u)[h]).collect())
            .collect();
        let logits = Matrix::new(self.logits.rows, keep.len(), rows.concat());
        UserTable {
            names: self.names.clone(),
            index: self.index.clone(),
            logits,
        }
    }

    /// Gives column `j` (a merged head's) the log-sum-exp of its cluster `members`' columns in
    /// `old`: exact where the router gives the members equal logits.
    pub(crate) fn absorb(&mut self, j: usize, old: &UserTable, members: &[usize]) {
        for u in 0..self.logits.rows {
            let vals: Vec<f64> = members
                .iter()
                .map(|&h| old.logits.row(u)[h] as f64)
                .collect();
            self.logits.row_mut(u)[j] = crate::float::log_sum_exp(&vals) as f32;
        }
    }

    /// The table with a column appended for a head the table routes nothing to (`logit`).
    pub(crate) fn with_column(&self, logit: f32) -> UserTable {
        let k = self.logits.cols;
        let rows: Vec<Vec<f32>> = (0..self.logits.rows)
            .map(|u| {
                let mut r = self.logits.row(u).to_vec();
                r.push(logit);
                r
            })
            .collect();
        UserTable {
            names: self.names.clone(),
            index: self.index.clone(),
            logits: Matrix::new(self.logits.rows, k + 1, rows.concat()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_the_training_users_in_first_seen_order() {
        let mut pairs = vec![PrefPair::new("q", "a", "b"); 5];
        for (p, u) in pairs.iter_mut().zip(["x", "y", "x", "z", "w"]) {
            p.user_id = Some(u.into());
        }
        // Pair 3's user `z` is not among the training rows: no row.
        let ids = UserIds::of_pairs(&pairs, &[1, 0, 2, 4]);
        assert_eq!(ids.names, ["y", "x", "w"]);
        assert_eq!(ids.rows, [1, 0, 1, NO_USER, 2]);
    }

    #[test]
    fn a_table_answers_for_known_users_and_slices_by_head() {
        let t = UserTable::new(
            vec!["a".into(), "b".into()],
            Matrix::new(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        )
        .unwrap();
        assert_eq!(t.row("b"), Some(&[4.0, 5.0, 6.0][..]));
        assert_eq!(t.row("c"), None);
        let s = t.select(&[2, 0]);
        assert_eq!(s.row("a"), Some(&[3.0, 1.0][..]));
        let mut m = t.select(&[0, 1]);
        m.absorb(0, &t, &[0, 2]);
        let want = ((1f64).exp() + (3f64).exp()).ln() as f32;
        assert!((m.row("a").unwrap()[0] - want).abs() < 1e-6);
        assert_eq!(
            t.with_column(-30.0).row("b"),
            Some(&[4.0, 5.0, 6.0, -30.0][..])
        );
        assert!(UserTable::new(vec!["a".into()], Matrix::zeros(2, 3)).is_none());
    }
}
