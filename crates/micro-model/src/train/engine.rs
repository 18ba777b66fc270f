//! The data-parallel step of Stage 1: a batch split across threads, each computing the loss and
//! gradient of its part, and AdamW stepping on their weighted sum; plus the held-out likelihood.

use super::{TrainConfig, TrainData, TrainError, TrainEvent};
use crate::loss::{Batch, Objective, Params, Workspace};
use crate::optim::{AdamW, Optimiser};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// Mutable state of a run: one [`Shard`] per thread (the optimiser is the caller's).
///
/// A batch is split into contiguous parts, one per shard, and each shard computes the mean
/// loss and gradient of its part on its own thread with its own buffers; AdamW then steps on
/// the parts' gradients weighted by their share of the batch, which is the batch-mean gradient.
/// Measured on 2 cores (`micro bench train`, d 768, K 10): splitting the batch this way beats
/// splitting each product, whose pieces are too small at batch 32 to pay for the hand-off.
pub(super) struct Run {
    objective: Objective,
    shards: Vec<Shard>,
    batch: usize,
    threads: usize,
    uses_prompt: bool,
}

/// One thread's part of a batch: its rows, buffers and gradient.
struct Shard {
    grads: Params<f32>,
    ws: Workspace<f32>,
    xb: Vec<f32>,
    pb: Vec<f32>,
    ub: Vec<u32>,
    rows: usize,
    loss: f32,
}

/// Rows per shard below which a batch is not split: the hand-off would cost more.
const SHARD_MIN_ROWS: usize = 8;

impl Shard {
    /// Copies rows `idx` into the batch buffers (the arrays themselves are never copied whole).
    fn gather(&mut self, data: &TrainData<'_>, idx: &[usize], uses_prompt: bool) {
        self.xb.clear();
        self.pb.clear();
        self.ub.clear();
        for &i in idx {
            self.xb.extend_from_slice(data.diff.row(i));
            if uses_prompt {
                self.pb.extend_from_slice(data.prompt.row(i));
            }
        }
        if let Some(users) = data.users {
            self.ub.extend(idx.iter().map(|&i| users.rows[i]));
        }
        self.rows = idx.len();
    }

    /// Mean loss and gradient of rows `idx`, on the calling thread.
    fn loss_and_grad(
        &mut self,
        objective: &Objective,
        params: &Params<f32>,
        data: &TrainData<'_>,
        idx: &[usize],
        (uses_prompt, threads): (bool, usize),
    ) {
        self.gather(data, idx, uses_prompt);
        self.grads.fill_zero();
        let batch = Batch {
            diff: &self.xb,
            prompt: &self.pb,
            users: &self.ub,
            n: self.rows,
        };
        self.loss = objective
            .loss_and_grad(params, batch, Some(&mut self.grads), &mut self.ws, threads)
            .loss;
    }
}

impl Run {
    pub(super) fn new(params: &Params<f32>, cfg: &TrainConfig, objective: Objective) -> Self {
        let uses_prompt = params.gate.router().is_some();
        let threads = cfg.threads();
        let n_shards = threads.clamp(1, (cfg.batch / SHARD_MIN_ROWS).max(1));
        let shards = (0..n_shards)
            .map(|_| Shard {
                grads: params.zeros_like(),
                ws: Workspace::default(),
                xb: Vec::new(),
                pb: Vec::new(),
                ub: Vec::new(),
                rows: 0,
                loss: 0.0,
            })
            .collect();
        Run {
            objective,
            shards,
            batch: cfg.batch,
            threads,
            uses_prompt,
        }
    }

    /// The batch's mean loss; its gradient is left in the shards.
    fn batch_loss_and_grad(
        &mut self,
        params: &Params<f32>,
        data: &TrainData<'_>,
        idx: &[usize],
    ) -> f32 {
        let (objective, uses_prompt) = (&self.objective, self.uses_prompt);
        if self.shards.len() == 1 {
            let threads = self.threads;
            let shard = &mut self.shards[0];
            shard.loss_and_grad(objective, params, data, idx, (uses_prompt, threads));
            return shard.loss;
        }
        let per = idx.len().div_ceil(self.shards.len());
        let parts = idx.chunks(per).chain(std::iter::repeat(&[][..]));
        let work: Vec<(&mut Shard, &[usize])> = self.shards.iter_mut().zip(parts).collect();
        work.into_par_iter().for_each(|(shard, part)| {
            shard.loss_and_grad(objective, params, data, part, (uses_prompt, 1))
        });
        let n = idx.len() as f32;
        self.shards.iter().map(|s| s.loss * s.rows as f32 / n).sum()
    }

    /// One AdamW step on the batch gradient held by the shards.
    fn apply(&self, adamw: &mut AdamW, params: &mut Params<f32>, lr: f32) {
        let n: usize = self.shards.iter().map(|s| s.rows).sum();
        let grads: Vec<([&[f32]; 6], f32)> = self
            .shards
            .iter()
            .filter(|s| s.rows > 0)
            .map(|s| (s.grads.tensors(), s.rows as f32 / n as f32))
            .collect();
        let grads: Vec<(&[&[f32]], f32)> = grads.iter().map(|(g, w)| (&g[..], *w)).collect();
        adamw.step_sum(&mut params.tensors_mut(), &grads, lr, self.threads);
    }

