//! `micro serve` (the reward server and its API keys) and `micro bench serve` (a load test on
//! loopback).

use anyhow::Context;
use micro_embed::{BackboneOptions, ContextMode, DeviceKind};
use micro_model::MixtureModel;
use micro_route::Rate;
use micro_serve::store::{self, SqliteSync, StateStore};
use micro_serve::testing::{bench, report};
use micro_serve::{auth, AppState, BatchOptions, Limits, Scorer};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where users' state and API keys live.
#[derive(clap::Args, Clone, Debug)]
pub struct DbArgs {
    /// State store: a SQLite file (`PATH`, or `sqlite:PATH?sync=full&busy_timeout_ms=5000`
    /// with options) or a PostgreSQL URL (`postgres://user@host/db`, shared by several
    /// replicas).
    #[arg(long, env = "MICRO_DB", default_value = "micro-state.sqlite")]
    db: String,
    /// SQLite commit durability: `normal` (WAL; survives a killed process, a power loss may
    /// drop the last commits) or `full` (fsync every commit); default: the URL's `sync=`,
    /// else normal.
    #[arg(long)]
    sqlite_sync: Option<SqliteSync>,
}

impl DbArgs {
    async fn open(&self) -> anyhow::Result<Arc<dyn StateStore>> {
        store::open(&sqlite_sync(&self.db, self.sqlite_sync))
            .await
            .with_context(|| format!("cannot open the state store {}", redact(&self.db)))
    }
}

/// `url` with `--sqlite-sync` in it, when given (it overrides the URL's own `sync=`).
fn sqlite_sync(url: &str, sync: Option<SqliteSync>) -> String {
    sync.map_or_else(|| url.to_owned(), |s| store::with_sqlite_sync(url, s))
}

/// The URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    command: Option<ServeCommand>,
    /// Model folder (model.safetensors + config.json) from `micro train`.
    #[arg(long, required = true)]
    model: Option<PathBuf>,
    /// Backbone folder (the one the model was trained on) to accept text requests.
    #[arg(long)]
    backbone: Option<PathBuf>,
    /// Where the context goes in the router input text: prefix, system or none.
    #[arg(long, default_value = "prefix")]
    context_mode: ContextMode,
    /// Device for the backbone: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceKind,
    #[command(flatten)]
    db: DbArgs,
    /// Address to listen on; port 0 lets the OS choose (the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Hedge learning rate of new users: a number eta (1/tau in the paper) or `anytime`
    /// (eta_t = sqrt(8 ln K / t) / C, no horizon needed).
    #[arg(long, default_value = "anytime", value_parser = parse_rate)]
    rate: Rate,
    /// Largest request body, bytes.
    #[arg(long, default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Most responses (texts or embeddings), or `/get_reward` queries, per request.
    #[arg(long, default_value_t = Limits::default().max_texts)]
    max_texts: usize,
    /// Longest text, characters.
    #[arg(long, default_value_t = Limits::default().max_text_chars)]
    max_text_chars: usize,
    /// Requests running longer are answered 408; on SIGTERM, connections still open after
    /// this long are closed.
    #[arg(long, default_value_t = 30_000)]
    request_timeout_ms: u64,
    /// A connection that has not sent its request headers within this is closed.
    #[arg(long, default_value_t = 10_000)]
    header_timeout_ms: u64,
    #[command(flatten)]
    batching: BatchArgs,
}

/// How concurrent text requests share backbone passes.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct BatchArgs {
    /// Most texts in one shared backbone pass; 0 turns batching off (each request runs its
    /// own pass).
    #[arg(long, default_value_t = BatchOptions::default().max_texts)]
    batch_max_texts: usize,
    /// How long, in milliseconds, a batch's first request waits for others to join.
    #[arg(long, default_value_t = BatchOptions::default().max_wait.as_secs_f64() * 1e3)]
    batch_wait_ms: f64,
    /// Batches that may run at once (the next is collected while the previous runs).
    #[arg(long, default_value_t = BatchOptions::default().workers)]
    batch_workers: usize,
}

impl BatchArgs {
    fn options(self) -> anyhow::Result<BatchOptions> {
        let wait = Duration::try_from_secs_f64(self.batch_wait_ms / 1e3)
            .ok()
            .filter(|w| *w <= Duration::from_secs(1))
            .with_context(|| {
                format!(
                    "--batch-wait-ms {}: give 0 to 1000 milliseconds",
                    self.batch_wait_ms
                )
            })?;
        Ok(BatchOptions {
            max_texts: self.batch_max_texts,
            max_wait: wait,
            workers: self.batch_workers.max(1),
        })
    }
}

