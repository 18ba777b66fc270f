//! Real human labels, small but real: the protocol of [`crate::protocol`] (10 splits by prompt,
//! single BT, MiCRo's Stage 1 and MiCRo routed per context and per user) on each of the sets in
//! the shared data folder (`micro demo --real DIR`).
//!
//! | set | users (groups) | context |
//! |---|---|---|
//! | UniEval's Topical-Chat ratings | 5 rated qualities, pairs by HelpSteer2's rule (gap 0.5) | each quality's criterion |
//! | BIG-bench HHH alignment | 4 categories | the category's rubric |
//! | PandaLM's human test set | 3 annotators | none: known by id |
//! | HH-RLHF multi-user | the real harmless label + 4 simulated users | each user's sentence |
//! | HH-RLHF multi-user, ids only | the same users | none: known by id |
//!
//! Each set is embedded once; every split of the protocol is drawn from its pairs.

use crate::cache::embed_cached;
use crate::observer::Observer;
use crate::protocol::{run_protocol, ProtocolConfig, ProtocolReport};
use anyhow::Context;
use micro_data::formats::{load_with, Format, LoadOptions};
use micro_data::PrefPair;
use micro_embed::Backbone;
use std::path::Path;

/// One real set: where it is under the data folder and how to read it.
pub struct RealSet {
    pub name: &'static str,
    pub path: &'static str,
    pub format: Format,
    /// The protocol's test fraction (small sets test more to have a few pairs per user).
    pub test_fraction: f64,
}

/// The sets `micro demo --real` measures, in order.
pub const REAL_SETS: [RealSet; 5] = [
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
    RealSet {
        name: "hh-users-ids",
        path: "hh-rlhf/harmless-base-test.jsonl.gz",
        format: Format::HhRlhf,
        test_fraction: 0.2,
    },
];

/// The pairs of `set` (every one: the protocol draws the splits).
pub fn load_set(data_dir: &Path, set: &RealSet) -> anyhow::Result<Vec<PrefPair>> {
    let path = data_dir.join(set.path);
    if set.name.starts_with("hh-users") {
        let raw = micro_data::load(&path, set.format)?;
        let opts = micro_data::hh_users::HhUsersOptions {
            ids_only: set.name == "hh-users-ids",
            ..Default::default()
        };
        return Ok(micro_data::hh_users::build(&raw, &opts)?.0);
    }
    let opts = LoadOptions {
        format: set.format,
        // Every pair as a test pair: the loaders drop pairs all attributes agree on from the
        // train split only, and the protocol splits later.
        split: Some(micro_data::Split::Test),
        ..Default::default()
    };
    let loaded = load_with(&path, &opts).with_context(|| format!("loading {}", path.display()))?;
    Ok(loaded.pairs)
}

/// Measures every set of [`REAL_SETS`] under `data_dir` with the protocol; caches and
/// `protocol.json` under `out/<name>`.
pub fn run_real(
    backbone: &dyn Backbone,
    data_dir: &Path,
    out: &Path,
    base: &ProtocolConfig,
    obs: &mut dyn Observer,
) -> anyhow::Result<Vec<ProtocolReport>> {
    let mut reports = Vec::new();
    for (i, set) in REAL_SETS.iter().enumerate() {
        obs.step(
            i + 1,
            &format!("{}: loading, embedding, measuring", set.name),
        );
        let pairs = load_set(data_dir, set)?;
        let dir = out.join(set.name);
        let cache = embed_cached(backbone, pairs, &dir.join("cache"), obs)?;
        obs.line(&format!(
            "  {} pairs; {} splits by prompt, {:.0}% of the prompts tested",
            cache.len(),
            base.splits,
            100.0 * set.test_fraction
        ));
        let cfg = ProtocolConfig {
            test_fraction: set.test_fraction,
            ..base.clone()
        };
        let mut report = run_protocol(&cache, &cfg, obs)?;
        report.name = set.name.to_string();
        let path = dir.join("protocol.json");
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        reports.push(report);
    }
    Ok(reports)
}
