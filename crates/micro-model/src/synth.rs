//! Synthetic preference data with known truth: the test bed for Stage 1 and Stage 2.
//!
//! The generative model (all Gaussian, seeded):
//! - K true heads `u_k` (norm `head_scale`). With `reversed_pairs`, heads come in opposite pairs
//!   (`u_2 = -u_1`, ...): groups that disagree outright, which no single BT model can serve.
//! - A prompt `x ~ N(0, I_d)`; its group `z ~ softmax(G x)`, so group weights depend on the prompt.
//! - Two responses: `h_b ~ N(0, I)`, `h_a ~ N(style, I)`. The fixed `style` offset (leaning toward
//!   the first head of each opposite pair, like a length bias some users like and others dislike)
//!   makes the groups' mean preference for the first response differ, which is what Theorem 3.2
//!   needs for a non-zero single-model penalty.
//! - The label: `a` is chosen with probability `sigma(u_z . (h_a - h_b))`.
//! - The context of group z is a sentence and a vector `c_z`. Every pair's `prompt_embeddings`
//!   is `x`, the prompt alone; a pair that carries its context has `x + context_shift * c_z` as
//!   its context-augmented router input (`context_prompt_embeddings`).
//! - With `unlabelled_fraction` > 0 the cache mixes the paper's two kinds of data: that share of
//!   the training pairs are binary-only Stage 1 pairs (no context, no attribute: the group is
//!   latent), the rest of the training pairs and every test pair carry their group's context and
//!   name (the pool Stage 2 draws its budget from, and the evaluation set).
//!
//! [`Truth`] records the parameters, the Bayes-optimal accuracy per group (the expected accuracy of
//! `sign(u_z . delta)` when the group is known) and the Theorem 3.2 lower bound on the
//! cross-entropy of any single BT model on the test split.
//!
//! ```
//! use micro_model::synth::{generate, SynthConfig};
//! let (cache, truth) = generate(&SynthConfig { pairs: 400, dim: 8, groups: 4, ..Default::default() }).unwrap();
//! assert_eq!(cache.len(), 400);
//! assert_eq!(truth.heads.len(), 4);
//! assert!(truth.bayes_accuracy.values().all(|a| *a > 0.5 && *a < 1.0));
//! assert!(truth.theorem_3_2.bound >= truth.theorem_3_2.entropy);
//! ```

use crate::model::sigmoid;
use micro_cache::{BackboneInfo, CacheMeta, EmbeddingCache, Matrix};
use micro_data::{PrefPair, Split};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Knobs of the generator; the defaults give four groups in two opposite pairs.
/// With the `clap` feature these are the flags of `micro synth`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct SynthConfig {
    #[cfg_attr(feature = "clap", arg(long, default_value_t = SynthConfig::default().pairs))]
    pub pairs: usize,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = SynthConfig::default().dim))]
    pub dim: usize,
    /// Number of latent user groups.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = SynthConfig::default().groups))]
    pub groups: usize,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = SynthConfig::default().seed))]
    pub seed: u64,
    /// Fraction of pairs in the test split.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = SynthConfig::default().test_fraction))]
    pub test_fraction: f64,
    /// Norm of each true head (larger: cleaner labels).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = SynthConfig::default().head_scale))]
    pub head_scale: f64,
    /// How strongly group weights depend on the prompt.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = SynthConfig::default().gate_scale))]
    pub gate_scale: f64,
    /// How far a context moves the router input toward its group.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = SynthConfig::default().context_shift))]
    pub context_shift: f64,
    /// Fraction of pairs that carry their group's context.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = SynthConfig::default().context_fraction))]
    pub context_fraction: f64,
    /// Fraction of training pairs that are binary-only Stage 1 pairs (no context, no group name),
    /// as in the paper's data; the other training pairs and all test pairs carry their group's
    /// context (Stage 2's pool and the evaluation set).
    #[serde(default)]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = SynthConfig::default().unlabelled_fraction))]
    pub unlabelled_fraction: f64,
    /// Norm of the first response's style offset (drives the Theorem 3.2 variance term).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = SynthConfig::default().style_scale))]
    pub style_scale: f64,
    /// Heads in opposite pairs (u_2 = -u_1, ...); the flag `--no-reversed-pairs` clears it.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "no-reversed-pairs",
            action = clap::ArgAction::SetFalse,
            help = "Draw heads independently instead of in opposite pairs"
        )
    )]
    pub reversed_pairs: bool,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            pairs: 20_000,
            dim: 32,
            groups: 4,
            seed: 0,
            test_fraction: 0.2,
            head_scale: 2.5,
            gate_scale: 0.5,
            context_shift: 3.0,
            context_fraction: 1.0,
            unlabelled_fraction: 0.0,
            style_scale: 1.0,
            reversed_pairs: true,
        }
    }
}

