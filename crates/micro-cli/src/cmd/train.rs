//! `micro train` (Stage 1 on a cache) and `micro bench train` (seconds per epoch on synthetic data).

use anyhow::Context;
use indicatif::ProgressBar;
use micro_cache::{Matrix, RouterInput, TrainingArrays};
use micro_model::{Activation, Grid, Method, SearchEvent, TrainConfig, TrainEvent};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

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
            print_search(&search, report.n_holdout);
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
    let held = match report.best_holdout_nll {
        Some(nll) => format!("held-out NLL {nll:.4} on {} pairs", report.n_holdout),
        None => "no held-out pairs".to_string(),
    };
    let hp = &model.config().training["hyperparameters"];
    println!(
        "trained {} (K={}, alpha {}, lr {}) on {} pairs: {} epochs{}, kept epoch {} ({held}), {:.1} s -> {}",
        cfg.method,
        cfg.k,
        hp["alpha"],
        hp["lr"],
        report.n_train,
        report.epochs_run,
        if report.stopped_early {
            " (early stop)"
        } else {
            ""
        },
        report.best_epoch,
        report.seconds,
        a.output.display()
    );
    Ok(())
}

/// The grid, each point's held-out NLL, and the kept point.
fn print_search(search: &micro_model::Search, n_holdout: usize) {
    println!(
        "hyperparameters chosen by held-out mixture NLL on {n_holdout} training pairs (give --alpha and --lr to skip):"
    );
    println!(
        "  {:>7} {:>8} {:>12} {:>6} {:>7} {:>8}",
        "alpha", "lr", "held-out NLL", "epoch", "epochs", "seconds"
    );
    for (i, t) in search.trials.iter().enumerate() {
        println!(
            "  {:>7} {:>8.1e} {:>12.4} {:>6} {:>7} {:>8.1}{}",
            t.alpha,
            t.lr,
            t.holdout_nll,
            t.best_epoch,
            t.epochs_run,
            t.seconds,
            if i == search.chosen { "  <- kept" } else { "" }
        );
    }
    let total: f64 = search.trials.iter().map(|t| t.seconds).sum();
    let first = search.trials.first().map_or(0.0, |t| t.seconds);
    println!(
        "  search: {} trainings in {total:.1} s, {:.1}x the first point's ({first:.1} s)",
        search.trials.len(),
        total / first.max(1e-9)
    );
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

/// A progress bar per epoch on a terminal; one plain line per epoch otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
    max_epochs: usize,
}

impl Reporter {
    fn new() -> Self {
        Reporter {
            bar: None,
            max_epochs: 0,
        }
    }

    fn event(&mut self, e: &TrainEvent) {
        match e {
            TrainEvent::Start {
                steps_per_epoch,
                max_epochs,
                n_train,
                n_holdout,
            } => {
                self.max_epochs = *max_epochs;
                eprintln!("training on {n_train} pairs, {n_holdout} held out, {steps_per_epoch} steps per epoch, at most {max_epochs} epochs");
                if std::io::stderr().is_terminal() {
                    let bar = super::bar(
                        *steps_per_epoch as u64,
                        "{msg} [{bar:30}] {pos}/{len} steps, {per_sec}, ETA {eta}",
                    );
                    bar.set_style(bar.style().progress_chars("=> "));
                    bar.set_message(format!("epoch 1/{max_epochs}"));
                    self.bar = Some(bar);
                }
            }
            TrainEvent::Step { .. } => {
                if let Some(b) = &self.bar {
                    b.inc(1);
                }
            }
            TrainEvent::Epoch(s) => {
                let held = s
                    .holdout_nll
                    .map(|v| format!(", held-out NLL {v:.4}"))
                    .unwrap_or_default();
                let line = format!(
                    "epoch {}/{}: loss {:.4}{held}, lr {:.2e}, {:.2} s",
                    s.epoch, self.max_epochs, s.train_loss, s.lr, s.seconds
                );
                match &self.bar {
                    Some(b) => {
                        b.println(line);
                        b.reset();
                        b.set_message(format!("epoch {}/{}", s.epoch + 1, self.max_epochs));
                    }
                    None => eprintln!("{line}"),
                }
            }
        }
    }

