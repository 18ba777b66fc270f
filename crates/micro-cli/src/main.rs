//! `micro`: personalized preference learning (MiCRo), from preference data to a reward server.
//!
//! A thin binary: every subcommand parses its flags here and calls the library crates.

use clap::{Parser, Subcommand};

mod cmd;
mod console;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "micro",
    version,
    about = "Mixture reward models with context-aware routing (MiCRo)"
)]
struct Cli {
    /// Worker threads for compute (default: all cores).
    #[arg(long, global = true, env = "MICRO_THREADS")]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert, inspect and build preference data.
    #[command(subcommand)]
    Data(cmd::data::DataCommand),
    /// Write a synthetic cache drawn from a known mixture of BT models.
    Synth(cmd::synth::SynthArgs),
    /// Embed preference pairs with a transformer backbone into a cache.
    Embed(cmd::embed::EmbedArgs),
    /// Inspect and merge embedding caches.
    #[command(subcommand)]
    Cache(cmd::embed::CacheCommand),
    /// Stage 1: train MiCRo or a baseline on a cache.
    Train(cmd::train::TrainArgs),
    /// Evaluate a model on a cache: accuracy per attribute and per head.
    Eval(cmd::eval::EvalArgs),
    /// Stage 2: route by context and weigh each user known by id, from up to B labelled pairs each.
    Adapt(cmd::adapt::AdaptArgs),
    /// Measure single BT, MiCRo and MiCRo routed per user over repeated splits by prompt.
    Study(cmd::study::StudyArgs),
    /// Audit, mask and merge heads.
    #[command(subcommand)]
    Heads(cmd::heads::HeadsCommand),
    /// Serve personalised rewards over HTTP.
    Serve(cmd::serve::ServeArgs),
    /// Write an HTML report with figures from evaluation results.
    Report(cmd::report::ReportArgs),
    /// The whole pipeline on the built-in multi-user data, end to end.
    Demo(cmd::demo::DemoArgs),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
}

fn main() {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        // A second call fails only if a pool exists already, which cannot happen this early.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global();
    }
    let result = match cli.command {
        Command::Data(c) => cmd::data::run(c),
        Command::Synth(a) => cmd::synth::run(a),
        Command::Embed(a) => cmd::embed::run(a),
        Command::Cache(c) => cmd::embed::run_cache(c),
        Command::Train(a) => cmd::train::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Adapt(a) => cmd::adapt::run(a),
        Command::Study(a) => cmd::study::run(a),
        Command::Heads(c) => cmd::heads::run(c),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Bench(c) => cmd::bench::run(c),
    };
    if let Err(e) = result {
        // One line, the whole cause chain, and exit code 2: a user error, never a panic.
        eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
        std::process::exit(2);
    }
}
