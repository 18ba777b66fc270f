//! What Stage 2 judges the experts by: each expert's margin on the pairs of a cache
//! ([`crate::experts::Experts::margins`]), cross-fitted where the model trained on the pair
//! (micro-model's [`Evidence`], kept beside the model by `micro train`) and the model's own
//! prediction elsewhere: on pairs it never trained on (another cache, the test split, the
//! server's feedback) its own prediction is already clean evidence. Judging the experts on
//! pairs they trained on favours whatever overfits most (micro-model's `crossfit`).
//!
//! ```
//! use micro_route::evidence::ExpertView;
//! use micro_route::fixture::{random_cache, random_model};
//! let model = random_model(4, 3, None, 1);
//! let cache = random_cache(4, 2, 5, 0);
//! let view = ExpertView::new(&model, &cache, None).unwrap();
//! assert_eq!(view.margins(0).len(), 4); // three heads and the gate
//! // Without kept evidence, the training pairs are judged in sample, and the view says so.
//! assert_eq!(view.in_sample(&[0, 1, 2]), 3);
//! ```

use crate::error::Result;
use crate::experts::Experts;
use crate::likelihood::check_compatible;
use micro_cache::EmbeddingCache;
use micro_model::{Evidence, MixtureModel};

/// A model's experts on the pairs of a cache.
#[derive(Clone, Copy)]
pub struct ExpertView<'a> {
    pub model: &'a MixtureModel,
    pub cache: &'a EmbeddingCache,
    cross: Option<&'a Evidence>,
    experts: Experts,
}

impl<'a> ExpertView<'a> {
    /// The view of `model` on `cache`, with the cross-fitted evidence kept beside the model if
    /// any (evidence for another number of heads, e.g. of a model since edited, is not used).
    pub fn new(
        model: &'a MixtureModel,
        cache: &'a EmbeddingCache,
        cross: Option<&'a Evidence>,
    ) -> Result<Self> {
        check_compatible(model, cache)?;
        Ok(ExpertView {
            model,
            cache,
            cross: cross.filter(|e| e.k() == model.k()),
            experts: Experts::of(model),
        })
    }

    pub fn experts(&self) -> Experts {
        self.experts
    }

    /// log f_k of the model's gate on pair `i`: its context-augmented prompt and, where the
    /// per-user table knows the pair's user, that user's row.
    pub fn log_gate(&self, i: usize) -> Vec<f32> {
        let user = self.cache.pairs[i].user_id.as_deref();
        self.model.log_weights_for(self.cache.routed_input(i), user)
    }

    /// The heads' margins delta_k on pair `i`.
    pub fn head_margins(&self, i: usize) -> Vec<f32> {
        let diff: Vec<f32> = (self.cache.chosen.row(i).iter())
            .zip(self.cache.rejected.row(i))
            .map(|(c, r)| c - r)
            .collect();
        self.model.margins(&diff)
    }

    /// Every expert's margin on pair `i` by the model itself (what it predicts).
    pub fn margins(&self, i: usize) -> Vec<f32> {
        self.experts
            .margins(&self.head_margins(i), &self.log_gate(i))
    }

    /// Every expert's margin on pair `i` as evidence: cross-fitted where there is some for it.
    pub fn evidence(&self, i: usize) -> Vec<f32> {
        match self.cross_row(i) {
            Some((e, j)) => self.experts.margins(e.margins.row(j), e.log_gate.row(j)),
            None => self.margins(i),
        }
    }

    /// Of the rows `rows`, how many training pairs are judged in sample (no cross-fitted
    /// evidence kept for them), as if the model had trained on every training pair of the
    /// cache; zero when the kept evidence is for another cache, whose pairs the model never saw.
    pub fn in_sample(&self, rows: &[usize]) -> usize {
        if self
            .cross
            .is_some_and(|e| e.meta.pairs_hash != self.cache.meta.pairs_hash)
        {
            return 0;
        }
        (rows.iter())
            .filter(|&&i| self.cache.pairs[i].is_train() && self.cross_row(i).is_none())
            .count()
    }

    fn cross_row(&self, i: usize) -> Option<(&'a Evidence, usize)> {
        let e = self.cross?;
        e.row_of(&self.cache.meta.pairs_hash, i).map(|j| (e, j))
    }
}
