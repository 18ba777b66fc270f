//! `micro demo`: the recipe of micro-demo, with progress bars.

use crate::console::{Console, Training};
use micro_data::builtin::BuiltinLayout;
use micro_demo::{run_demo, DemoConfig, StoryConfig};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Working folder: one subfolder per story with its pairs, cache, models, results and report.
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
    /// Backbone folder (default: all-MiniLM-L6-v2 under $MICRO_HOME, fetched when missing).
    #[arg(long)]
    pub backbone: Option<PathBuf>,
    /// Folder with the chatterbot-corpus YAML files (default: under $MICRO_HOME, fetched when missing).
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// The stories: rpr (a context with every pair), helpsteer2 (binary-only Stage 1), or both.
    #[arg(long, value_delimiter = ',', default_value = "rpr,helpsteer2")]
    pub stories: Vec<BuiltinLayout>,
    /// Heads K for the multi-head methods.
    #[arg(long, default_value_t = 8)]
    pub heads: usize,
    /// Stage 2 budget of the routed row: labelled pairs per user.
    #[arg(long, default_value_t = 50)]
    pub budget: usize,
    /// Stage 2 Hedge temperature (micro adapt's default: the Bayesian posterior).
    #[arg(long, default_value_t = micro_route::AdaptConfig::default().tau)]
    pub tau: f64,
    /// Budgets of the accuracy-versus-budget study.
    #[arg(long, value_delimiter = ',', default_value = "0,10,25,50,100")]
    pub budgets: Vec<usize>,
    /// Samples per budget and training seed.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Stage 1 training seeds (figures are mean ± std over them).
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    pub seeds: Vec<u64>,
    /// Seed of the built-in data (users, split).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Recompute everything, ignoring what earlier runs left in --out.
    #[arg(long)]
    pub fresh: bool,
    /// Instead of the built-in data: the real human-label sets under this folder (the shared
    /// data: unieval-topical-chat, hhh-alignment, pandalm, hh-rlhf), each measured by the
    /// protocol of `micro study` (--splits splits by prompt, B = --budget per user).
    #[arg(long)]
    pub real: Option<PathBuf>,
    /// With --real: splits by prompt per set.
    #[arg(long, default_value_t = micro_demo::ProtocolConfig::default().splits)]
    pub splits: usize,
}

pub fn run(a: DemoArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    if a.fresh && a.out.exists() {
        std::fs::remove_dir_all(&a.out)?;
    }
    println!("[0] the model and corpus (fetched into $MICRO_HOME when missing)");
    let (backbone, corpus) = micro_demo::assets::ensure(a.backbone.clone(), a.corpus.clone())?;
    let cfg = DemoConfig {
        out: a.out.clone(),
        backbone,
        corpus,
        data_seed: a.seed,
        layouts: a.stories.clone(),
        story: StoryConfig {
            heads: a.heads,
            seeds: a.seeds.clone(),
            budget: a.budget,
            budgets: a.budgets.clone(),
            runs: a.runs,
            tau: a.tau,
            ..Default::default()
        },
    };
    if let Some(dir) = &a.real {
        let backbone =
            micro_embed::load_backbone(&cfg.backbone, &micro_embed::BackboneOptions::default())?;
        let defaults = micro_demo::ProtocolConfig::default();
        let protocol = micro_demo::ProtocolConfig {
            splits: a.splits,
            heads: a.heads,
            budget: a.budget,
            adapt: micro_route::recipe::AdaptJob {
                config: micro_route::AdaptConfig {
                    tau: a.tau,
                    ..defaults.adapt.config.clone()
                },
                ..defaults.adapt.clone()
            },
            ..defaults
        };
        let reports = micro_demo::real::run_real(
            backbone.as_ref(),
            dir,
            &a.out,
            &protocol,
            &mut Console::new(Training::Compact, Duration::from_secs(30)),
        )?;
        for r in &reports {
            println!("\n{r}");
        }
        println!("demo finished in {:.0} s", start.elapsed().as_secs_f64());
        return Ok(());
    }
    let outputs = run_demo(
        &cfg,
        &mut Console::new(Training::Compact, Duration::from_secs(30)),
    )?;
    for o in &outputs {
        println!("\n== {}\n", o.results.title);
        for t in &o.tables {
            println!("{t}");
        }
        println!("report: {}", o.report.display());
    }
    println!("demo finished in {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}
