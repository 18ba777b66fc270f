//! Random models and caches of a given shape, for `micro bench adapt` and tests: timing needs
//! the paper's sizes (d = 768, K = 10), not meaningful data.

use micro_cache::{BackboneInfo, CacheMeta, EmbeddingCache, Matrix};
use micro_data::PrefPair;
use micro_model::{Activation, Gate, MixtureModel, ModelConfig, Router};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A MiCRo model with random heads and an MLP router (`hidden` units; `None`: linear).
pub fn random_model(dim: usize, k: usize, hidden: Option<usize>, seed: u64) -> MixtureModel {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let router = Router::init_random(dim, k, hidden, Activation::Relu, &mut rng);
    let scale = 1.0 / (dim as f32).sqrt();
    let heads = Matrix::new(
        k,
        dim,
        (0..k * dim)
            .map(|_| rng.random_range(-1.0..1.0f32) * scale)
            .collect(),
    );
    MixtureModel::new(model_config(dim, k, hidden), heads, Gate::Router(router))
        .expect("a random model's parts agree by construction")
}

/// The config.json of a MiCRo model of this shape (built from JSON, so that fields added to
/// `ModelConfig` with serde defaults need no change here).
pub fn model_config(dim: usize, k: usize, hidden: Option<usize>) -> ModelConfig {
    let json = serde_json::json!({
        "format_version": 1, "method": "micro", "k": k, "dim": dim, "prompt_dim": dim,
        "router": if hidden.is_some() { "mlp" } else { "linear" }, "router_hidden": hidden,
        "activation": "relu", "backbone": {"name": "random", "kind": "synthetic"},
    });
    serde_json::from_value(json).expect("a complete ModelConfig")
}

/// `per_attribute` training pairs with a context for each of `attributes` attributes, with
/// Gaussian-ish random embeddings of width `dim`.
pub fn random_cache(
    dim: usize,
    attributes: usize,
    per_attribute: usize,
    seed: u64,
) -> EmbeddingCache {
    let n = attributes * per_attribute;
    let mut pairs = Vec::with_capacity(n);
    for a in 0..attributes {
        for i in 0..per_attribute {
            let mut p = PrefPair::new(format!("prompt {a}/{i}"), "chosen", "rejected");
            p.attribute = Some(format!("attr{a}"));
            p.context = Some(format!("criterion {a}"));
            pairs.push(p);
        }
    }
    random_arrays(pairs, dim, seed)
}

/// Training pairs of users known only by id (a `user_id`, no attribute or context): `n` for
/// each (user, n) of `users`, with random embeddings of width `dim`.
pub fn users_cache(dim: usize, users: &[(&str, usize)], seed: u64) -> EmbeddingCache {
    let mut pairs = Vec::new();
    for (u, n) in users {
        for i in 0..*n {
            let mut p = PrefPair::new(format!("{u} prompt {i}"), "chosen", "rejected");
            p.user_id = Some(u.to_string());
            pairs.push(p);
        }
    }
    random_arrays(pairs, dim, seed)
}

/// A cache of `pairs` with uniform random embeddings of width `dim`.
fn random_arrays(pairs: Vec<PrefPair>, dim: usize, seed: u64) -> EmbeddingCache {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = pairs.len();
    let mut m = || {
        Matrix::new(
            n,
            dim,
            (0..n * dim)
                .map(|_| rng.random_range(-1.0..1.0f32))
                .collect(),
        )
    };
    let (chosen, rejected, prompt) = (m(), m(), m());
    let meta = CacheMeta {
        backbone: BackboneInfo {
            name: "random".into(),
            kind: "synthetic".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    // The three arrays have one row per pair by construction.
    EmbeddingCache::new(meta, pairs, chosen, rejected, prompt)
        .expect("fixture arrays have one row per pair")
}
