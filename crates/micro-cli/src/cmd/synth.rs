//! `micro synth`: a cache drawn from a known mixture of BT models, with `truth.json`.

use anyhow::Context;
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
    let (cache, truth) = synth::generate(&cfg)?;
    synth::write(&a.output, &cache, &truth, dtype)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Synth {
        #[command(flatten)]
        args: SynthArgs,
    }

    /// `micro synth` without flags draws [`SynthConfig::default`]'s data.
    #[test]
    fn no_flags_give_the_library_defaults() {
        let a = Synth::try_parse_from(["synth", "-o", "out"]).unwrap().args;
        let json = |c: &SynthConfig| serde_json::to_value(c).unwrap();
        assert_eq!(json(&a.config), json(&SynthConfig::default()));
        assert_eq!(a.dtype, micro_cache::Dtype::F32);
    }
}
