//! Active Stage 2 budgets: per attribute, B pairs chosen one at a time from its pool of
//! context-labelled training pairs, each label read only once its pair is chosen.
//!
//! Per attribute, the session ([`ActiveSession`]) starts from the experts' prior
//! ([`crate::experts`]) and asks the pair whose answer is expected to tell the most about which
//! expert the context follows ([`crate::query::information`]), each pair seen through the
//! experts' margins. The chooser sees every pool pair as (first, second) in a
//! seeded random order, never as (chosen, rejected): the label is read from the cache when the
//! pair is chosen (the "answer"), and the belief is updated before the next choice. The chosen
//! pairs then go to Algorithm 1 ([`crate::adapt()`]) as a random budget would.
//!
//! Choosing B pairs is a greedy sequence, so the first B of a longer sequence are the B-pair
//! choice: a budget study asks once for the largest B and takes prefixes.
//!
//! ```
//! use micro_route::fixture::{random_cache, random_model};
//! use micro_route::query::choose_budget;
//! use micro_route::ExpertView;
//! let model = random_model(8, 3, None, 1);
//! let cache = random_cache(8, 2, 40, 2);
//! let view = ExpertView::new(&model, &cache, None).unwrap();
//! let chosen = choose_budget(&view, 5, 0).unwrap();
//! let g = &chosen.groups["attr0"];
//! assert_eq!((g.picks.len(), g.pool), (5, 40));
//! // Each question was asked where it was expected to tell the most at the time.
//! assert!(g.picks.iter().all(|p| p.information > 0.0 && p.information <= 2f64.ln()));
//! assert_eq!(chosen.indices().len(), 10);
//! ```

use crate::budget::context_pools;
use crate::error::{Result, RouteError};
use crate::evidence::ExpertView;
use crate::query::information::tie_key;
use crate::query::session::{ActiveSession, MIN_INFORMATION};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Salt of the seeded coin that orders each pool pair as (first, second).
const ORDER_SALT: u64 = 0x5EED_0F0D;

/// One chosen pair.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pick {
    /// Row of the pair in the cache.
    pub row: usize,
    /// I(answer; head) in nats when it was chosen.
    pub information: f64,
}

/// What was chosen for one attribute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveGroup {
    /// In the order asked.
    pub picks: Vec<Pick>,
    /// Pairs the choice was made from.
    pub pool: usize,
    /// The belief over the experts before the first question (their prior).
    pub prior: Vec<f32>,
    /// The belief after the last answer.
    pub posterior: Vec<f32>,
}

/// An actively chosen budget, like [`crate::Budget`] for random draws.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActiveBudget {
    pub groups: BTreeMap<String, ActiveGroup>,
    /// Attributes without context-labelled training pairs (Stage 1 data), with their sizes.
    pub left_to_stage1: BTreeMap<String, usize>,
}

impl ActiveBudget {
    /// Every chosen pair, by attribute, in the order asked.
    pub fn indices(&self) -> Vec<usize> {
        self.groups
            .values()
            .flat_map(|g| g.picks.iter().map(|p| p.row))
            .collect()
    }
}

/// Up to `budget` pairs chosen per attribute with context-labelled training pairs (all of an
/// attribute's when it has fewer).
///
/// Errors as [`crate::draw_budget`]: no training pairs, none with a context.
pub fn choose_budget(view: &ExpertView<'_>, budget: usize, seed: u64) -> Result<ActiveBudget> {
    let pools = context_pools(view.cache)?;
    if pools.groups.is_empty() {
        return Err(RouteError::NoContext {
            pairs: view.cache.indices(|p| p.is_train()).len(),
        });
    }
    Ok(ActiveBudget {
        groups: choose_from_pools(view, &pools.groups, budget, seed)?,
        left_to_stage1: pools.left_to_stage1,
    })
}

/// min(`budget`, pool size) pairs chosen from each attribute's `pools` (rows of the view's cache).
pub fn choose_from_pools(
    view: &ExpertView<'_>,
    pools: &BTreeMap<String, Vec<usize>>,
    budget: usize,
    seed: u64,
) -> Result<BTreeMap<String, ActiveGroup>> {
    choose_from_pools_with(view, pools, budget, seed, MIN_INFORMATION)
}

