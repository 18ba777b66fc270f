//! Real human labels, small but real: single BT vs MiCRo vs MiCRo routed with Stage 2, on
//! each of the sets in the shared data folder (`micro demo --real DIR`).
//!
//! | set | users (attributes) | context |
//! |---|---|---|
//! | UniEval's Topical-Chat ratings | 5 rated qualities, pairs by HelpSteer2's rule (gap 0.5) | each quality's criterion |
//! | BIG-bench HHH alignment | 4 categories | the category's rubric |
//! | PandaLM's human test set | 3 annotators | an identity sentence per annotator |
//! | HH-RLHF multi-user | the real harmless label + 4 simulated users | each user's sentence |
//!
//! Each set is split by prompt with a seed, embedded, and told as a story: every method over
//! three training seeds with the default hyperparameter search, Stage 2 at the largest budget
//! every user's training pairs allow (at most 50), and the budget study below it.

use crate::cache::embed_cached;
use crate::observer::Observer;
use crate::story::{run_story, StoryConfig, StoryOutput};
use anyhow::Context;
use micro_data::formats::{load_with, Format, LoadOptions};
use micro_data::PrefPair;
use micro_embed::Backbone;
use std::collections::BTreeMap;
use std::path::Path;

/// One real set: where it is under the data folder and how to read it.
pub struct RealSet {
    pub name: &'static str,
    pub path: &'static str,
    pub format: Format,
    pub test_fraction: f64,
}

/// The sets `micro demo --real` tells, in order.
pub const REAL_SETS: [RealSet; 4] = [
    RealSet {
        name: "topical-chat",
        path: "unieval-topical-chat/topical_chat.json",
        format: Format::Ratings,
        test_fraction: 0.3,
    },
    RealSet {
        name: "hhh-alignment",
        path: "hhh-alignment/hhh_alignment_eval.json",
        format: Format::Prometheus,
        test_fraction: 0.3,
    },
    RealSet {
        name: "pandalm",
        path: "pandalm/testset-v1.json",
        format: Format::PandaLm,
        test_fraction: 0.2,
    },
    RealSet {
        name: "hh-users",
        path: "hh-rlhf/harmless-base-test.jsonl.gz",
        format: Format::HhRlhf,
        test_fraction: 0.2,
    },
];

/// The pairs of `set`, split by prompt with `seed`.
pub fn load_set(data_dir: &Path, set: &RealSet, seed: u64) -> anyhow::Result<Vec<PrefPair>> {
    let path = data_dir.join(set.path);
    if set.name == "hh-users" {
        let raw = micro_data::load(&path, set.format)?;
        let opts = micro_data::hh_users::HhUsersOptions {
            seed,
            test_fraction: set.test_fraction,
            ..Default::default()
        };
        return Ok(micro_data::hh_users::build(&raw, &opts)?.0);
    }
    let opts = LoadOptions {
        format: set.format,
        test_fraction: Some(set.test_fraction),
        seed,
        ..Default::default()
    };
    let loaded = load_with(&path, &opts).with_context(|| format!("loading {}", path.display()))?;
    Ok(loaded.pairs)
}

/// The largest budget of `at_most` every attribute's context-labelled training pairs allow.
pub fn budget_for(pairs: &[PrefPair], at_most: usize) -> usize {
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for p in pairs.iter().filter(|p| p.is_train() && p.context.is_some()) {
        *per.entry(p.group()).or_default() += 1;
    }
    per.values().copied().min().unwrap_or(0).min(at_most)
}

/// Tells every set of [`REAL_SETS`] found under `data_dir` as a story under `out/<name>`.
pub fn run_real(
    backbone: &dyn Backbone,
    data_dir: &Path,
    out: &Path,
    base: &StoryConfig,
    seed: u64,
    obs: &mut dyn Observer,
) -> anyhow::Result<Vec<StoryOutput>> {
    let mut outputs = Vec::new();
    for (i, set) in REAL_SETS.iter().enumerate() {
        obs.step(
            i + 1,
            &format!("{}: loading, embedding, training", set.name),
        );
        let pairs = load_set(data_dir, set, seed)?;
        let budget = budget_for(&pairs, base.budget);
        anyhow::ensure!(
            budget > 0,
            "{}: no context-labelled training pairs",
            set.name
        );
        let dir = out.join(set.name);
        let cache = embed_cached(backbone, pairs, &dir.join("cache"), obs)?;
        let story = StoryConfig {
            name: set.name.into(),
            title: format!("{}: real human labels", set.name),
            budget,
            budgets: base
                .budgets
                .iter()
                .copied()
                .filter(|&b| b <= budget)
                .collect(),
            ..base.clone()
        };
        obs.line(&format!(
            "  {} pairs ({} test), Stage 2 budget {budget} per user",
            cache.len(),
            cache.indices(|p| !p.is_train()).len()
        ));
        outputs.push(run_story(&cache, &story, &dir, obs)?);
    }
    Ok(outputs)
}
