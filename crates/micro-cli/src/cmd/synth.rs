//! `micro synth`: a cache drawn from a known mixture of BT models, with `truth.json`.

use anyhow::{anyhow, Context};
use micro_model::synth::{self, SynthConfig};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SynthArgs {
    /// Output cache folder.
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(long, default_value_t = 20_000)]
    pub pairs: usize,
    #[arg(long, default_value_t = 32)]
    pub dim: usize,
    /// Number of latent user groups.
    #[arg(long, default_value_t = 4)]
    pub groups: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of pairs in the test split.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Norm of each true head (larger: cleaner labels).
    #[arg(long, default_value_t = 2.5)]
    pub head_scale: f64,
    /// How strongly group weights depend on the prompt.
    #[arg(long, default_value_t = 0.5)]
    pub gate_scale: f64,
    /// How far a context moves the router input toward its group.
    #[arg(long, default_value_t = 3.0)]
    pub context_shift: f64,
    /// Fraction of pairs that carry their group's context.
    #[arg(long, default_value_t = 1.0)]
    pub context_fraction: f64,
    /// Fraction of training pairs that are binary-only Stage 1 pairs (no context, no group name),
    /// as in the paper's data; the other training pairs and all test pairs carry their group's
    /// context (Stage 2's pool and the evaluation set).
    #[arg(long, default_value_t = 0.0)]
    pub unlabelled_fraction: f64,
    /// Norm of the first response's style offset (drives the Theorem 3.2 variance term).
    #[arg(long, default_value_t = 1.0)]
    pub style_scale: f64,
    /// Draw heads independently instead of in opposite pairs.
    #[arg(long)]
    pub no_reversed_pairs: bool,
    /// Storage dtype: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    pub dtype: micro_cache::Dtype,
}

pub fn run(a: SynthArgs) -> anyhow::Result<()> {
    let dtype = a.dtype;
    let cfg = SynthConfig {
        pairs: a.pairs,
        dim: a.dim,
        groups: a.groups,
        seed: a.seed,
        test_fraction: a.test_fraction,
        head_scale: a.head_scale,
        gate_scale: a.gate_scale,
        context_shift: a.context_shift,
        context_fraction: a.context_fraction,
        unlabelled_fraction: a.unlabelled_fraction,
        style_scale: a.style_scale,
        reversed_pairs: !a.no_reversed_pairs,
    };
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
