//! `micro embed` (pairs -> embedding cache), `micro cache info|merge`, and `micro bench embed`.

use anyhow::Context;
use micro_cache::{Dtype, EmbeddingCache};
use micro_data::Format;
use micro_embed::encoder::{Encoder, Engine};
use micro_embed::progress::Progress;
use micro_embed::{
    BackboneOptions, ContextMode, DeviceKind, EmbedOptions, ModelFolder, PromptText, ResponseText,
    Shard,
};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct EmbedArgs {
    /// Hugging Face model folder: config.json, model.safetensors (or sharded with
    /// model.safetensors.index.json), tokenizer.json, tokenizer_config.json.
    #[arg(long)]
    pub model: PathBuf,
    /// Preference pairs: native JSONL, or any supported dataset file (see --format).
    #[arg(long, alias = "data")]
    pub pairs: PathBuf,
    /// Dataset format of --pairs (auto, native, helpsteer2, rpr, ultrafeedback, ...).
    #[arg(long, default_value = "auto")]
    pub format: Format,
    /// Output cache folder. An interrupted run into the same folder resumes.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Where a pair's context goes: prefix (`[criteria] c\n[context] prompt`), system, none.
    #[arg(long, default_value = "prefix")]
    pub context: ContextMode,
    /// Encoders: the text of a response's reward feature: last-turn (the last user turn, then
    /// the response), transcript (every turn, then the response) or response (alone). Decoders
    /// always embed the chat-templated conversation. See the README's feature table.
    #[arg(long, default_value = "last-turn")]
    pub response_text: ResponseText,
    /// Encoders: the text of a router input: last-turn or transcript (the context goes before it).
    #[arg(long, default_value = "last-turn")]
    pub prompt_text: PromptText,
    /// Storage precision of the cache: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    pub dtype: Dtype,
    /// Embed only slice i of n (0-based), e.g. `--shard $SLURM_ARRAY_TASK_ID/16`; join the
    /// slices with `micro cache merge`.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Maximum tokens per sequence (default: the model's, e.g. max_seq_length 256 for MiniLM).
    #[arg(long)]
    pub max_len: Option<usize>,
    /// cpu, or cuda[:N] (needs a build with `--features micro-embed/cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceKind,
    /// Distinct texts per chunk: the unit of progress and of resuming.
    #[arg(long, default_value_t = 512)]
    pub chunk: usize,
    /// Seconds between progress lines when stderr is not a terminal.
    #[arg(long, default_value_t = 30)]
    pub progress_every: u64,
}

