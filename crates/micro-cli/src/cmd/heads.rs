//! `micro heads audit|merge`: the heads as a tool: audit them on a safety preference set (and
//! mask the flagged ones), or merge redundant ones.

use anyhow::Context;
use micro_cache::EmbeddingCache;
use micro_eval::SplitSel;
use micro_model::MixtureModel;
use micro_route::{audit_heads, mask_flagged, merge_correlated, report, DEFAULT_MERGE_THRESHOLD};
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum HeadsCommand {
    /// Per-head accuracy on a safety preference set (chosen = harmless); flag heads below a threshold.
    Audit(AuditArgs),
    /// Merge heads whose margins on held-out pairs correlate above a threshold.
    Merge(MergeArgs),
}

#[derive(clap::Args)]
pub struct AuditArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Cache of a safety preference set (e.g. PKU-SafeRLHF, HH harmless), embedded like the training data.
    #[arg(long)]
    pub cache: PathBuf,
    /// A head with accuracy below this prefers harmful responses too often and is flagged.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
    /// Which pairs to use: all, train or test.
    #[arg(long, default_value = "all")]
    pub pairs: SplitSel,
    /// Write the model without the flagged heads to this folder.
    #[arg(long)]
    pub mask: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct MergeArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Cache with the pairs to compare the heads on.
    #[arg(long)]
    pub cache: PathBuf,
    /// Correlation of two heads' margins above which they are merged.
    #[arg(long, default_value_t = DEFAULT_MERGE_THRESHOLD)]
    pub threshold: f64,
    /// Which pairs to use: train (the default: a merge decided on test pairs would leak the test
    /// split into the model), test or all. Correlations of frozen heads need no labels.
    #[arg(long, default_value = "train")]
    pub pairs: SplitSel,
    /// Output model folder.
    #[arg(short, long)]
    pub output: PathBuf,
}

pub fn run(c: HeadsCommand) -> anyhow::Result<()> {
    match c {
        HeadsCommand::Audit(a) => audit(a),
        HeadsCommand::Merge(a) => merge(a),
    }
}

fn load(model: &Path, cache: &Path) -> anyhow::Result<(MixtureModel, EmbeddingCache)> {
    let m =
        MixtureModel::load(model).with_context(|| format!("loading model {}", model.display()))?;
    let c = EmbeddingCache::load(cache)
        .with_context(|| format!("loading cache {}", cache.display()))?;
    Ok((m, c))
}

fn audit(a: AuditArgs) -> anyhow::Result<()> {
    let (model, cache) = load(&a.model, &a.cache)?;
    let idx = a.pairs.indices(&cache);
    let report = audit_heads(&model, &cache, &idx, a.threshold)?;
    println!(
        "{}",
        report::audit_table(&report, &a.cache.display().to_string())
    );
    if let Some(out) = &a.mask {
        let masked = mask_flagged(&model, &report, &a.cache.display().to_string())?;
        masked
            .save(out)
            .with_context(|| format!("writing {}", out.display()))?;
        println!(
            "wrote {} with {} of {} heads",
            out.display(),
            masked.k(),
            model.k()
        );
    }
    Ok(())
}

fn merge(a: MergeArgs) -> anyhow::Result<()> {
    let (model, cache) = load(&a.model, &a.cache)?;
    let idx = a.pairs.indices(&cache);
    let (merged, report) = merge_correlated(&model, &cache, &idx, a.threshold)?;
    println!("{}", report::merge_summary(model.k(), &report));
    merged
        .save(&a.output)
        .with_context(|| format!("writing {}", a.output.display()))?;
    println!("wrote {}", a.output.display());
    Ok(())
}
