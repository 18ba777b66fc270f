//! The sweep's Stage 2, done by micro-route: Algorithm 1 ([`micro_route::adapt()`]) and HyRe
//! weights ([`micro_route::hyre_weights`]).

use crate::sweep::Stage2;
use micro_cache::EmbeddingCache;
use micro_model::MixtureModel;
use micro_route::AdaptConfig;

/// micro-route's Stage 2 with fixed settings; each run's seed replaces `adapt.seed`.
#[derive(Clone, Debug)]
pub struct RouteStage2 {
    pub adapt: AdaptConfig,
    /// HyRe's posterior temperature (1 = the exact Bayesian posterior).
    pub hyre_eta: f64,
}

impl Default for RouteStage2 {
    fn default() -> Self {
        // The sweep runs its jobs in parallel, so each adaptation keeps to one thread.
        RouteStage2 {
            adapt: AdaptConfig {
                threads: 1,
                ..Default::default()
            },
            hyre_eta: 1.0,
        }
    }
}

impl Stage2 for RouteStage2 {
    fn adapt(
        &self,
        model: &MixtureModel,
        cache: &EmbeddingCache,
        idx: &[usize],
        seed: u64,
    ) -> micro_route::Result<MixtureModel> {
        let cfg = AdaptConfig {
            seed,
            ..self.adapt.clone()
        };
        micro_route::adapt(model, cache, idx, &cfg).map(|(m, _)| m)
    }

    fn hyre_weights(
        &self,
        model: &MixtureModel,
        cache: &EmbeddingCache,
        idx: &[usize],
    ) -> micro_route::Result<Vec<f32>> {
        Ok(micro_route::hyre_weights(model, cache, idx, self.hyre_eta))
    }
}