    /// A search: a line per trial, the trial's training shown as usual.
    fn search_event(&mut self, e: SearchEvent<'_>) {
        match e {
            SearchEvent::Trial {
                index,
                total,
                alpha,
                lr,
            } => {
                self.finish();
                self.bar = None;
                eprintln!("search {}/{total}: alpha {alpha}, lr {lr:.1e}", index + 1);
            }
            SearchEvent::Train(t) => {
                if !matches!(t, TrainEvent::Epoch(_)) || self.bar.is_some() {
                    self.event(t)
                }
            }
            SearchEvent::Done(t) => eprintln!(
                "  held-out NLL {:.4} at epoch {} of {} ({:.1} s)",
                t.holdout_nll, t.best_epoch, t.epochs_run, t.seconds
            ),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[derive(clap::Args)]
pub struct BenchTrainArgs {
    #[arg(long, default_value_t = 100_000)]
    pub pairs: usize,
    #[arg(long, default_value_t = 768)]
    pub dim: usize,
    #[arg(long, default_value_t = 10)]
    pub heads: usize,
    /// Hidden units of the MLP router (0: linear router).
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Batch sizes to time, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "32,512")]
    pub batches: Vec<usize>,
    /// Epochs timed per batch size.
    #[arg(long, default_value_t = 2)]
    pub epochs: usize,
    #[arg(long, default_value = "micro")]
    pub method: Method,
}

pub fn bench(a: BenchTrainArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.pairs > 0 && a.dim > 0,
        "--pairs and --dim must be positive"
    );
    let t0 = Instant::now();
    let (diff, prompt) = random_arrays(a.pairs, a.dim);
    let cache_bytes = a.pairs as f64 * a.dim as f64 * 3.0 * 4.0;
    println!(
        "bench train: {} pairs, dim {}, K={}, method {}, router {}, {} threads; data made in {:.1} s",
        a.pairs,
        a.dim,
        a.heads,
        a.method,
        if a.hidden == 0 { "linear".to_string() } else { format!("mlp({})", a.hidden) },
        rayon::current_num_threads(),
        t0.elapsed().as_secs_f64()
    );
    let rows: Vec<usize> = (0..a.pairs).collect();
    for &batch in &a.batches {
        let cfg = TrainConfig {
            method: a.method,
            k: if a.method == Method::Single {
                1
            } else {
                a.heads
            },
            batch,
            max_epochs: a.epochs,
            router_hidden: (a.hidden > 0).then_some(a.hidden),
            holdout: 0.0,
            ..TrainConfig::default()
        };
        let (_, report) = micro_model::train_rows(&diff, &prompt, &rows, None, &cfg, |_| {})?;
        let secs: Vec<f64> = report.history.iter().map(|e| e.seconds).collect();
        let mean = secs.iter().sum::<f64>() / secs.len().max(1) as f64;
        let list: Vec<String> = secs.iter().map(|s| format!("{s:.3}")).collect();
        println!(
            "batch {batch}: {mean:.3} s/epoch (epochs: {})",
            list.join(", ")
        );
    }
    match peak_rss_bytes() {
        Some(rss) => println!(
            "peak RSS {:.0} MB = {:.2}x the cache size ({:.0} MB = n*d*3*4 bytes)",
            rss / 1e6,
            rss / cache_bytes,
            cache_bytes / 1e6
        ),
        None => println!(
            "peak RSS unavailable (no /proc/self/status); cache size {:.0} MB",
            cache_bytes / 1e6
        ),
    }
    Ok(())
}

/// Random h_w - h_l and prompt arrays in [-0.1, 0.1): timing does not depend on the values.
fn random_arrays(n: usize, d: usize) -> (Matrix, Matrix) {
    use rayon::prelude::*;
    let fill = |salt: u64| {
        let mut data = vec![0f32; n * d];
        data.par_chunks_mut(d * 1024)
            .enumerate()
            .for_each(|(i, chunk)| {
                let mut state = salt ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                chunk.iter_mut().for_each(|v| {
                    *v = (splitmix64(&mut state) >> 40) as f32 / (1u64 << 24) as f32 * 0.2 - 0.1
                });
            });
        Matrix::new(n, d, data)
    };
    (fill(1), fill(2))
}

/// SplitMix64 (Steele et al.): plenty for timing data, and no RNG dependency in the binary.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// VmHWM from /proc/self/status, in bytes.
fn peak_rss_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}
