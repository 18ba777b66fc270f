//! `micro study`: the measurement protocol for real annotators on a cache of one's own
//! (micro-demo's `protocol`): repeated splits by prompt, single BT against MiCRo's Stage 1 and
//! MiCRo routed per context and per user, mean ± standard error per user and averaged.

use crate::console::{Console, Training};
use anyhow::Context;
use micro_cache::{EmbeddingCache, RouterInput};
use micro_demo::{run_protocol, ProtocolConfig};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct StudyArgs {
    /// The embedding cache of the pairs (its own split is ignored: every split is drawn here).
    #[arg(long)]
    pub cache: PathBuf,
    /// Splits by prompt; split s trains with seed s.
    #[arg(long, default_value_t = ProtocolConfig::default().splits)]
    pub splits: usize,
    /// Fraction of the prompts each split tests.
    #[arg(long, default_value_t = ProtocolConfig::default().test_fraction)]
    pub test_fraction: f64,
    /// MiCRo's K (one head is kept where the mixture does not earn its heads).
    #[arg(long, default_value_t = ProtocolConfig::default().heads)]
    pub heads: usize,
    /// Labelled training pairs per context and per user known by id, at most.
    #[arg(long, default_value_t = ProtocolConfig::default().budget)]
    pub budget: usize,
    /// Stage 1's router input (see micro train).
    #[arg(long, default_value_t = RouterInput::default())]
    pub router_input: RouterInput,
    /// Write the whole report (every split's figures too) as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

pub fn run(a: StudyArgs) -> anyhow::Result<()> {
    micro_data::split::check_fraction(a.test_fraction)?;
    let cache = EmbeddingCache::load(&a.cache)
        .with_context(|| format!("loading the cache {}", a.cache.display()))?;
    let cfg = ProtocolConfig {
        splits: a.splits,
        test_fraction: a.test_fraction,
        heads: a.heads,
        budget: a.budget,
        router_input: a.router_input,
        ..ProtocolConfig::default()
    };
    let mut console = Console::new(Training::Compact, Duration::from_secs(30));
    let mut report = run_protocol(&cache, &cfg, &mut console)?;
    report.name = a.cache.display().to_string();
    println!("{report}");
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
