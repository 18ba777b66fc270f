//! `micro bench ...`: the flags of most benchmarks are the library's own configs.

use clap::Subcommand;
use micro_embed::bench::EmbedBenchOptions;
use micro_model::bench::TrainBenchConfig;
use micro_route::bench::AdaptBenchConfig;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Stage 1 seconds per epoch on a synthetic cache.
    Train(TrainBenchConfig),
    /// Embedding throughput of a backbone.
    Embed(EmbedBenchOptions),
    /// Stage 2 adaptation time and online feedback update time.
    Adapt(AdaptBenchConfig),
    /// Load test of the reward server on loopback.
    Serve(micro_serve::bench::flags::ServeBenchFlags),
    /// Time to choose the next pair to ask among candidates, and simulated users asked by the
    /// rule or at random.
    Select(micro_route::bench::SelectBenchConfig),
}

pub fn run(c: BenchCommand) -> anyhow::Result<()> {
    match c {
        BenchCommand::Train(a) => println!("{}", micro_model::bench::bench_train(&a)?),
        // `--threads N` (global flag) sets the pool the products may use.
        BenchCommand::Adapt(a) => println!("{}", micro_route::bench::bench_adapt(&a)?),
        BenchCommand::Embed(a) => {
            micro_embed::bench::bench_embed(&a, &mut |line| println!("{line}"))?
        }
        BenchCommand::Serve(a) => micro_serve::bench::flags::run(&a, &mut |l| println!("{l}"))?,
        BenchCommand::Select(a) => super::adapt::bench_select(a, &mut |r| println!("{r}"))?,
    }
    Ok(())
}