pub fn run(a: EmbedArgs) -> anyhow::Result<()> {
    let pairs = micro_data::load(&a.pairs, a.format)?;
    let opts = BackboneOptions {
        context: a.context,
        max_len: a.max_len,
        batch_size: a.batch_size,
        device: a.device,
        response_text: a.response_text,
        prompt_text: a.prompt_text,
    };
    let backbone = micro_embed::load_backbone(&a.model, &opts)?;
    let info = backbone.info();
    eprintln!(
        "embedding {} pairs from {} with {} ({}, {}), {} threads",
        pairs.len(),
        a.pairs.display(),
        info.name,
        info.kind,
        info.architecture.as_deref().unwrap_or("?"),
        rayon::current_num_threads()
    );
    let eopts = EmbedOptions {
        shard: a.shard,
        dtype: a.dtype,
        chunk_size: a.chunk.max(1),
    };
    let mut progress = Progress::new("embed", Duration::from_secs(a.progress_every.max(1)));
    let summary =
        micro_embed::embed_to_cache(backbone.as_ref(), pairs, &a.output, &eopts, &mut |t| {
            progress.tick(t)
        });
    progress.finish();
    let s = summary?;
    if s.discarded_stale_partial {
        eprintln!(
            "note: discarded unfinished work in {} from a run on other input",
            a.output.display()
        );
    }
    println!(
        "wrote {}: {} pairs, {} distinct responses, {} distinct prompts{}, {:.1}s ({:.1} texts/s){}",
        a.output.display(),
        s.pairs,
        s.distinct_responses,
        s.distinct_prompts,
        a.shard.map(|s| format!(" (shard {s})")).unwrap_or_default(),
        s.seconds,
        s.texts_per_second,
        if s.resumed_texts > 0 { format!(", {} texts resumed", s.resumed_texts) } else { String::new() },
    );
    if s.truncated_responses + s.truncated_prompts > 0 {
        println!(
            "truncated to the model's length: {} responses (oldest prompt text dropped first), {} prompts",
            s.truncated_responses, s.truncated_prompts
        );
    }
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum CacheCommand {
    /// Print what a cache holds: size, widths, backbone, pooling, truncation counts.
    Info {
        path: PathBuf,
        /// Print meta.json as JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Join caches (the shards of `micro embed --shard i/n`, in shard order) into one.
    Merge {
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[arg(short, long)]
        output: PathBuf,
        /// Storage precision of the result (default: that of the first input).
        #[arg(long)]
        dtype: Option<Dtype>,
    },
}

pub fn run_cache(c: CacheCommand) -> anyhow::Result<()> {
    match c {
        CacheCommand::Info { path, json } => info(&path, json),
        CacheCommand::Merge {
            inputs,
            output,
            dtype,
        } => {
            let s = micro_embed::merge_caches(&inputs, &output, dtype)?;
            println!(
                "wrote {}: {} pairs from {} caches",
                output.display(),
                s.pairs,
                s.inputs
            );
            if !s.missing_shards.is_empty() {
                eprintln!(
                    "warning: shards {} were not given: the merged cache is partial",
                    s.missing_shards.join(", ")
                );
            }
            Ok(())
        }
    }
}

fn info(path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let cache = EmbeddingCache::load(path)?;
    let m = &cache.meta;
    if json {
        println!("{}", serde_json::to_string_pretty(m)?);
        return Ok(());
    }
    println!("cache      {}", path.display());
    println!("pairs      {}", m.n);
    println!("dim        {} (router input {})", m.dim, m.prompt_dim);
    println!("dtype      {:?}", m.dtype);
    let b = &m.backbone;
    println!(
        "backbone   {} ({}{})",
        b.name,
        b.kind,
        b.architecture
            .as_ref()
            .map(|a| format!(", {a}"))
            .unwrap_or_default()
    );
    if let Some(sha) = &b.weights_sha256 {
        println!("weights    sha256 {sha}");
    }
    if let Some(p) = &m.pooling {
        println!("pooling    {p}");
    }
    if let Some(c) = &m.context_insertion {
        println!("context    {c}");
    }
    println!(
        "scores     {}",
        if cache.scores.is_some() {
            "yes (backbone reward head)"
        } else {
            "no"
        }
    );
    let mut groups = std::collections::BTreeMap::<&str, usize>::new();
    for p in &cache.pairs {
        *groups.entry(p.group()).or_default() += 1;
    }
    let train = cache.pairs.iter().filter(|p| p.is_train()).count();
    println!(
        "split      {} train, {} test",
        train,
        cache.pairs.len() - train
    );
    let list: Vec<String> = groups.iter().map(|(g, n)| format!("{g} {n}")).collect();
    println!("groups     {}", list.join(", "));
    for (k, v) in &m.extra {
        println!("{k:<10} {v}");
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct BenchEmbedArgs {
    /// Hugging Face model folder.
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Texts per length.
    #[arg(long, default_value_t = 256)]
    pub texts: usize,
    /// Target token counts (special tokens included).
    #[arg(long, value_delimiter = ',', default_value = "17,90,200")]
    pub lengths: Vec<usize>,
    /// native (hand-written forward) or candle (candle's BertModel), for encoders.
    #[arg(long, default_value = "native")]
    pub engine: String,
}

pub fn bench(a: BenchEmbedArgs) -> anyhow::Result<()> {
    let folder = ModelFolder::open(&a.model)?;
    let opts = BackboneOptions {
        batch_size: a.batch_size,
        ..Default::default()
    };
    let backbone: Box<dyn micro_embed::Backbone> = match a.engine.as_str() {
        "native" => micro_embed::load_backbone(&a.model, &opts)?,
        "candle" => Box::new(Encoder::load_with(&folder, &opts, Engine::Candle)?),
        other => anyhow::bail!("--engine {other:?}: use native or candle"),
    };
    let tokenizer = folder.load_tokenizer()?;
    println!(
        "model {} ({}), engine {}, batch {}, {} threads",
        backbone.info().name,
        folder.architecture,
        a.engine,
        a.batch_size,
        rayon::current_num_threads()
    );
    println!(
        "{:>8} {:>8} {:>10} {:>12} {:>8} {:>8}",
        "tokens", "texts", "texts/s", "tokens/s", "seconds", "cpu s"
    );
    for &len in &a.lengths {
        let texts = micro_embed::encoder::bench_texts(&tokenizer, len, a.texts)
            .context("building benchmark texts")?;
        let tokens: usize = texts.iter().map(|(_, n)| n).sum();
        let prompts: Vec<micro_data::Prompt> = texts
            .iter()
            .map(|(t, _)| micro_data::Prompt::Text(t.clone()))
            .collect();
        let items: Vec<micro_embed::PromptItem> = prompts
            .iter()
            .map(|p| micro_embed::PromptItem {
                prompt: p,
                context: None,
            })
            .collect();
        backbone.embed_prompts(&items[..a.batch_size.min(items.len())])?; // warm-up: buffers, caches
        let (t0, cpu0) = (Instant::now(), cpu_seconds());
        backbone.embed_prompts(&items)?;
        let s = t0.elapsed().as_secs_f64();
        let cpu = match (cpu0, cpu_seconds()) {
            (Some(a), Some(b)) => format!("{:.2}", b - a),
            _ => "?".into(),
        };
        println!(
            "{:>8.0} {:>8} {:>10.1} {:>12.0} {:>8.2} {:>8}",
            tokens as f64 / texts.len() as f64,
            texts.len(),
            texts.len() as f64 / s,
            tokens as f64 / s,
            s,
            cpu
        );
    }
    Ok(())
}

/// User + system CPU seconds of this process (Linux `/proc/self/stat`), to tell a slow run
/// from one that shared the cores with other work.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
