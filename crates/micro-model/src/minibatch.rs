//! The optimiser loop both stages share: AdamW stepped once per minibatch at the rate of a
//! warm-up + cosine [`Schedule`]. Stage 1 ([`crate::train`]) steps the heads and the gate,
//! Stage 2 (micro-route's `adapt`) the router alone; each says through [`Minibatch`] how a
//! minibatch's loss and gradient are computed and which tensors the step moves.

use crate::optim::{AdamW, Schedule};

/// What [`Optimiser::epoch`] trains.
pub trait Minibatch {
    type Error;
    /// The mean loss of the rows `idx`, its gradient kept for [`Minibatch::step`]. `step` is
    /// the 0-based count of optimiser steps before this one (for messages).
    fn loss_and_grad(&mut self, idx: &[usize], step: usize) -> Result<f64, Self::Error>;
    /// One AdamW update, at learning rate `lr`, with the gradient just computed.
    fn step(&mut self, adamw: &mut AdamW, lr: f32);
}

/// AdamW, its schedule and the steps taken so far.
#[derive(Clone, Debug)]
pub struct Optimiser {
    adamw: AdamW,
    schedule: Schedule,
    step: usize,
}

impl Optimiser {
    /// AdamW with `weight_decay`, peaking at `lr` after `warmup_ratio` of `total_steps`.
    pub fn new(lr: f32, warmup_ratio: f32, weight_decay: f32, total_steps: usize) -> Self {
        Optimiser {
            adamw: AdamW::new(weight_decay),
            schedule: Schedule::new(lr, warmup_ratio, total_steps),
            step: 0,
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> usize {
        self.step
    }

    /// The learning rate of the next step.
    pub fn lr(&self) -> f32 {
        self.schedule.lr(self.step)
    }

    /// One pass over `order` in minibatches of `batch` rows: each one's loss and gradient, then
    /// one step. `after(steps taken, rows, loss)` follows each step.
    pub fn epoch<M: Minibatch>(
        &mut self,
        model: &mut M,
        order: &[usize],
        batch: usize,
        mut after: impl FnMut(usize, usize, f64),
    ) -> Result<(), M::Error> {
        for idx in order.chunks(batch) {
            let loss = model.loss_and_grad(idx, self.step)?;
            let lr = self.lr();
            model.step(&mut self.adamw, lr);
            self.step += 1;
            after(self.step, idx.len(), loss);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Least squares on one weight, x = mean of the batch's targets: the loop must visit every
    /// row once per epoch in batches, step at the scheduled rate and count the steps.
    struct Mean {
        w: f32,
        grad: f32,
        targets: Vec<f32>,
        seen: Vec<usize>,
    }

    impl Minibatch for Mean {
        type Error = String;
        fn loss_and_grad(&mut self, idx: &[usize], _: usize) -> Result<f64, String> {
            self.seen.extend_from_slice(idx);
            let n = idx.len() as f32;
            let r: Vec<f32> = idx.iter().map(|&i| self.w - self.targets[i]).collect();
            self.grad = r.iter().sum::<f32>() / n;
            Ok((r.iter().map(|v| v * v).sum::<f32>() / (2.0 * n)) as f64)
        }
        fn step(&mut self, adamw: &mut AdamW, lr: f32) {
            adamw.step(
                &mut [std::slice::from_mut(&mut self.w)],
                &[&[self.grad]],
                lr,
            );
        }
    }

    #[test]
    fn epochs_visit_every_row_in_batches_and_follow_the_schedule() {
        let mut m = Mean {
            w: 0.0,
            grad: 0.0,
            targets: vec![1.0, 2.0, 3.0, 4.0, 5.0],
            seen: vec![],
        };
        let mut opt = Optimiser::new(0.3, 0.0, 0.0, 60);
        let mut rows = vec![];
        for _ in 0..20 {
            opt.epoch(&mut m, &[4, 0, 3, 1, 2], 2, |_, n, _| rows.push(n))
                .unwrap();
        }
        assert_eq!(opt.steps(), 60);
        assert_eq!(&rows[..3], &[2, 2, 1]);
        assert_eq!(&m.seen[..5], &[4, 0, 3, 1, 2]);
        assert_eq!(opt.lr(), 0.0, "the cosine ends at 0");
        assert!((m.w - 3.0).abs() < 0.5, "{}", m.w);
    }
}
