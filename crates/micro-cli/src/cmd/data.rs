//! `micro data`: convert public preference sets into native pairs, summarise pair files, and
//! build the built-in multi-user set.

use anyhow::{Context, Result};
use micro_data::builtin::BuiltinOptions;
use micro_data::{formats, DataStats, Format, LoadOptions, PkuSelect, Split};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Convert dataset files (JSONL, .gz, Parquet, Arrow) into native pairs (JSONL).
    Convert(ConvertArgs),
    /// Summarise a pair file: counts per split/attribute/user, contexts, lengths, duplicates.
    Stats(StatsArgs),
    /// Write the built-in multi-user preference set.
    Builtin(BuiltinArgs),
}

#[derive(clap::Args)]
pub struct ConvertArgs {
    /// Input format: auto, native, helpsteer2, rpr, ultrafeedback, ultrafeedback-binarized,
    /// pku-saferlhf, hh-rlhf. `auto` decides from the first record's fields.
    #[arg(long, short, default_value = "auto")]
    pub format: Format,
    /// Input files; the split of each comes from --split, else from its name (train/test/validation).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output pairs (native JSONL).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Mark every pair as this split (HelpSteer2: train drops pairs all five attributes agree on).
    #[arg(long, value_enum)]
    pub split: Option<SplitArg>,
    /// PKU-SafeRLHF: which pairs to take: both, harmlessness or helpfulness.
    #[arg(long, default_value = "both")]
    pub pku: PkuSelect,
    /// PKU-SafeRLHF: skip harmlessness pairs whose two responses are both safe.
    #[arg(long)]
    pub pku_unsafe_only: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SplitArg {
    Train,
    Test,
}

impl From<SplitArg> for Split {
    fn from(s: SplitArg) -> Self {
        match s {
            SplitArg::Train => Split::Train,
            SplitArg::Test => Split::Test,
        }
    }
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
    /// Folder holding the chatterbot-corpus `*.yml` files (default: `$MICRO_HOME/corpus/chatterbot/english`).
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Convert(a) => convert(a),
        DataCommand::Stats(a) => stats(a),
        DataCommand::Builtin(a) => builtin(a),
    }
}

fn convert(a: ConvertArgs) -> Result<()> {
    let options = LoadOptions {
        format: a.format,
        split: a.split.map(Split::from),
        pku: a.pku,
        pku_unsafe_only: a.pku_unsafe_only,
    };
    let mut pairs = Vec::new();
    for input in &a.inputs {
        let loaded = formats::load_with(input, &options)?;
        eprintln!("{}", loaded.report);
        pairs.extend(loaded.pairs);
    }
    micro_data::jsonl::write_pairs(&a.output, &pairs)
        .with_context(|| format!("writing {}", a.output.display()))?;
    let s = DataStats::compute(&pairs);
    eprintln!(
        "wrote {} pairs (train {}, test {}, {} attributes) to {}",
        s.pairs,
        s.splits.train,
        s.splits.test,
        s.attributes.len(),
        a.output.display()
    );
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
    let options = BuiltinOptions {
        corpus_dir: a.corpus,
        seed: a.seed,
        ..Default::default()
    };
    let pairs = micro_data::builtin::build(&options)?;
    micro_data::jsonl::write_pairs(&a.output, &pairs)?;
    let s = DataStats::compute(&pairs);
    eprintln!(
        "wrote {} built-in pairs (train {}, test {}, {} attributes, {} users) to {}",
        s.pairs,
        s.splits.train,
        s.splits.test,
        s.attributes.len(),
        s.users.users,
        a.output.display()
    );
    Ok(())
}
