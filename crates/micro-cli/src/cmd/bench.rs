//! `micro bench ...`: each benchmark's flags and body live with its subcommand's module.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Stage 1 seconds per epoch on a synthetic cache.
    Train(super::train::BenchTrainArgs),
    /// Embedding throughput of a backbone.
    Embed(super::embed::BenchEmbedArgs),
    /// Stage 2 adaptation time and online feedback update time.
    Adapt(super::adapt::BenchAdaptArgs),
    /// Load test of the reward server on loopback.
    Serve(super::serve::BenchServeArgs),
    /// Time to choose the next pair to ask among candidates, and simulated users asked by the
    /// rule or at random.
    Select(super::adapt::BenchSelectArgs),
}

pub fn run(c: BenchCommand) -> anyhow::Result<()> {
    match c {
        BenchCommand::Train(a) => super::train::bench(a),
        BenchCommand::Embed(a) => super::embed::bench(a),
        BenchCommand::Adapt(a) => super::adapt::bench(a),
        BenchCommand::Serve(a) => super::serve::bench(a),
        BenchCommand::Select(a) => super::adapt::bench_select(a),
    }
}