    /// One pass over `order` in minibatches, each one's loss and gradient then one step of
    /// `opt`; returns the mean batch loss. Ends early with [`TrainError::Cancelled`] once
    /// `stop` is set.
    pub(super) fn epoch(
        &mut self,
        opt: &mut Optimiser,
        params: &mut Params<f32>,
        data: &TrainData<'_>,
        order: &[usize],
        (epoch, stop): (usize, Option<&AtomicBool>),
        progress: &mut impl FnMut(&TrainEvent),
    ) -> Result<f64, TrainError> {
        let (mut total, mut count) = (0.0f64, 0usize);
        for idx in order.chunks(self.batch) {
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return Err(TrainError::Cancelled);
            }
            let loss = self.batch_loss_and_grad(params, data, idx);
            if !loss.is_finite() {
                return Err(TrainError::NotFiniteLoss {
                    loss,
                    epoch,
                    step: opt.steps() + 1,
                });
            }
            opt.step(|adamw, lr| self.apply(adamw, params, lr));
            let loss = loss as f64;
            total += loss;
            count += 1;
            let step = opt.steps();
            progress(&TrainEvent::Step { step, epoch, loss });
        }
        Ok(total / count.max(1) as f64)
    }

    /// Mean NLL per pair over rows `idx` (no gradient).
    pub(super) fn mean_nll(
        &mut self,
        params: &Params<f32>,
        data: &TrainData<'_>,
        idx: &[usize],
    ) -> f64 {
        let mut sum = 0.0f64;
        let (threads, uses_prompt) = (self.threads, self.uses_prompt);
        let shard = &mut self.shards[0];
        for chunk in idx.chunks(HOLDOUT_CHUNK) {
            shard.gather(data, chunk, uses_prompt);
            let batch = Batch {
                diff: &shard.xb,
                prompt: &shard.pb,
                users: &shard.ub,
                n: shard.rows,
            };
            let parts = self
                .objective
                .loss_and_grad(params, batch, None, &mut shard.ws, threads);
            sum += parts.nll as f64 * chunk.len() as f64;
        }
        sum / idx.len().max(1) as f64
    }
}

impl Run {
    /// The NLL of each of the rows `idx` (no gradient): what the search compares variants by.
    pub(super) fn pair_nlls(
        &mut self,
        params: &Params<f32>,
        data: &TrainData<'_>,
        idx: &[usize],
    ) -> Vec<f64> {
        let (threads, uses_prompt) = (self.threads, self.uses_prompt);
        let shard = &mut self.shards[0];
        idx.iter()
            .map(|&i| {
                shard.gather(data, &[i], uses_prompt);
                let batch = Batch {
                    diff: &shard.xb,
                    prompt: &shard.pb,
                    users: &shard.ub,
                    n: 1,
                };
                let parts =
                    self.objective
                        .loss_and_grad(params, batch, None, &mut shard.ws, threads);
                parts.nll as f64
            })
            .collect()
    }
}

/// Held-out pairs per forward pass.
const HOLDOUT_CHUNK: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::Method;
    use micro_cache::Matrix;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Oracle: the gradient of the whole batch on one shard. Three shards of uneven size,
    /// weighted by their rows, must give the same loss and the same AdamW step.
    #[test]
    fn sharded_batches_give_the_whole_batch_gradient() {
        let (n, d, k) = (37, 6, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut m = || {
            Matrix::new(
                n,
                d,
                (0..n * d).map(|_| rng.random_range(-1.0..1.0)).collect(),
            )
        };
        let (diff, prompt) = (m(), m());
        let idx: Vec<usize> = (0..n).rev().collect();
        let step = |threads: usize| {
            let cfg = TrainConfig {
                k,
                batch: n,
                threads,
                router_hidden: Some(5),
                ..TrainConfig::default()
            };
            let mut params = Params::init(
                Method::Micro,
                k,
                d,
                d,
                cfg.router_hidden,
                cfg.activation,
                &mut ChaCha8Rng::seed_from_u64(9),
            );
            let objective = Objective {
                method: Method::Micro,
                alpha: 0.5,
            };
            let mut run = Run::new(&params, &cfg, objective);
            let data = TrainData {
                diff: &diff,
                prompt: &prompt,
                groups: None,
                users: None,
            };
            let loss = run.batch_loss_and_grad(&params, &data, &idx);
            // The gradient AdamW sees: the shards' weighted sum.
            let mut grad = params.zeros_like();
            for s in &run.shards {
                let w = s.rows as f32 / n as f32;
                for (g, sg) in grad.tensors_mut().into_iter().zip(s.grads.tensors()) {
                    for (a, b) in g.iter_mut().zip(sg) {
                        *a += w * b;
                    }
                }
            }
            run.apply(&mut AdamW::new(cfg.weight_decay), &mut params, 1e-2);
            (
                run.shards.iter().map(|s| s.rows).collect::<Vec<_>>(),
                loss,
                grad,
                params,
            )
        };
        let (rows1, loss1, g1, p1) = step(1);
        let (rows3, loss3, g3, p3) = step(3);
        assert_eq!((rows1, rows3), (vec![37], vec![13, 13, 11]));
        assert!((loss1 - loss3).abs() < 1e-6, "{loss1} vs {loss3}");
        for (a, b) in g1.tensors().iter().zip(g3.tensors().iter()) {
            for (x, y) in a.iter().zip(b.iter()) {
                assert!(
                    (x - y).abs() < 1e-6 * (1.0 + x.abs()),
                    "gradient {x} vs {y}"
                );
            }
        }
        for (a, b) in p1.tensors().iter().zip(p3.tensors().iter()) {
            for (x, y) in a.iter().zip(b.iter()) {
                assert!((x - y).abs() < 1e-5, "parameter {x} vs {y}");
            }
        }
    }
}
