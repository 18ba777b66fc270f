//! `micro adapt` as a recipe: pick each attribute's B labelled pairs (at random or actively),
//! adapt the router on them, and record how they were picked.

use crate::query::{choose_budget, ActiveBudget, Selection};
use crate::{adapt, draw_budget, AdaptConfig, AdaptReport, Evidence, Result};
use micro_cache::EmbeddingCache;
use micro_model::MixtureModel;
use std::collections::BTreeMap;

/// What to adapt on.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptJob {
    /// Labelled pairs per attribute (B).
    pub budget: usize,
    pub select: Selection,
    /// Seeds the budget sample (or the active choice's ties).
    pub seed: u64,
    pub config: AdaptConfig,
}

impl Default for AdaptJob {
    /// The paper's budget (B = 50 per attribute) drawn at random, and [`AdaptConfig`]'s
    /// defaults on one thread (measured faster than two at these sizes, `micro bench adapt`).
    fn default() -> Self {
        AdaptJob {
            budget: 50,
            select: Selection::default(),
            seed: 0,
            config: AdaptConfig {
                threads: 1,
                ..AdaptConfig::default()
            },
        }
    }
}

/// Stage 2 as `micro adapt` takes it (its flags with the `clap` feature); [`AdaptOptions::job`]
/// is the [`AdaptJob`]. Every default is [`AdaptJob::default`]'s.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct AdaptOptions {
    /// Labelled pairs per attribute (B), drawn from its context-labelled training pairs.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = AdaptJob::default().budget))]
    pub budget: usize,
    /// Hedge temperature tau (> 0; the paper uses 1e-3 or 1e-4).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = AdaptConfig::default().tau))]
    pub tau: f64,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = AdaptConfig::default().epochs))]
    pub epochs: usize,
    #[cfg_attr(
        feature = "clap",
        arg(long, default_value_t = AdaptConfig::default().batch_size)
    )]
    pub batch_size: usize,
    /// Peak AdamW learning rate of the router (not given by the paper; see micro-route's adapt).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = AdaptConfig::default().lr))]
    pub lr: f32,
    #[cfg_attr(
        feature = "clap",
        arg(long, default_value_t = AdaptConfig::default().weight_decay)
    )]
    pub weight_decay: f32,
    /// Train only the router's output layer (more robust to large --lr on few pairs).
    #[cfg_attr(feature = "clap", arg(long))]
    pub output_layer_only: bool,
    /// Seeds the budget sample (or the active choice's ties) and the minibatch order.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = AdaptJob::default().seed))]
    pub seed: u64,
    /// How each attribute's B pairs are picked from its context-labelled training pairs:
    /// `random` (the paper) or `active` (one at a time, the pair whose answer is expected to
    /// tell most about which head the context follows; each label is read once its pair is
    /// chosen).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = AdaptJob::default().select))]
    pub select: Selection,
    /// Also fit the router on the other training pairs that share a labelled pair's context
    /// text, with that context's Hedge label (their own labels are never read); `false` fits
    /// the B labelled pairs alone (Algorithm 1). Only with `--evidence context`.
    #[cfg_attr(
        feature = "clap",
        arg(long, default_value_t = AdaptConfig::default().pool_inputs, action = clap::ArgAction::Set)
    )]
    pub pool_inputs: bool,
    /// Whose losses form a pair's Hedge label: `context` (summed over the budget pairs with the
    /// same context text) or `pair` (its own, Algorithm 1 as printed).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = AdaptConfig::default().evidence))]
    pub evidence: Evidence,
}

