//! The body of `micro bench serve`, not part of the server's API: the [`load`] benchmarks of a
//! running server, the blocking HTTP [`client`] that drives them, and the synthetic model and
//! random embeddings they score. Behind the `bench` feature, which the binary ships (as
//! micro-model's and micro-route's `bench`); this crate's tests and micro-cli's reuse the client
//! and the synthetic model.

pub mod client;
pub mod flags;
pub mod load;
pub mod report;

use micro_model::MixtureModel;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;

/// A random MiCRo model (MLP router with 128 hidden units, as the paper) for tests and benches.
pub fn synthetic_model(dim: usize, k: usize, seed: u64) -> MixtureModel {
    micro_route::fixture::random_model(dim, k, Some(128), seed)
}

/// A random vector of width `d`, values in [-1, 1).
pub fn random_vec(rng: &mut impl Rng, d: usize) -> Vec<f32> {
    (0..d).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// A reproducible random vector from a seed (for callers without a `rand` dependency).
pub fn seeded_vec(seed: u64, d: usize) -> Vec<f32> {
    random_vec(&mut StdRng::seed_from_u64(seed), d)
}

/// Why a benchmark of `micro bench serve` did not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
    #[error("cannot create {0}: {1}")]
    Folder(PathBuf, #[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::OpenError),
    #[error(transparent)]
    Key(#[from] crate::KeyError),
    #[error(transparent)]
    Scorer(#[from] crate::ScorerError),
    #[error("no --backbone given and no home folder to find all-MiniLM-L6-v2 in")]
    NoBackbone,
    #[error("cannot load the backbone {dir}{hint}: {source}")]
    Backbone {
        dir: PathBuf,
        hint: &'static str,
        #[source]
        source: Box<micro_embed::EmbedError>,
    },
}