/// The Theorem 3.2 lower bound and its parts, on the test split.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TheoremBound {
    /// min over test prompts and groups of P(z = k | x).
    pub rho: f64,
    /// E_x Var_z[ E_pi sigma(s*_k) ] (uniform variance over groups).
    pub variance: f64,
    /// H: expected entropy of the true label, the floor of any model's cross-entropy.
    pub entropy: f64,
    /// 2 rho K variance + H: no single BT model's test cross-entropy (nats) can be lower.
    pub bound: f64,
}

/// What `truth.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Truth {
    pub config: SynthConfig,
    /// u_k, [K][d].
    pub heads: Vec<Vec<f32>>,
    /// G, [K][d].
    pub gate: Vec<Vec<f32>>,
    /// c_k, [K][d].
    pub contexts: Vec<Vec<f32>>,
    pub style: Vec<f32>,
    /// Group name -> expected accuracy of the true head of that group on its test pairs.
    pub bayes_accuracy: BTreeMap<String, f64>,
    /// The unweighted mean of `bayes_accuracy`.
    pub bayes_average: f64,
    /// Group name -> expected accuracy of the Bayes-optimal prediction that sees only the router
    /// input (the context-augmented prompt), not the group: sum_z P(z | input) sigma(u_z . delta).
    /// The ceiling of any router over the true heads; below `bayes_accuracy` by what the input
    /// leaves ambiguous about the group.
    #[serde(default)]
    pub routed_bayes_accuracy: BTreeMap<String, f64>,
    #[serde(default)]
    pub routed_bayes_average: f64,
    pub theorem_3_2: TheoremBound,
}

/// The name of group `k` (0-based), used as `attribute` and `user_id`.
pub fn group_name(k: usize) -> String {
    format!("group-{}", k + 1)
}

/// The context sentence of group `k`.
pub fn context_sentence(k: usize) -> String {
    format!(
        "I am user group {}: judge responses by preference direction {}.",
        k + 1,
        k + 1
    )
}

struct Params {
    heads: Vec<Vec<f32>>,
    gate: Vec<Vec<f32>>,
    contexts: Vec<Vec<f32>>,
    style: Vec<f32>,
}

/// One drawn pair before it is written.
struct Draw {
    x: Vec<f32>,
    h_a: Vec<f32>,
    h_b: Vec<f32>,
    group: usize,
    a_chosen: bool,
    with_context: bool,
    /// Whether the pair names its group (attribute, user id).
    labelled: bool,
    test: bool,
}

/// Draws a cache and its truth.
pub fn generate(cfg: &SynthConfig) -> Result<(EmbeddingCache, Truth), SynthError> {
    validate(cfg)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let params = draw_params(cfg, &mut rng);
    let draws: Vec<Draw> = (0..cfg.pairs)
        .map(|_| draw_pair(cfg, &params, &mut rng))
        .collect();
    let truth = truth(cfg, &params, &draws);
    let cache = assemble(cfg, &params, draws)?;
    Ok((cache, truth))
}

