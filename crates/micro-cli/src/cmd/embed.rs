//! `micro embed` (pairs -> embedding cache), `micro cache info|merge`, and `micro bench embed`.

use micro_cache::{CacheInfo, Dtype, EmbeddingCache};
use micro_data::Format;
use micro_embed::progress::Progress;
use micro_embed::{
    BackboneOptions, ContextMode, DeviceKind, EmbedOptions, PromptText, ResponseText, Shard,
};
use std::path::PathBuf;
use std::time::Duration;

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
    if json {
        println!("{}", serde_json::to_string_pretty(&cache.meta)?);
    } else {
        println!(
            "{}",
            CacheInfo {
                cache: &cache,
                path
            }
        );
    }
    Ok(())
}
