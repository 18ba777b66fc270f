//! `micro embed` (pairs -> embedding cache), `micro cache info|merge`, and `micro bench embed`.

use anyhow::Context;
use micro_cache::{Dtype, EmbeddingCache};
use micro_data::Format;
use micro_data::Message;
use micro_embed::decoder::{DecoderModel, DecoderOptions, Precision};
use micro_embed::encoder::{Encoder, Engine};
use micro_embed::progress::Progress;
use micro_embed::{
    BackboneOptions, ContextMode, DeviceKind, EmbedOptions, Family, ModelFolder, PromptText,
    ResponseText, Shard,
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
    /// cpu, or cuda[:N] for a GPU (a build from scripts/build-cuda.sh; decoders run in bf16
    /// there).
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
    /// Hugging Face model folder (a BERT-family encoder or a Llama/Qwen2 decoder).
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Texts per length.
    #[arg(long, default_value_t = 256)]
    pub texts: usize,
    /// Target token counts of the texts (special tokens included; a decoder's chat template
    /// adds its own).
    #[arg(long, value_delimiter = ',', default_value = "17,90,200")]
    pub lengths: Vec<usize>,
    /// native (hand-written forward) or candle (candle's BertModel), for encoders.
    #[arg(long, default_value = "native")]
    pub engine: String,
    /// cpu, or cuda[:N] (a build from scripts/build-cuda.sh).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceKind,
    /// Decoders: dtype of weights and activations (auto: f32 on the CPU, bf16 on a GPU).
    #[arg(long, default_value = "auto")]
    pub precision: Precision,
    /// Decoders: write the token ids of every sequence run (JSON) for a peer benchmark on the
    /// same input (scripts/decoder-peer-bench.py).
    #[arg(long)]
    pub dump_ids: Option<PathBuf>,
    /// Decoders on a GPU: also run the texts on the CPU in f32 and print how far the device's
    /// hidden states are from them.
    #[arg(long)]
    pub compare_cpu: bool,
}

pub fn bench(a: BenchEmbedArgs) -> anyhow::Result<()> {
    let folder = ModelFolder::open(&a.model)?;
    match micro_embed::family(&folder.architecture, &folder.model_type) {
        Some(Family::Decoder) => bench_decoder(&a, &folder),
        _ => bench_encoder(&a, &folder),
    }
}

fn bench_encoder(a: &BenchEmbedArgs, folder: &ModelFolder) -> anyhow::Result<()> {
    let opts = BackboneOptions {
        batch_size: a.batch_size,
        device: a.device,
        ..Default::default()
    };
    let backbone: Box<dyn micro_embed::Backbone> = match a.engine.as_str() {
        "native" => micro_embed::load_backbone(&a.model, &opts)?,
        "candle" => Box::new(Encoder::load_with(folder, &opts, Engine::Candle)?),
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
    print_header();
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
        let timed = Timed::run(|| backbone.embed_prompts(&items).map(|_| ()))?;
        timed.print(tokens, texts.len());
    }
    Ok(())
}