impl AdaptOptions {
    /// The job: [`AdaptJob::default`]'s thread count, and pool inputs only with context
    /// evidence (they take their labels from it).
    pub fn job(&self) -> AdaptJob {
        let defaults = AdaptJob::default();
        AdaptJob {
            budget: self.budget,
            select: self.select,
            seed: self.seed,
            config: AdaptConfig {
                tau: self.tau,
                epochs: self.epochs,
                batch_size: self.batch_size,
                lr: self.lr,
                weight_decay: self.weight_decay,
                seed: self.seed,
                train_hidden: !self.output_layer_only,
                evidence: self.evidence,
                pool_inputs: self.pool_inputs && self.evidence == Evidence::Context,
                ..defaults.config
            },
        }
    }
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

impl AdaptOutcome {
    /// What `micro adapt` prints about the budget (before writing the chosen pairs): the
    /// active choice, and the attributes left to Stage 1.
    pub fn budget_lines(&self, k: usize) -> Vec<String> {
        let mut lines: Vec<String> = (self.picked.iter())
            .map(|b| crate::report::active_choice(b, k))
            .collect();
        if !self.left_to_stage1.is_empty() {
            lines.push(format!(
                "budget {} from attribute(s) with context-labelled training pairs; left to Stage 1 (no context): {}",
                if self.picked.is_some() { "chosen" } else { "drawn" },
                crate::report::counts(&self.left_to_stage1)
            ));
        }
        lines
    }

    /// What `micro adapt` prints about the adaptation of `model`: why the router stayed as it
    /// was (if it did), the summary, and the accuracy on `cache`'s test pairs.
    pub fn result_lines(&self, model: &MixtureModel, cache: &EmbeddingCache) -> Vec<String> {
        let mut lines: Vec<String> = (self.report.skipped.iter())
            .map(|why| format!("router unchanged: {why}"))
            .collect();
        lines.push(crate::report::adapt_summary(&self.report));
        lines.push(
            match crate::report::test_accuracy(model, &self.adapted, cache) {
                Some(acc) => acc.to_string(),
                None => "no test pairs in the cache: nothing to evaluate".into(),
            },
        );
        lines
    }
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
    if let Some(stage2) = adapted.training_mut().stage2.as_mut() {
        stage2.selection = Some(job.select);
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
    fn options_make_the_job() {
        let o = AdaptOptions {
            budget: 50,
            tau: 1e-3,
            epochs: 10,
            batch_size: 32,
            lr: 1e-2,
            weight_decay: 0.0,
            output_layer_only: true,
            seed: 7,
            select: Selection::Active,
            pool_inputs: true,
            evidence: Evidence::Pair,
        };
        let j = o.job();
        assert_eq!((j.budget, j.select, j.seed), (50, Selection::Active, 7));
        let c = &j.config;
        assert_eq!((c.tau, c.epochs, c.batch_size, c.lr), (1e-3, 10, 32, 1e-2));
        assert_eq!((c.seed, c.threads, c.train_hidden), (7, 1, false));
        // Per-pair evidence gives pool inputs no label.
        assert!(!c.pool_inputs);
        let context = AdaptOptions {
            evidence: Evidence::Context,
            ..o
        };
        assert!(context.job().config.pool_inputs);
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
        let stage2 = out.adapted.config().training.stage2.as_ref().unwrap();
        assert_eq!(stage2.selection, Some(Selection::Active));
        assert_eq!(stage2.pool_pairs, 48);
        assert!(out.left_to_stage1.is_empty());
        let lines = out.budget_lines(3);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(
            lines[0],
            crate::report::active_choice(out.picked.as_ref().unwrap(), 3)
        );
        let result = out.result_lines(&model, &cache);
        assert_eq!(result[0], crate::report::adapt_summary(&out.report));
        assert_eq!(result.len(), 2, "{result:?}");
        // Random selection has no information; a budget above a pool is refused.
        let out = adapt_budget(&model, &cache, &job(Selection::Random, 6)).unwrap();
        assert!(out.picked.is_none());
        let stage2 = out.adapted.config().training.stage2.as_ref().unwrap();
        assert_eq!(stage2.selection, Some(Selection::Random));
        let rows = chosen_json(&cache, &out.rows, None);
        assert!(rows
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["information"].is_null()));
        assert!(out.budget_lines(3).is_empty());
        let e = adapt_budget(&model, &cache, &job(Selection::Active, 31)).unwrap_err();
        assert!(e.to_string().contains("fewer than the budget 31"), "{e}");
    }
}