/// Why the generator cannot draw a cache, or its files cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("{groups} groups: draw 1 or more")]
    Groups { groups: usize },
    #[error("dimension {dim}: use 1 or more")]
    Dim { dim: usize },
    #[error("{pairs} pairs: draw 2 or more")]
    Pairs { pairs: usize },
    #[error("test fraction {0} must be in [0, 1)")]
    TestFraction(f64),
    #[error("context fraction {0} must be in [0, 1]")]
    ContextFraction(f64),
    #[error(
        "unlabelled fraction {0} must be in [0, 1): Stage 2 needs some labelled training pairs"
    )]
    UnlabelledFraction(f64),
    #[error(transparent)]
    Cache(#[from] micro_cache::CacheError),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

fn validate(cfg: &SynthConfig) -> Result<(), SynthError> {
    if cfg.groups == 0 {
        return Err(SynthError::Groups { groups: cfg.groups });
    }
    if cfg.dim == 0 {
        return Err(SynthError::Dim { dim: cfg.dim });
    }
    if cfg.pairs < 2 {
        return Err(SynthError::Pairs { pairs: cfg.pairs });
    }
    if !(0.0..1.0).contains(&cfg.test_fraction) {
        return Err(SynthError::TestFraction(cfg.test_fraction));
    }
    if !(0.0..=1.0).contains(&cfg.context_fraction) {
        return Err(SynthError::ContextFraction(cfg.context_fraction));
    }
    if !(0.0..1.0).contains(&cfg.unlabelled_fraction) {
        return Err(SynthError::UnlabelledFraction(cfg.unlabelled_fraction));
    }
    Ok(())
}

fn gaussian(rng: &mut ChaCha8Rng, d: usize) -> Vec<f32> {
    (0..d)
        .map(|_| rng.sample::<f64, _>(StandardNormal) as f32)
        .collect()
}

fn with_norm(mut v: Vec<f32>, norm: f64) -> Vec<f32> {
    let n = v
        .iter()
        .map(|x| (*x as f64).powi(2))
        .sum::<f64>()
        .sqrt()
        .max(1e-12);
    for x in &mut v {
        *x = (*x as f64 * norm / n) as f32;
    }
    v
}

fn draw_params(cfg: &SynthConfig, rng: &mut ChaCha8Rng) -> Params {
    let d = cfg.dim;
    let mut heads: Vec<Vec<f32>> = Vec::with_capacity(cfg.groups);
    for k in 0..cfg.groups {
        if cfg.reversed_pairs && k % 2 == 1 {
            let opposite = heads[k - 1].iter().map(|v| -v).collect();
            heads.push(opposite);
        } else {
            heads.push(with_norm(gaussian(rng, d), cfg.head_scale));
        }
    }
    let gate = (0..cfg.groups)
        .map(|_| with_norm(gaussian(rng, d), cfg.gate_scale))
        .collect();
    let contexts = (0..cfg.groups)
        .map(|_| with_norm(gaussian(rng, d), 1.0))
        .collect();
    // The style leans toward the first head of each opposite pair, so those groups like the
    // first response on average and their partners dislike it: E_pi sigma(s*_k) differs by group.
    let mut lean = vec![0.0f32; d];
    for u in heads.iter().step_by(2) {
        for (l, v) in lean.iter_mut().zip(u) {
            *l += v;
        }
    }
    let style = with_norm(lean, cfg.style_scale);
    Params {
        heads,
        gate,
        contexts,
        style,
    }
}

/// P(z | x) = softmax(G x).
fn group_weights(params: &Params, x: &[f32]) -> Vec<f64> {
    let logits: Vec<f64> = params.gate.iter().map(|g| dot(g, x)).collect();
    let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|v| v / z).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

fn draw_pair(cfg: &SynthConfig, params: &Params, rng: &mut ChaCha8Rng) -> Draw {
    let x = gaussian(rng, cfg.dim);
    let weights = group_weights(params, &x);
    let u: f64 = rng.random();
    let mut group = weights.len() - 1;
    let mut acc = 0.0;
    for (k, w) in weights.iter().enumerate() {
        acc += w;
        if u < acc {
            group = k;
            break;
        }
    }
    let h_b = gaussian(rng, cfg.dim);
    let h_a: Vec<f32> = gaussian(rng, cfg.dim)
        .iter()
        .zip(&params.style)
        .map(|(n, s)| n + s)
        .collect();
    let delta: Vec<f32> = h_a.iter().zip(&h_b).map(|(a, b)| a - b).collect();
    let p = sigmoid(dot(&params.heads[group], &delta) as f32) as f64;
    let a_chosen = rng.random::<f64>() < p;
    let with_context = rng.random::<f64>() < cfg.context_fraction;
    let test = rng.random::<f64>() < cfg.test_fraction;
    // Drawn only when asked for, so that older configurations give the same data as before.
    let labelled = test || cfg.unlabelled_fraction == 0.0 || {
        rng.random::<f64>() >= cfg.unlabelled_fraction
    };
    Draw {
        x,
        h_a,
        h_b,
        group,
        a_chosen,
        with_context: with_context && labelled,
        labelled,
        test,
    }
}

fn assemble(
    cfg: &SynthConfig,
    params: &Params,
    draws: Vec<Draw>,
) -> Result<EmbeddingCache, SynthError> {
    let n = draws.len();
    let d = cfg.dim;
    let (mut chosen, mut rejected, mut prompt, mut context_prompt) = (
        Vec::with_capacity(n * d),
        Vec::with_capacity(n * d),
        Vec::with_capacity(n * d),
        Vec::with_capacity(n * d),
    );
    let any_context = draws.iter().any(|dr| dr.with_context);
    let mut pairs = Vec::with_capacity(n);
    for (i, dr) in draws.into_iter().enumerate() {
        let (c, r) = if dr.a_chosen {
            (&dr.h_a, &dr.h_b)
        } else {
            (&dr.h_b, &dr.h_a)
        };
        chosen.extend_from_slice(c);
        rejected.extend_from_slice(r);
        let shift = if dr.with_context {
            cfg.context_shift as f32
        } else {
            0.0
        };
        prompt.extend_from_slice(&dr.x);
        context_prompt.extend(
            dr.x.iter()
                .zip(&params.contexts[dr.group])
                .map(|(x, c)| x + shift * c),
        );
        let (chosen_text, rejected_text) = if dr.a_chosen {
            ("response A", "response B")
        } else {
            ("response B", "response A")
        };
        let mut pair = PrefPair::new(
            format!("synthetic prompt {i}"),
            format!("{chosen_text} to prompt {i}"),
            format!("{rejected_text} to prompt {i}"),
        );
        pair.id = Some(format!("synth-{i}"));
        pair.attribute = dr.labelled.then(|| group_name(dr.group));
        pair.user_id = dr.labelled.then(|| group_name(dr.group));
        pair.context = dr.with_context.then(|| context_sentence(dr.group));
        pair.split = Some(if dr.test { Split::Test } else { Split::Train });
        pair.source = Some("micro synth".into());
        pairs.push(pair);
    }
    let meta = CacheMeta {
        backbone: BackboneInfo {
            name: "synthetic".into(),
            kind: "synthetic".into(),
            ..Default::default()
        },
        pooling: Some("none".into()),
        context_insertion: Some("vector-shift".into()),
        ..Default::default()
    };
    let cache = EmbeddingCache::new(
        meta,
        pairs,
        Matrix::new(n, d, chosen),
        Matrix::new(n, d, rejected),
        Matrix::new(n, d, prompt),
    )?;
    if !any_context {
        return Ok(cache);
    }
    Ok(cache.with_context_prompt(Matrix::new(n, d, context_prompt))?)
}

fn entropy(p: f64) -> f64 {
    let h = |q: f64| if q > 0.0 { -q * q.ln() } else { 0.0 };
    h(p) + h(1.0 - p)
}

fn mean<'a>(v: impl ExactSizeIterator<Item = &'a f64>) -> f64 {
    let n = v.len().max(1) as f64;
    v.sum::<f64>() / n
}

