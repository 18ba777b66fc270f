//! `micro adapt` as a recipe: pick each context's up to B labelled pairs (at random or actively)
//! and adapt the router on them, fold each user known only by id's up to B labelled pairs into
//! that user's weights ([`crate::users`]), and record how they were picked.

use crate::budget::context_pools;
use crate::evidence::ExpertView;
use crate::query::{choose_budget, ActiveBudget, Selection};
use crate::users::{adapt_users, id_pools, UserJob, UserStates};
use crate::{adapt, draw_budget, AdaptConfig, AdaptReport, EvidenceScope, Result, RouteError};
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
    /// Labelled pairs per context (attribute) and per user known only by id, at most (B): drawn
    /// from their labelled training pairs; one with fewer uses what there is.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = AdaptJob::default().budget))]
    pub budget: usize,
    /// Hedge temperature tau (> 0): 1 weighs the experts by their Bayesian posterior; the
    /// paper's 1e-3 or 1e-4 make each label one-hot on the expert that best explains its pairs.
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
    pub evidence: EvidenceScope,
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
                pool_inputs: self.pool_inputs && self.evidence == EvidenceScope::Context,
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
    /// The cache rows of the context-labelled pairs.
    pub rows: Vec<usize>,
    /// The active choice, with the information of each pair (`Selection::Active`).
    pub picked: Option<ActiveBudget>,
    /// Contexts with fewer labelled pairs than the budget: what they had.
    pub short: BTreeMap<String, usize>,
    /// Attributes with neither a context nor user ids, left to Stage 1: pairs per attribute.
    pub left_to_stage1: BTreeMap<String, usize>,
    /// The users known only by id, each with their weights.
    pub users: UserStates,
}

impl AdaptOutcome {
    /// What `micro adapt` prints about the budget (before writing the chosen pairs): the
    /// active choice, and the attributes left to Stage 1.
    pub fn budget_lines(&self, k: usize) -> Vec<String> {
        let mut lines: Vec<String> = (self.picked.iter())
            .map(|b| crate::report::active_choice(b, k))
            .collect();
        if !self.short.is_empty() {
            lines.push(format!(
                "context(s) with fewer labelled pairs than the budget, all used: {}",
                crate::report::counts(&self.short)
            ));
        }
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
        lines.extend(crate::report::users_summary(&self.users));
        lines.push(
            match crate::report::test_accuracy_with_users(model, &self.adapted, &self.users, cache)
            {
                Some(acc) => acc.to_string(),
                None => "no test pairs in the cache: nothing to evaluate".into(),
            },
        );
        lines
    }
}

/// Adapts the view's model to its cache: the router to the contexts' labelled training pairs
/// (up to the budget each), and each user known only by id's weights to theirs.
///
/// Errors: no training pair with a context or a user id, and those of the parts.
pub fn adapt_budget(view: &ExpertView<'_>, job: &AdaptJob) -> Result<AdaptOutcome> {
    let cache = view.cache;
    let pools = context_pools(cache)?;
    let has_users = !id_pools(cache).is_empty();
    if pools.groups.is_empty() && !has_users {
        return Err(RouteError::NothingToAdapt {
            pairs: cache.indices(|p| p.is_train()).len(),
        });
    }
    let short = pools.short(job.budget);
    let (rows, picked) = match (pools.groups.is_empty(), job.select) {
        (true, _) => (Vec::new(), None),
        (false, Selection::Random) => (draw_budget(cache, job.budget, job.seed)?.indices(), None),
        (false, Selection::Active) => {
            let b = choose_budget(view, job.budget, job.seed)?;
            (b.indices(), Some(b))
        }
    };
    let (mut adapted, report) = adapt(view, &rows, &job.config)?;
    if let Some(stage2) = adapted.training_mut().stage2.as_mut() {
        stage2.selection = Some(job.select);
    }
    let users = if has_users {
        let user_job = UserJob {
            budget: job.budget,
            select: job.select,
            seed: job.seed,
        };
        adapt_users(view, &user_job)?
    } else {
        UserStates::default()
    };
    Ok(AdaptOutcome {
        adapted,
        report,
        rows,
        picked,
        short,
        left_to_stage1: pools.left_to_stage1,
        users,
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
                evidence: EvidenceScope::Context,
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
            evidence: EvidenceScope::Pair,
        };
        let j = o.job();
        assert_eq!((j.budget, j.select, j.seed), (50, Selection::Active, 7));
        let c = &j.config;
        assert_eq!((c.tau, c.epochs, c.batch_size, c.lr), (1e-3, 10, 32, 1e-2));
        assert_eq!((c.seed, c.threads, c.train_hidden), (7, 1, false));
        // Per-pair evidence gives pool inputs no label.
        assert!(!c.pool_inputs);
        let context = AdaptOptions {
            evidence: EvidenceScope::Context,
            ..o
        };
        assert!(context.job().config.pool_inputs);
    }

    #[test]
    fn adapt_chooses_actively_and_records_the_choice() {
        let model = random_model(6, 3, Some(4), 1);
        let cache = random_cache(6, 2, 30, 2);
        let view = ExpertView::new(&model, &cache, None).unwrap();
        let out = adapt_budget(&view, &job(Selection::Active, 6)).unwrap();
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
        assert!(out.users.is_empty(), "contexts only: no user known by id");
        // Random selection has no information.
        let out = adapt_budget(&view, &job(Selection::Random, 6)).unwrap();
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
        // A budget above a pool takes all of it, and says so.
        let out = adapt_budget(&view, &job(Selection::Active, 31)).unwrap();
        assert_eq!(out.rows.len(), 60);
        let lines = out.budget_lines(3);
        assert!(lines[1].contains("attr0: 30, attr1: 30"), "{lines:?}");
    }

    /// Pairs of users known only by id, some with contexts: the contexts route the router, the
    /// ids get weights of their own, up to the budget each.
    #[test]
    fn contexts_route_and_users_by_id_get_their_own_weights() {
        let model = random_model(4, 3, None, 1);
        let mut cache = crate::fixture::users_cache(4, &[("ann", 8), ("bob", 3)], 2);
        for p in cache.pairs.iter_mut().take(4) {
            p.context = Some("be brief".into());
            p.attribute = Some("brief".into());
        }
        let view = ExpertView::new(&model, &cache, None).unwrap();
        let out = adapt_budget(&view, &job(Selection::Random, 5)).unwrap();
        assert_eq!(out.rows.len(), 4, "the four context pairs");
        let used: Vec<(&str, usize, usize)> = (out.users.users.values())
            .map(|r| (r.user_id.as_str(), r.used, r.pool))
            .collect();
        assert_eq!(used, [("ann", 4, 4), ("bob", 3, 3)]);
        let lines = out.result_lines(&model, &cache);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("adapted 2 users known by id on 3-4")),
            "{lines:?}"
        );
        // Neither a context nor an id: nothing to adapt, and the error says what to give.
        cache.pairs.iter_mut().for_each(|p| {
            p.context = None;
            p.user_id = None;
        });
        let view = ExpertView::new(&model, &cache, None).unwrap();
        let e = adapt_budget(&view, &job(Selection::Random, 5)).unwrap_err();
        assert!(matches!(e, RouteError::NothingToAdapt { pairs: 11 }), "{e}");
    }
}
