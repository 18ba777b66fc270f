//! `micro synth`: a cache drawn from a known mixture of BT models, with `truth.json`.

use anyhow::{anyhow, Context};
use micro_model::synth::{self, SynthConfig};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SynthArgs {
    /// Output cache folder.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub config: SynthConfig,
    /// Storage dtype: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    pub dtype: micro_cache::Dtype,
}

pub fn run(a: SynthArgs) -> anyhow::Result<()> {
    let (dtype, cfg) = (a.dtype, a.config);
    let (cache, truth) = synth::generate(&cfg).map_err(|e| anyhow!(e))?;
    synth::write(&a.output, &cache, &truth, dtype)
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("writing {}", a.output.display()))?;
    let t = &truth.theorem_3_2;
    println!(
        "wrote {} pairs (d = {}, {} groups) to {}",
        cache.len(),
        cfg.dim,
        cfg.groups,
        a.output.display()
    );
    for (g, acc) in &truth.bayes_accuracy {
        let routed = truth
            .routed_bayes_accuracy
            .get(g)
            .copied()
            .unwrap_or(f64::NAN);
        println!("  {g}: Bayes-optimal accuracy {acc:.4} knowing the group, {routed:.4} from the router input alone");
    }
    println!(
        "  Theorem 3.2: any single BT model has test cross-entropy >= {:.4} nats (rho {:.4}, variance {:.5}, entropy {:.4})",
        t.bound, t.rho, t.variance, t.entropy
    );
    Ok(())
}