/// P(z | r) for the router input r of draw `d`. With a context, r = x + shift c_z, so
/// P(z, r) = N(r - shift c_z; 0, I) softmax(G (r - shift c_z))_z; without one, r = x and
/// P(z | r) = softmax(G x).
fn group_posterior(cfg: &SynthConfig, params: &Params, d: &Draw) -> Vec<f64> {
    if !d.with_context {
        return group_weights(params, &d.x);
    }
    let shift = cfg.context_shift as f32;
    let r: Vec<f32> =
        d.x.iter()
            .zip(&params.contexts[d.group])
            .map(|(x, c)| x + shift * c)
            .collect();
    let log_joint: Vec<f64> = (0..cfg.groups)
        .map(|z| {
            let x: Vec<f32> = r
                .iter()
                .zip(&params.contexts[z])
                .map(|(r, c)| r - shift * c)
                .collect();
            -0.5 * dot(&x, &x) + group_weights(params, &x)[z].ln()
        })
        .collect();
    let m = log_joint.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = log_joint.iter().map(|l| (l - m).exp()).collect();
    let total: f64 = e.iter().sum();
    e.into_iter().map(|v| v / total).collect()
}

fn truth(cfg: &SynthConfig, params: &Params, draws: &[Draw]) -> Truth {
    let k = cfg.groups;
    let test: Vec<&Draw> = {
        let t: Vec<&Draw> = draws.iter().filter(|d| d.test).collect();
        if t.is_empty() {
            draws.iter().collect()
        } else {
            t
        }
    };
    // Per test pair: each head's true preference for the first response, sigma(u_k . delta).
    let probs: Vec<Vec<f64>> = test
        .iter()
        .map(|d| {
            let delta: Vec<f32> = d.h_a.iter().zip(&d.h_b).map(|(a, b)| a - b).collect();
            params
                .heads
                .iter()
                .map(|u| sigmoid(dot(u, &delta) as f32) as f64)
                .collect()
        })
        .collect();
    let mut correct = vec![0.0; k];
    let mut count = vec![0usize; k];
    for (d, p) in test.iter().zip(&probs) {
        correct[d.group] += p[d.group].max(1.0 - p[d.group]);
        count[d.group] += 1;
    }
    let bayes_accuracy: BTreeMap<String, f64> = (0..k)
        .filter(|&g| count[g] > 0)
        .map(|g| (group_name(g), correct[g] / count[g] as f64))
        .collect();
    let bayes_average = mean(bayes_accuracy.values());
    let mut routed = vec![0.0; k];
    for (d, p) in test.iter().zip(&probs) {
        let post = group_posterior(cfg, params, d);
        let first: f64 = post.iter().zip(p).map(|(w, pk)| w * pk).sum();
        let truth = p[d.group];
        routed[d.group] += if first > 0.5 { truth } else { 1.0 - truth };
    }
    let routed_bayes_accuracy: BTreeMap<String, f64> = (0..k)
        .filter(|&g| count[g] > 0)
        .map(|g| (group_name(g), routed[g] / count[g] as f64))
        .collect();
    let routed_bayes_average = mean(routed_bayes_accuracy.values());

    // Theorem 3.2 on the empirical test distribution. The responses do not depend on x, so
    // E_pi sigma(s*_k) is the same for every prompt: estimate it once over the test pairs.
    let n = probs.len() as f64;
    let mean_pref: Vec<f64> = (0..k)
        .map(|g| probs.iter().map(|p| p[g]).sum::<f64>() / n)
        .collect();
    let mu = mean_pref.iter().sum::<f64>() / k as f64;
    let variance = mean_pref.iter().map(|m| (m - mu).powi(2)).sum::<f64>() / k as f64;
    let gammas: Vec<Vec<f64>> = test.iter().map(|d| group_weights(params, &d.x)).collect();
    let rho = gammas
        .iter()
        .flatten()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let entropy_term = gammas
        .iter()
        .zip(&probs)
        .map(|(g, p)| {
            g.iter()
                .zip(p)
                .map(|(gk, pk)| gk * entropy(*pk))
                .sum::<f64>()
        })
        .sum::<f64>()
        / n;
    let bound = 2.0 * rho * k as f64 * variance + entropy_term;
    Truth {
        config: cfg.clone(),
        heads: params.heads.clone(),
        gate: params.gate.clone(),
        contexts: params.contexts.clone(),
        style: params.style.clone(),
        bayes_accuracy,
        bayes_average,
        routed_bayes_accuracy,
        routed_bayes_average,
        theorem_3_2: TheoremBound {
            rho,
            variance,
            entropy: entropy_term,
            bound,
        },
    }
}