/// [`choose_from_pools`] with another information floor (see [`ActiveSession::ask`]).
pub fn choose_from_pools_with(
    view: &ExpertView<'_>,
    pools: &BTreeMap<String, Vec<usize>>,
    budget: usize,
    seed: u64,
    min_information: f64,
) -> Result<BTreeMap<String, ActiveGroup>> {
    pools
        .iter()
        .map(|(attr, pool)| {
            let g = choose_group(view, pool, budget, seed, min_information)?;
            Ok((attr.clone(), g))
        })
        .collect()
}

fn choose_group(
    view: &ExpertView<'_>,
    pool: &[usize],
    budget: usize,
    seed: u64,
    min_information: f64,
) -> Result<ActiveGroup> {
    let k = view.experts().len();
    let prior: Vec<f32> = view.experts().prior().iter().map(|&w| w as f32).collect();
    let mut margins: Vec<f32> = pool.iter().flat_map(|&i| view.margins(i)).collect();
    let chosen_first: Vec<bool> = pool
        .iter()
        .map(|&row| tie_key(seed ^ ORDER_SALT, row as u64) & 1 == 0)
        .collect();
    for (row, first) in margins.chunks_exact_mut(k).zip(&chosen_first) {
        if !first {
            row.iter_mut().for_each(|d| *d = -*d);
        }
    }
    let mut session =
        ActiveSession::new(&prior, &margins, k, seed)?.with_min_information(min_information);
    let mut picks = Vec::with_capacity(budget.min(pool.len()));
    while picks.len() < budget {
        let Some(q) = session.ask() else { break };
        // The label is read here, once the pair is chosen.
        session.answer(q.index, chosen_first[q.index])?;
        picks.push(Pick {
            row: pool[q.index],
            information: q.information,
        });
    }
    Ok(ActiveGroup {
        picks,
        pool: pool.len(),
        posterior: session.weights(),
        prior,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{random_cache, random_model};

    #[test]
    fn choices_are_reproducible_distinct_nested_and_from_the_attributes_pool() {
        let model = random_model(6, 4, Some(5), 3);
        let cache = random_cache(6, 3, 30, 4);
        let view = ExpertView::new(&model, &cache, None).unwrap();
        let a = choose_budget(&view, 12, 7).unwrap();
        assert_eq!(a, choose_budget(&view, 12, 7).unwrap());
        let short = choose_budget(&view, 5, 7).unwrap();
        for (attr, g) in &a.groups {
            let rows: Vec<usize> = g.picks.iter().map(|p| p.row).collect();
            assert!(rows
                .iter()
                .all(|&r| cache.pairs[r].group() == attr.as_str()));
            let mut d = rows.clone();
            d.sort_unstable();
            d.dedup();
            assert_eq!(d.len(), 12);
            let s: Vec<usize> = short.groups[attr].picks.iter().map(|p| p.row).collect();
            assert_eq!(&rows[..5], &s[..]);
            assert!((g.prior.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        // A budget above a pool takes the whole pool.
        let all = choose_budget(&view, 31, 0).unwrap();
        assert!(all.groups.values().all(|g| g.picks.len() == 30));
    }

    /// The chooser never reads the label before choosing: swapping a pair's responses (and so
    /// its label) changes no choice, only which way the belief moves afterwards.
    #[test]
    fn a_pairs_label_does_not_influence_its_own_choice() {
        let model = random_model(6, 3, None, 5);
        let mut cache = random_cache(6, 1, 40, 6);
        let first = choose_budget(&ExpertView::new(&model, &cache, None).unwrap(), 1, 0).unwrap();
        let row = first.groups["attr0"].picks[0].row;
        let (c, r) = (
            cache.chosen.row(row).to_vec(),
            cache.rejected.row(row).to_vec(),
        );
        let cols = cache.chosen.cols;
        cache.chosen.data[row * cols..(row + 1) * cols].copy_from_slice(&r);
        cache.rejected.data[row * cols..(row + 1) * cols].copy_from_slice(&c);
        let swapped = choose_budget(&ExpertView::new(&model, &cache, None).unwrap(), 1, 0).unwrap();
        let (a, b) = (
            &swapped.groups["attr0"].picks[0],
            &first.groups["attr0"].picks[0],
        );
        assert_eq!(a.row, b.row);
        assert!((a.information - b.information).abs() < 1e-12);
        assert_ne!(
            swapped.groups["attr0"].posterior,
            first.groups["attr0"].posterior
        );
    }
}
