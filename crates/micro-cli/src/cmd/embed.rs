//! `micro embed` (pairs -> embedding cache), `micro cache info|merge`, and `micro bench embed`.

use crate::console::{Console, Training};
use micro_cache::{CacheInfo, Dtype, EmbeddingCache};
use micro_data::Format;
use micro_demo::Observer;
use micro_embed::{BackboneOptions, EmbedOptions};
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
    #[command(flatten)]
    pub backbone: BackboneOptions,
    #[command(flatten)]
    pub embed: EmbedOptions,
    /// Seconds between progress lines when stderr is not a terminal.
    #[arg(long, default_value_t = 30)]
    pub progress_every: u64,
}

pub fn run(a: EmbedArgs) -> anyhow::Result<()> {
    let pairs = micro_data::load(&a.pairs, a.format)?;
    let backbone = micro_embed::load_backbone(&a.model, &a.backbone)?;
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
    let every = Duration::from_secs(a.progress_every.max(1));
    let mut console = Console::new(Training::Epochs, every);
    let summary =
        micro_embed::embed_to_cache(backbone.as_ref(), pairs, &a.output, &a.embed, &mut |t| {
            console.embed(t)
        });
    console.finish();
    let s = summary?;
    if s.discarded_stale_partial {
        eprintln!(
            "note: discarded unfinished work in {} from a run on other input",
            a.output.display()
        );
    }
    for line in s.lines(&a.output, a.embed.shard) {
        println!("{line}");
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
            println!("{}", s.line(&output));
            if let Some(w) = s.warning() {
                eprintln!("{w}");
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Embed {
        #[command(flatten)]
        args: EmbedArgs,
    }

    /// `micro embed` without flags embeds with the library's default options.
    #[test]
    fn no_flags_give_the_library_defaults() {
        let a = Embed::try_parse_from(["embed", "--model", "m", "--pairs", "p", "-o", "o"])
            .unwrap()
            .args;
        let debug = |v: &dyn std::fmt::Debug| format!("{v:?}");
        assert_eq!(debug(&a.backbone), debug(&BackboneOptions::default()));
        assert_eq!(debug(&a.embed), debug(&EmbedOptions::default()));
    }
}