/// Decoders: each text as a user turn rendered with the chat template's generation prompt, the
/// router-input pass (`embed_prompts`) that serving and `micro embed` run.
fn bench_decoder(a: &BenchEmbedArgs, folder: &ModelFolder) -> anyhow::Result<()> {
    let model = load_decoder(&a.model, a.device, a.precision, a.batch_size)?;
    let c = model.config();
    println!(
        "model {} ({}, {} layers, hidden {}), device {:?}, precision {:?}, batch {}, {} threads",
        folder.name(),
        c.architecture_name,
        c.num_hidden_layers,
        c.hidden_size,
        a.device,
        a.precision,
        a.batch_size,
        rayon::current_num_threads()
    );
    let tokenizer = folder.load_tokenizer()?;
    let mut dumped = Vec::new();
    print_header();
    for &len in &a.lengths {
        let texts = micro_embed::encoder::bench_texts(&tokenizer, len, a.texts)
            .context("building benchmark texts")?;
        let turns: Vec<Vec<Message>> = texts
            .iter()
            .map(|(t, _)| vec![Message::new("user", t.clone())])
            .collect();
        let inputs: Vec<(&[Message], Option<&str>)> =
            turns.iter().map(|t| (t.as_slice(), None)).collect();
        let ids: Vec<Vec<u32>> = inputs
            .iter()
            .map(|(p, c)| model.encode_prompt(p, *c).map(|e| e.0))
            .collect::<Result<_, _>>()?;
        let tokens: usize = ids.iter().map(Vec::len).sum();
        model.embed_prompts(&inputs[..a.batch_size.min(inputs.len())])?; // warm-up
        let mut states = Vec::new();
        let timed = Timed::run(|| {
            states = model.embed_prompts(&inputs)?;
            Ok(())
        })?;
        timed.print(tokens, texts.len());
        if a.compare_cpu {
            compare_with_cpu(a, &inputs, &states)?;
        }
        dumped.push(serde_json::json!({"target_tokens": len, "sequences": ids}));
    }
    if let Some(path) = &a.dump_ids {
        let doc = serde_json::json!({"batch_size": a.batch_size, "lengths": dumped});
        std::fs::write(path, doc.to_string())
            .with_context(|| format!("writing {}", path.display()))?;
        println!("token ids written to {}", path.display());
    }
    Ok(())
}

fn load_decoder(
    dir: &std::path::Path,
    device: DeviceKind,
    precision: Precision,
    batch_size: usize,
) -> anyhow::Result<DecoderModel> {
    let options = DecoderOptions {
        device,
        precision,
        batch_size,
        ..Default::default()
    };
    Ok(DecoderModel::load(dir, &options)?)
}

/// Prints the largest absolute difference and the smallest cosine between `states` and the
/// same prompts' states on the CPU in f32.
fn compare_with_cpu(
    a: &BenchEmbedArgs,
    inputs: &[(&[Message], Option<&str>)],
    states: &[(Vec<f32>, bool)],
) -> anyhow::Result<()> {
    let cpu = load_decoder(&a.model, DeviceKind::Cpu, Precision::F32, a.batch_size)?;
    let reference = cpu.embed_prompts(inputs)?;
    let (mut worst, mut min_cosine) = (0f32, 1f32);
    for ((s, _), (r, _)) in states.iter().zip(&reference) {
        let diff = s
            .iter()
            .zip(r)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        worst = worst.max(diff);
        min_cosine = min_cosine.min(cosine(s, r));
    }
    println!(
        "{:>8} against the CPU in f32: max abs difference {worst:.3e}, min cosine {min_cosine:.6}",
        ""
    );
    Ok(())
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    (dot / (norm(a) * norm(b)).max(1e-30)) as f32
}

fn print_header() {
    println!(
        "{:>8} {:>8} {:>10} {:>12} {:>8} {:>8}",
        "tokens", "texts", "texts/s", "tokens/s", "seconds", "cpu s"
    );
}

/// Wall-clock and CPU seconds of one timed run.
struct Timed {
    seconds: f64,
    cpu: Option<f64>,
}

impl Timed {
    fn run(f: impl FnOnce() -> micro_embed::Result<()>) -> anyhow::Result<Self> {
        let (t0, cpu0) = (Instant::now(), cpu_seconds());
        f()?;
        let seconds = t0.elapsed().as_secs_f64();
        let cpu = cpu0.zip(cpu_seconds()).map(|(a, b)| b - a);
        Ok(Timed { seconds, cpu })
    }

    fn print(&self, tokens: usize, texts: usize) {
        let cpu = self.cpu.map_or("?".into(), |c| format!("{c:.2}"));
        println!(
            "{:>8.0} {:>8} {:>10.1} {:>12.0} {:>8.2} {:>8}",
            tokens as f64 / texts as f64,
            texts,
            texts as f64 / self.seconds,
            tokens as f64 / self.seconds,
            self.seconds,
            cpu
        );
    }
}

/// User + system CPU seconds of this process (Linux `/proc/self/stat`), to tell a slow run
/// from one that shared the cores with other work.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
