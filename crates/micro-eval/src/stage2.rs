//! The sweep's Stage 2, done by micro-route: Algorithm 1 ([`micro_route::adapt()`]) on the
//! context-labelled pairs of a sample, each user known only by id's weights from theirs
//! ([`micro_route::users`]), and HyRe weights ([`micro_route::hyre_weights`]).

use crate::sweep::{Adapted, NamedModel, Stage2};
use micro_cache::EmbeddingCache;
use micro_model::MixtureModel;
use micro_route::users::{by_user, states_of};
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
        model: &NamedModel,
        cache: &EmbeddingCache,
        idx: &[usize],
        seed: u64,
    ) -> micro_route::Result<Adapted> {
        let cfg = AdaptConfig {
            seed,
            ..self.adapt.clone()
        };
        let view = model.view(cache)?;
        // Pairs of users known only by id make their users' weights; the others (with a
        // context, or of an attribute alone) adapt the router.
        let users = by_user(cache, idx);
        let by_id: std::collections::BTreeSet<usize> = users.values().flatten().copied().collect();
        let routed: Vec<usize> = idx.iter().copied().filter(|i| !by_id.contains(i)).collect();
        Ok(Adapted {
            model: micro_route::adapt(&view, &routed, &cfg)?.0,
            users: states_of(&view, &users),
        })
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