#[derive(clap::Subcommand)]
enum ServeCommand {
    /// Manage API keys (one or more per tenant; stored hashed).
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(clap::Subcommand)]
enum KeysCommand {
    /// Create a key for a tenant and print it (it is shown only once).
    Add {
        #[arg(long)]
        tenant: String,
        /// A note to recognise the key by in `keys list`.
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List keys (hash prefix, tenant, label, creation time).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke the keys whose hash starts with PREFIX (as `keys list` shows; 8+ hex digits).
    Remove {
        prefix: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

fn parse_rate(s: &str) -> Result<Rate, String> {
    if s.eq_ignore_ascii_case("anytime") {
        return Ok(Rate::Anytime);
    }
    match s.parse::<f64>() {
        Ok(eta) if eta > 0.0 && eta.is_finite() => Ok(Rate::Fixed(eta)),
        _ => Err(format!(
            "--rate {s:?}: give a positive number (eta) or `anytime`"
        )),
    }
}

pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match a.command {
        Some(ServeCommand::Keys(k)) => rt.block_on(keys(k)),
        None => rt.block_on(serve(a)),
    }
}

async fn keys(c: KeysCommand) -> anyhow::Result<()> {
    match c {
        KeysCommand::Add { tenant, label, db } => {
            let store = db.open().await?;
            let (key, rec) = auth::add_key(store.as_ref(), &tenant, &label)
                .await
                .map_err(anyhow::Error::msg)?;
            eprintln!(
                "key {} for tenant {:?} stored in {}; it is not shown again",
                &rec.hash[..12],
                rec.tenant,
                redact(&db.db)
            );
            println!("{key}");
        }
        KeysCommand::List { db } => {
            for k in db.open().await?.list_keys().await? {
                println!(
                    "{}  {:<24} {:<24} {}",
                    &k.hash[..12],
                    k.tenant,
                    k.label,
                    k.created_at
                );
            }
        }
        KeysCommand::Remove { prefix, db } => {
            if prefix.len() < 8 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
                anyhow::bail!("key prefix {prefix:?}: give at least 8 hex digits of the hash `keys list` shows");
            }
            let n = db
                .open()
                .await?
                .remove_keys(&prefix.to_ascii_lowercase())
                .await?;
            if n == 0 {
                anyhow::bail!("no key hash starts with {prefix}");
            }
            println!(
                "removed {n} key(s); servers stop accepting them within {} s",
                auth::KeyCache::TTL.as_secs()
            );
        }
    }
    Ok(())
}

async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let dir = a.model.context("--model is required")?;
    let model = MixtureModel::load(&dir)
        .with_context(|| format!("cannot load the model folder {}", dir.display()))?;
    let backbone = match &a.backbone {
        Some(b) => {
            // Text forms as the training cache made them, so that serving computes the same
            // vectors for the same prompt and response (a model that records none predates
            // them: micro then embedded whole transcripts).
            let recipe = &model.config().recipe;
            let opts = BackboneOptions {
                context: a.context_mode,
                device: a.device,
                response_text: parse_or(
                    &recipe.response_text,
                    micro_embed::ResponseText::Transcript,
                ),
                prompt_text: parse_or(&recipe.prompt_text, micro_embed::PromptText::Transcript),
                ..Default::default()
            };
            let loaded = micro_embed::load_backbone(b, &opts)
                .with_context(|| format!("cannot load the backbone {}", b.display()))?;
            let (want, got) = (&model.config().backbone.name, loaded.info().name);
            if !want.is_empty() && *want != got {
                eprintln!(
                    "warning: the model was trained on backbone `{want}`, serving with `{got}`"
                );
            }
            Some(Arc::from(loaded))
        }
        None => None,
    };
    let scorer = Scorer::with_batching(model, backbone, a.batching.options()?)
        .map_err(anyhow::Error::msg)?;
    let store = a.db.open().await?;
    let limits = Limits {
        max_body_bytes: a.max_body_bytes,
        max_texts: a.max_texts,
        max_text_chars: a.max_text_chars,
        timeout: Duration::from_millis(a.request_timeout_ms),
        header_timeout: Duration::from_millis(a.header_timeout_ms),
    };
    let summary = format!(
        "model K={} d={}, store {} ({}), text {}",
        scorer.k(),
        scorer.dim(),
        store.kind(),
        redact(&a.db.db),
        scorer.has_backbone()
    );
    let state = Arc::new(AppState::new(scorer, store, limits, a.rate));
    let (listener, addr) = micro_serve::server::bind(&a.listen)
        .await
        .with_context(|| format!("cannot listen on {}", a.listen))?;
    // Tests and scripts read the bound address from this line (port 0 picks a free port).
    println!("micro serve: listening on http://{addr}");
    std::io::stdout().flush().ok();
    eprintln!("micro serve: {summary}; Ctrl-C or SIGTERM stops after in-flight requests");
    micro_serve::serve(listener, state, micro_serve::shutdown_signal())
        .await
        .context("server failed")?;
    eprintln!("micro serve: stopped");
    Ok(())
}