/// Writes the cache folder and `truth.json` beside its files.
pub fn write(
    dir: &std::path::Path,
    cache: &EmbeddingCache,
    truth: &Truth,
    dtype: micro_cache::Dtype,
) -> Result<(), SynthError> {
    cache.save(dir, dtype)?;
    let path = dir.join("truth.json");
    let json = serde_json::to_string_pretty(truth).map_err(|e| SynthError::Io {
        path: path.clone(),
        source: e.into(),
    })?;
    std::fs::write(&path, json).map_err(|source| SynthError::Io { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_out_of_range_are_typed_errors() {
        let bad = |cfg: SynthConfig| generate(&cfg).expect_err("must be refused");
        let base = SynthConfig {
            pairs: 10,
            dim: 2,
            ..Default::default()
        };
        let e = bad(SynthConfig {
            groups: 0,
            ..base.clone()
        });
        assert!(matches!(e, SynthError::Groups { groups: 0 }), "{e}");
        let e = bad(SynthConfig {
            pairs: 1,
            ..base.clone()
        });
        assert!(matches!(e, SynthError::Pairs { pairs: 1 }), "{e}");
        assert_eq!(e.to_string(), "1 pairs: draw 2 or more");
        let e = bad(SynthConfig {
            unlabelled_fraction: 1.0,
            ..base
        });
        assert!(
            matches!(e, SynthError::UnlabelledFraction(f) if f == 1.0),
            "{e}"
        );
    }
}
