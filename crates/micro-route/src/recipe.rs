//! `micro adapt` as a recipe: pick each attribute's B labelled pairs (at random or actively),
//! adapt the router on them, and record how they were picked.

use crate::query::{choose_budget, ActiveBudget, Selection};
use crate::{adapt, draw_budget, AdaptConfig, AdaptReport, Result};
use micro_cache::EmbeddingCache;
use micro_model::MixtureModel;
use std::collections::BTreeMap;

/// What to adapt on.
#[derive(Clone, Debug)]
pub struct AdaptJob {
    /// Labelled pairs per attribute (B).
    pub budget: usize,
    pub select: Selection,
    /// Seeds the budget sample (or the active choice's ties).
    pub seed: u64,
    pub config: AdaptConfig,
}

/// What [`adapt_budget`] made and used.
#[derive(Clone, Debug)]
pub struct AdaptOutcome {
    /// The adapted model, its `training.stage2.selection` recorded (when the router changed).
    pub adapted: MixtureModel,
    pub report: AdaptReport,
    /// The cache rows of the labelled pairs.
    pub rows: Vec<usize>,
    /// The active choice, with the information of each pair (`Selection::Active`).
    pub picked: Option<ActiveBudget>,
    /// Attributes without context-labelled training pairs, left to Stage 1: pairs per attribute.
    pub left_to_stage1: BTreeMap<String, usize>,
}

/// Picks the budget from the cache's context-labelled training pairs and adapts on it.
pub fn adapt_budget(
    model: &MixtureModel,
    cache: &EmbeddingCache,
    job: &AdaptJob,
) -> Result<AdaptOutcome> {
    let (rows, left_to_stage1, picked) = match job.select {
        Selection::Random => {
            let b = draw_budget(cache, job.budget, job.seed)?;
            (b.indices(), b.left_to_stage1, None)
        }
        Selection::Active => {
            let b = choose_budget(model, cache, job.budget, job.seed)?;
            (b.indices(), b.left_to_stage1.clone(), Some(b))
        }
    };
    let (mut adapted, report) = adapt(model, cache, &rows, &job.config)?;
    if report.skipped.is_none() {
        adapted.training_mut()["stage2"]["selection"] = job.select.to_string().into();
    }
    Ok(AdaptOutcome {
        adapted,
        report,
        rows,
        picked,
        left_to_stage1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{random_cache, random_model};
    use crate::report::chosen_json;
    use crate::Evidence;

    fn job(select: Selection, budget: usize) -> AdaptJob {
        AdaptJob {
            budget,
            select,
            seed: 1,
            config: AdaptConfig {
                epochs: 2,
                lr: 3e-3,
                threads: 1,
                seed: 1,
                evidence: Evidence::Context,
                pool_inputs: true,
                ..AdaptConfig::default()
            },
        }
    }

    #[test]
    fn adapt_chooses_actively_and_records_the_choice() {
        let model = random_model(6, 3, Some(4), 1);
        let cache = random_cache(6, 2, 30, 2);
        let out = adapt_budget(&model, &cache, &job(Selection::Active, 6)).unwrap();
        let rows = chosen_json(&cache, &out.rows, out.picked.as_ref());
        assert_eq!(rows.as_array().unwrap().len(), 12);
        assert!(rows
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["information"].as_f64().is_some()));
        let stage2 = &out.adapted.config().training["stage2"];
        assert_eq!(stage2["selection"], "active");
        assert_eq!(stage2["pool_pairs"], 48);
        assert!(out.left_to_stage1.is_empty());
        // Random selection has no information; a budget above a pool is refused.
        let out = adapt_budget(&model, &cache, &job(Selection::Random, 6)).unwrap();
        assert!(out.picked.is_none());
        assert_eq!(
            out.adapted.config().training["stage2"]["selection"],
            "random"
        );
        let rows = chosen_json(&cache, &out.rows, None);
        assert!(rows
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["information"].is_null()));
        let e = adapt_budget(&model, &cache, &job(Selection::Active, 31)).unwrap_err();
        assert!(e.to_string().contains("fewer than the budget 31"), "{e}");
    }
}