#[derive(clap::Args)]
pub struct BenchServeArgs {
    /// Requests per phase (default: 5000 for scoring and feedback, 320 with --text).
    #[arg(long)]
    requests: Option<usize>,
    /// Concurrent keep-alive clients.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Embedding width of the synthetic model.
    #[arg(long, default_value_t = 768)]
    dim: usize,
    /// Heads of the synthetic model.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Responses per scoring request.
    #[arg(long, default_value_t = 4)]
    responses: usize,
    /// Users the feedback is spread over.
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// State store URL (default: a fresh SQLite file in a temporary folder).
    #[arg(long)]
    db: Option<String>,
    #[arg(long)]
    sqlite_sync: Option<SqliteSync>,
    /// Measure text scoring through a real backbone instead: single-query OpenRLHF-shaped
    /// calls from --clients concurrent clients, without and with batching.
    #[arg(long)]
    text: bool,
    /// Backbone folder for --text (default: all-MiniLM-L6-v2 from scripts/fetch-assets.sh).
    #[arg(long)]
    backbone: Option<PathBuf>,
    /// Concurrent single-query clients for --text, one phase each.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    clients: Vec<usize>,
    /// For --text: consecutive calls that share a prompt and label, as a trainer sampling
    /// several responses per prompt sends them (1: all prompts distinct).
    #[arg(long, default_value_t = 1)]
    samples_per_prompt: usize,
    #[command(flatten)]
    batching: BatchArgs,
}

pub fn bench(a: BenchServeArgs) -> anyhow::Result<()> {
    if a.text {
        return bench_text(a);
    }
    let opts = bench::BenchOptions {
        requests: a.requests.unwrap_or(5000),
        concurrency: a.concurrency,
        dim: a.dim,
        k: a.k,
        responses: a.responses,
        users: a.users,
        db: a.db,
        sync: a.sqlite_sync,
    };
    let tmp = report::temp_dir().map_err(anyhow::Error::msg)?;
    println!("{}", report::heading(&opts, report::cores()));
    let results = bench::run(&opts, &tmp).map_err(anyhow::Error::msg)?;
    for r in &results {
        println!("{r}");
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// `micro bench serve --text`: texts/s and latency with and without batching, and the
/// batched/unbatched throughput ratio per client count.
fn bench_text(a: BenchServeArgs) -> anyhow::Result<()> {
    let dir = match a.backbone {
        Some(d) => d,
        None => micro_embed::default_minilm_dir()
            .context("no --backbone given and no home folder to find all-MiniLM-L6-v2 in")?,
    };
    let backbone = micro_embed::load_backbone(&dir, &BackboneOptions::default())
        .with_context(|| format!("cannot load the backbone {} (fetch it with scripts/fetch-assets.sh minilm, or pass --backbone DIR)", dir.display()))?;
    let opts = bench::TextBenchOptions {
        requests: a.requests.unwrap_or(320),
        clients: a.clients,
        k: a.k,
        batching: a.batching.options()?,
        samples_per_prompt: a.samples_per_prompt,
    };
    let (name, dim) = (backbone.info().name, backbone.dim());
    println!(
        "{}",
        report::text_heading(&opts, &name, dim, report::cores())
    );
    let tmp = report::temp_dir().map_err(anyhow::Error::msg)?;
    let results = bench::run_text(&opts, Arc::from(backbone), &tmp).map_err(anyhow::Error::msg)?;
    let _ = std::fs::remove_dir_all(&tmp);
    for r in &results {
        println!("{r}");
    }
    for line in report::speedups(&opts.clients, &results) {
        println!("{line}");
    }
    Ok(())
}

/// A recorded option's value, or `fallback` when absent or not one this build knows.
fn parse_or<T: std::str::FromStr>(recorded: &Option<String>, fallback: T) -> T {
    recorded
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or(fallback)
}
