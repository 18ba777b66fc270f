//! Hand-made models and caches whose answers are known in closed form.
#![allow(dead_code)]

use micro_cache::{CacheMeta, EmbeddingCache, Matrix};
use micro_data::{PrefPair, Split};
use micro_eval::{Adapted, NamedModel, Stage2};
use micro_model::{Activation, Gate, Method, MixtureModel, ModelConfig, Router, RouterKind};
use std::sync::Mutex;

pub fn config(
    method: Method,
    k: usize,
    dim: usize,
    prompt_dim: usize,
    router: RouterKind,
) -> ModelConfig {
    ModelConfig {
        format_version: 1,
        method,
        k,
        dim,
        prompt_dim,
        router,
        router_hidden: None,
        activation: Activation::Relu,
        backbone: Default::default(),
        recipe: Default::default(),
        router_input: Default::default(),
        train_pairs_hash: String::new(),
        users: 0,
        shared_head: None,
        training: Default::default(),
        history: Vec::new(),
    }
}

/// Heads = the identity on `dim` = k axes: head j reads coordinate j.
pub fn identity_heads(k: usize) -> Matrix {
    let mut m = Matrix::zeros(k, k);
    for j in 0..k {
        m.row_mut(j)[j] = 1.0;
    }
    m
}

pub fn static_model(k: usize, logits: Vec<f32>) -> MixtureModel {
    MixtureModel::new(
        config(Method::Static, k, k, 2, RouterKind::Static),
        identity_heads(k),
        Gate::Static(logits),
    )
    .unwrap()
}

/// A linear router on a `k`-dimensional prompt: logits = scale * prompt, so a one-hot prompt
/// routes to its head with weight e^s / (e^s + k - 1).
pub fn routed_model(k: usize, scale: f32) -> MixtureModel {
    let mut r = Router::zeros(k, k, None, Activation::Relu);
    for j in 0..k {
        r.w2[j * k + j] = scale;
    }
    MixtureModel::new(
        config(Method::Micro, k, k, k, RouterKind::Linear),
        identity_heads(k),
        Gate::Router(r),
    )
    .unwrap()
}

pub struct Row {
    pub attribute: &'static str,
    pub split: Split,
    /// h_w - h_l (h_l = 0).
    pub diff: Vec<f32>,
    pub prompt: Vec<f32>,
}

pub fn cache(rows: &[Row]) -> EmbeddingCache {
    let pairs = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut p = PrefPair::new(format!("prompt {i}"), "chosen", "rejected");
            p.attribute = Some(r.attribute.into());
            p.split = Some(r.split);
            p
        })
        .collect();
    let chosen = Matrix::from_rows(&rows.iter().map(|r| r.diff.clone()).collect::<Vec<_>>());
    let rejected = Matrix::zeros(rows.len(), chosen.cols);
    let prompt = Matrix::from_rows(&rows.iter().map(|r| r.prompt.clone()).collect::<Vec<_>>());
    EmbeddingCache::new(CacheMeta::default(), pairs, chosen, rejected, prompt)
        .expect("consistent test cache")
}

/// Two users who disagree: `a` prefers along axis 0, `b` along axis 1. Each user's context is a
/// one-hot prompt on its own axis. `n` pairs per user and split; pair i of user a has
/// h_w - h_l = (1 + i/n, -(0.5 + i/n)), user b the mirror image, so head 0 is right on all of
/// a's pairs and wrong on all of b's.
pub fn two_users(n_train: usize, n_test: usize) -> EmbeddingCache {
    two_groups(n_train, n_test, |t| vec![-(0.5 + t), 1.0 + t])
}

/// Users a and b of `two_users` and `opposed`: a as documented there, b's h_w - h_l from `b`.
fn two_groups(n_train: usize, n_test: usize, b: impl Fn(f32) -> Vec<f32>) -> EmbeddingCache {
    let mut rows = Vec::new();
    for (split, n) in [(Split::Train, n_train), (Split::Test, n_test)] {
        for i in 0..n {
            let t = i as f32 / n.max(1) as f32;
            rows.push(Row {
                attribute: "a",
                split,
                diff: vec![1.0 + t, -(0.5 + t)],
                prompt: vec![1.0, 0.0],
            });
            rows.push(Row {
                attribute: "b",
                split,
                diff: b(t),
                prompt: vec![0.0, 1.0],
            });
        }
    }
    cache(&rows)
}

pub fn sigma(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// User a prefers along axis 0, user b along axis 1 with a larger margin on the other axis, so
/// a uniform mixture is right on a and wrong on b (accuracy 0.5 on average).
pub fn opposed(n_train: usize, n_test: usize) -> EmbeddingCache {
    two_groups(n_train, n_test, |t| vec![-(1.0 + t), 0.5 + t])
}

pub fn best_head(model: &MixtureModel, c: &EmbeddingCache) -> usize {
    let diff = c.diff();
    let right = |k: usize| {
        (0..c.len())
            .filter(|&i| model.margins(diff.row(i))[k] > 0.0)
            .count()
    };
    (0..model.k()).max_by_key(|&k| right(k)).unwrap_or(0)
}

/// A toy Stage 2: routes each one-hot prompt axis to the head that is right most often on the
/// sampled pairs with that prompt. Records what it was given.
#[derive(Default)]
pub struct Toy {
    pub adapt_calls: Mutex<Vec<(u64, Vec<String>)>>,
    pub hyre_calls: Mutex<Vec<(usize, bool)>>,
}

impl Stage2 for Toy {
    fn adapt(
        &self,
        named: &NamedModel,
        cache: &EmbeddingCache,
        idx: &[usize],
        seed: u64,
    ) -> micro_route::Result<Adapted> {
        let model = &named.model;
        let train = cache.subset(idx);
        assert!(
            train.pairs.iter().all(|p| p.is_train()),
            "adaptation must only see train pairs"
        );
        self.adapt_calls.lock().unwrap().push((
            seed,
            train.pairs.iter().map(|p| p.prompt.to_text()).collect(),
        ));
        let mut r = model
            .router()
            .cloned()
            .expect("the toy Stage 2 adapts routed models only");
        for axis in 0..r.input_dim {
            let rows = train
                .indices(|_| true)
                .into_iter()
                .filter(|&i| train.prompt.row(i)[axis] > 0.5)
                .collect::<Vec<_>>();
            if rows.is_empty() {
                continue;
            }
            let k = best_head(model, &train.subset(&rows));
            for j in 0..r.k {
                r.w2[j * r.input_dim + axis] = if j == k { 6.0 } else { 0.0 };
            }
        }
        let mut out = model.clone();
        out.set_gate(Gate::Router(r))?;
        Ok(Adapted {
            model: out,
            users: Default::default(),
        })
    }

    fn hyre_weights(
        &self,
        model: &MixtureModel,
        cache: &EmbeddingCache,
        idx: &[usize],
    ) -> micro_route::Result<Vec<f32>> {
        let labelled = &cache.subset(idx);
        let all_test = labelled.pairs.iter().all(|p| !p.is_train());
        self.hyre_calls
            .lock()
            .unwrap()
            .push((labelled.len(), all_test));
        let k = best_head(model, labelled);
        Ok((0..model.k())
            .map(|j| if j == k { 1.0 } else { 0.0 })
            .collect())
    }
}
