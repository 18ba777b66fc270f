//! `micro data`: convert public preference sets into native pairs, summarise pair files, and
//! build the built-in multi-user set.

use anyhow::{Context, Result};
use micro_data::builtin::BuiltinOptions;
use micro_data::convert::{self, LayoutOverrides};
use micro_data::hh_users::HhUsersOptions;
use micro_data::{formats, DataStats, Format, LoadOptions, PkuSelect, Split};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Convert dataset files (JSONL, .gz, Parquet, Arrow) into native pairs (JSONL).
    Convert(Box<ConvertArgs>),
    /// Summarise a pair file: counts per split/attribute/user, contexts, lengths, duplicates.
    Stats(StatsArgs),
    /// Write the built-in multi-user preference set.
    Builtin(BuiltinArgs),
    /// Write a multi-user set on HH-RLHF harmless-base: the real label plus users who reverse each other.
    HhUsers(HhUsersArgs),
}

#[derive(clap::Args)]
pub struct ConvertArgs {
    /// Input format: auto, native, helpsteer2, rpr, ultrafeedback, ultrafeedback-binarized,
    /// pku-saferlhf, hh-rlhf, ratings, prometheus, pandalm. `auto` decides from the first
    /// record's fields.
    #[arg(long, short, default_value = "auto")]
    pub format: Format,
    /// Input files; the split of each comes from --split, else from its name (train/test/validation).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output pairs (native JSONL).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Mark every pair as this split (HelpSteer2: train drops pairs all five attributes agree on).
    #[arg(long, value_enum, conflicts_with = "test_fraction")]
    pub split: Option<Split>,
    /// Split by prompt instead: this fraction of the distinct prompts goes to test (e.g. 0.2),
    /// drawn with --seed; for small sets that ship as one file.
    #[arg(long)]
    pub test_fraction: Option<f64>,
    /// Seed of the split by prompt.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub ratings: RatingsArgs,
    /// PKU-SafeRLHF: which pairs to take: both, harmlessness or helpfulness.
    #[arg(long, default_value = "both")]
    pub pku: PkuSelect,
    /// PKU-SafeRLHF: skip harmlessness pairs whose two responses are both safe.
    #[arg(long)]
    pub pku_unsafe_only: bool,
}

/// Rated responses (`--format ratings`, and the gap and contexts of `helpsteer2`).
#[derive(clap::Args)]
pub struct RatingsArgs {
    #[command(flatten)]
    pub fields: LayoutOverrides,
    /// ratings, helpsteer2: the minimum rating gap for a pair (default: HelpSteer2 1, UniEval 0.5).
    #[arg(long)]
    pub min_gap: Option<f64>,
    /// A context sentence for an attribute, NAME=SENTENCE (repeatable); ahead of the built-in ones.
    #[arg(long = "context", value_name = "NAME=SENTENCE")]
    pub contexts: Vec<String>,
    /// A JSON file of context sentences, {"attribute": "sentence", ...}.
    #[arg(long)]
    pub contexts_file: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct StatsArgs {
    /// Pair file(s): native JSONL, or any dataset file --format reads.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Input format (native files are recognised by `auto`).
    #[arg(long, short, default_value = "auto")]
    pub format: Format,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct BuiltinArgs {
    /// Output pairs (native JSONL).
    #[arg(long, short)]
    pub output: PathBuf,
    #[command(flatten)]
    pub options: BuiltinOptions,
}

#[derive(clap::Args)]
pub struct HhUsersArgs {
    /// The HH-RLHF harmless-base file (e.g. ../shared/data/hh-rlhf/harmless-base-test.jsonl.gz).
    #[arg(long)]
    pub input: PathBuf,
    /// Output pairs (native JSONL).
    #[arg(long, short)]
    pub output: PathBuf,
    #[command(flatten)]
    pub options: HhUsersOptions,
}

pub fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Convert(a) => convert(*a),
        DataCommand::Stats(a) => stats(a),
        DataCommand::Builtin(a) => builtin(a),
        DataCommand::HhUsers(a) => hh_users(a),
    }
}

fn hh_users(a: HhUsersArgs) -> Result<()> {
    let loaded = formats::load_with(
        &a.input,
        &LoadOptions {
            format: Format::HhRlhf,
            ..Default::default()
        },
    )?;
    eprintln!("{}", loaded.report);
    let (pairs, report) = micro_data::hh_users::build(&loaded.pairs, &a.options)?;
    micro_data::jsonl::write_pairs(&a.output, &pairs)
        .with_context(|| format!("writing {}", a.output.display()))?;
    for line in report.lines(&DataStats::compute(&pairs), &a.output) {
        eprintln!("{line}");
    }
    Ok(())
}

fn convert(a: ConvertArgs) -> Result<()> {
    let options = LoadOptions {
        format: a.format,
        split: a.split,
        test_fraction: a.test_fraction,
        seed: a.seed,
        pku: a.pku,
        pku_unsafe_only: a.pku_unsafe_only,
        ratings: None,
        min_gap: a.ratings.min_gap,
        contexts: convert::context_sentences(
            a.ratings.contexts_file.as_deref(),
            &a.ratings.contexts,
        )?,
    };
    let s = convert::convert(&a.inputs, options, &a.ratings.fields, &a.output, &mut |r| {
        eprintln!("{r}")
    })?;
    eprintln!("{}", convert::wrote_line(&s, &a.output));
    Ok(())
}

fn stats(a: StatsArgs) -> Result<()> {
    let options = LoadOptions {
        format: a.format,
        ..Default::default()
    };
    let (pairs, reports) = formats::load_many(&a.inputs, &options)?;
    let s = DataStats::compute(&pairs);
    let text = if a.json {
        serde_json::to_string_pretty(&s)?
    } else {
        let mut lines: Vec<String> = reports.iter().map(|r| r.to_string()).collect();
        lines.push(s.to_string());
        lines.join("\n")
    };
    print_out(&text)
}

/// Prints to stdout; a closed pipe (`micro data stats ... | head`) is not an error.
fn print_out(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn builtin(a: BuiltinArgs) -> Result<()> {
    let pairs = micro_data::builtin::build(&a.options)?;
    micro_data::jsonl::write_pairs(&a.output, &pairs)?;
    let s = DataStats::compute(&pairs);
    eprintln!("{}", micro_data::builtin::wrote_line(&s, &a.output));
    Ok(())
}
