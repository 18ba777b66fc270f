//! `micro train` (Stage 1 on a cache) and `micro bench train` (seconds per epoch on synthetic data).

use anyhow::Context;
use micro_cache::{RouterInput, TrainingArrays};
use micro_model::report::{trained_line, Reporter, SearchTable};
use micro_model::{Activation, Grid, Method, TrainConfig};
use std::path::PathBuf;

/// How many heads to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadsArg {
    Fixed(usize),
    /// Train AUTO_HEADS heads, then merge those whose held-out margins correlate (micro-route).
    Auto,
}

/// The generous K that `--heads auto` trains before merging.
const AUTO_HEADS: usize = 10;

impl std::str::FromStr for HeadsArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(HeadsArg::Auto);
        }
        match s.parse::<usize>() {
            Ok(k) => Ok(HeadsArg::Fixed(k)),
            Err(_) => Err(format!(
                "--heads {s:?}: expected a number of heads such as 10"
            )),
        }
    }
}

/// Router layout on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RouterKind {
    /// One hidden layer (the paper's 128-unit MLP).
    Mlp,
    /// softmax(W e + b), as in the authors' code.
    Linear,
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// The embedding cache folder (from `micro embed` or `micro synth`).
    #[arg(long)]
    pub cache: PathBuf,
    /// Output model folder (model.safetensors + config.json).
    #[arg(short, long)]
    pub output: PathBuf,
    /// micro, single, static or shared-base.
    #[arg(long, default_value = "micro")]
    pub method: Method,
    /// Number of heads K (default 10; 1 for `single`), or `auto`: 10, then correlated heads merged.
    #[arg(long)]
    pub heads: Option<HeadsArg>,
    /// Maximum epochs; early stopping on the held-out pairs usually ends sooner.
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
    /// Peak learning rate (AdamW, 5% warm-up, cosine decay). Unset: chosen with alpha by the
    /// held-out mixture NLL over 2e-3 (the paper's) and 1e-2.
    #[arg(long)]
    pub lr: Option<f32>,
    /// Weight of the negative-entropy regulariser on the router. Unset: chosen with the learning
    /// rate by the held-out mixture NLL over 0.5 (the paper's), 0.05 and 0.005.
    #[arg(long)]
    pub alpha: Option<f32>,
    /// The router input of Stage 1: `pair` (e(x, c), each pair's context where it has one) or
    /// `prompt` (e(x), the paper's binary-only Stage 1: contexts ignored even where present,
    /// left to Stage 2). Evaluation and Stage 2 route by e(x, c) either way.
    #[arg(long, default_value = "pair")]
    pub router_input: RouterInput,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[arg(long, value_enum, default_value = "mlp")]
    pub router: RouterKind,
    /// Hidden units of the MLP router.
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// relu or tanh (MLP router).
    #[arg(long, default_value = "relu")]
    pub activation: Activation,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Fraction of the train split held out for early stopping (0: no early stopping).
    #[arg(long, default_value_t = 0.1)]
    pub holdout: f32,
    /// Epochs without held-out improvement before stopping.
    #[arg(long, default_value_t = 10)]
    pub patience: usize,
    /// Epochs always run before early stopping may end training (heads need time to split).
    #[arg(long, default_value_t = 30)]
    pub min_epochs: usize,
    /// Fraction of the steps spent warming up.
    #[arg(long, default_value_t = 0.05)]
    pub warmup: f32,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
}

impl TrainArgs {
    fn config(&self) -> TrainConfig {
        let k = match self.heads {
            Some(HeadsArg::Fixed(k)) => k,
            Some(HeadsArg::Auto) => AUTO_HEADS,
            None if self.method == Method::Single => 1,
            None => 10,
        };
        let defaults = TrainConfig::default();
        TrainConfig {
            method: self.method,
            k,
            lr: self.lr.unwrap_or(defaults.lr),
            warmup_ratio: self.warmup,
            weight_decay: self.weight_decay,
            batch: self.batch,
            max_epochs: self.epochs,
            alpha: self.alpha.unwrap_or(defaults.alpha),
            router_hidden: (self.router == RouterKind::Mlp).then_some(self.hidden),
            activation: self.activation,
            seed: self.seed,
            holdout: self.holdout,
            patience: self.patience,
            min_epochs: self.min_epochs,
            threads: 0,
        }
    }

    /// The grid to search: the values the user left unset (none when both are given).
    fn grid(&self) -> Option<Grid> {
        let full = Grid::default();
        match (self.alpha, self.lr) {
            (Some(_), Some(_)) => None,
            (alpha, lr) => Some(Grid {
                alphas: alpha.map_or(full.alphas, |a| vec![a]),
                lrs: lr.map_or(full.lrs, |l| vec![l]),
            }),
        }
    }
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let cfg = a.config();
    cfg.validate()?;
    let router_input = a.router_input;
    let arrays = TrainingArrays::load(&a.cache, router_input)
        .with_context(|| format!("loading the cache {}", a.cache.display()))?;
    eprintln!(
        "router input: {} ({})",
        router_input,
        match router_input {
            RouterInput::Prompt => "e(x), the prompt alone",
            RouterInput::Pair => "e(x, c), each pair's prompt with its context",
        }
    );
    let mut reporter = Reporter::new();
    let (model, report) = match a.grid() {
        None => micro_model::train(&arrays, &cfg, |e| reporter.event(e))?,
        Some(grid) => {
            let (model, report, search) =
                micro_model::train_search(&arrays, &cfg, &grid, |e| reporter.search_event(e))?;
            reporter.finish();
            let n_holdout = report.n_holdout;
            println!(
                "{}",
                SearchTable {
                    search: &search,
                    n_holdout
                }
            );
            (model, report)
        }
    };
    reporter.finish();
    let model = if a.heads == Some(HeadsArg::Auto) {
        merge_auto(model, &arrays, &report.holdout_rows)?
    } else {
        model
    };
    model
        .save(&a.output)
        .with_context(|| format!("writing the model to {}", a.output.display()))?;
    println!("{}", trained_line(&cfg, &model, &report, &a.output));
    Ok(())
}

/// `--heads auto`: merge the correlated heads of the generously sized model, compared on the
/// training pairs the trainer held out.
fn merge_auto(
    model: micro_model::MixtureModel,
    arrays: &TrainingArrays,
    held: &[usize],
) -> anyhow::Result<micro_model::MixtureModel> {
    let (merged, r) =
        micro_route::auto_heads(&model, arrays, held, micro_route::DEFAULT_MERGE_THRESHOLD)?;
    println!(
        "--heads auto: {} heads -> {} (margins correlated above {} on {} pairs merged: {:?})",
        model.k(),
        merged.k(),
        r.threshold,
        r.pairs,
        r.clusters
    );
    Ok(merged)
}
