//! AdamW (Loshchilov & Hutter: decoupled weight decay), the warm-up + cosine learning-rate
//! schedule of the reference trainer (HF `get_cosine_schedule_with_warmup`), and
//! [`Optimiser`], the two together as both stages step them: Stage 1's trainer
//! ([`crate::train()`]: the heads and the gate) and Stage 2's router fit (micro-route's `adapt`:
//! the router alone). Each stage runs its own minibatch loop and computes its own gradient.

/// AdamW over a fixed list of parameter tensors, given as slices in the same order every step.
#[derive(Clone, Debug)]
pub struct AdamW {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Decoupled decay: each step multiplies parameters by (1 - lr * weight_decay).
    pub weight_decay: f32,
    t: u32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl AdamW {
    /// PyTorch's defaults (betas 0.9 / 0.999, eps 1e-8) with the given weight decay.
    pub fn new(weight_decay: f32) -> Self {
        AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            t: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// One update of every tensor in `params` with its gradient in `grads`, at learning rate `lr`.
    /// The moment buffers are created on the first call and must keep their shapes after.
    pub fn step(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]], lr: f32) {
        self.step_sum(params, &[(grads, 1.0)], lr, 1);
    }

    /// [`AdamW::step`] with the gradient `sum_s w_s * grads_s` of several weighted buffers (the
    /// per-thread parts of one batch), summed on the fly rather than into another buffer.
    /// With `threads` > 1 and enough parameters, two threads update one half of each tensor.
    pub fn step_sum(
        &mut self,
        params: &mut [&mut [f32]],
        grads: &[(&[&[f32]], f32)],
        lr: f32,
        threads: usize,
    ) {
        for (g, _) in grads {
            assert_eq!(
                params.len(),
                g.len(),
                "AdamW::step: one gradient per parameter tensor"
            );
            for (p, g) in params.iter().zip(g.iter()) {
                assert_eq!(
                    p.len(),
                    g.len(),
                    "AdamW::step: gradient shape differs from its parameter"
                );
            }
        }
        if self.m.is_empty() {
            self.m = params.iter().map(|p| vec![0.0; p.len()]).collect();
            self.v = self.m.clone();
        }
        assert_eq!(
            self.m.len(),
            params.len(),
            "AdamW::step: the parameter list changed"
        );
        for (p, m) in params.iter().zip(&self.m) {
            assert_eq!(
                p.len(),
                m.len(),
                "AdamW::step: a parameter tensor changed size"
            );
        }
        self.t += 1;
        let rule = Rule::new(self, lr);
        let total: usize = params.iter().map(|p| p.len()).sum();
        for (tensor, ((p, m), v)) in params
            .iter_mut()
            .zip(&mut self.m)
            .zip(&mut self.v)
            .enumerate()
        {
            let piece = |p, m, v, offset| Piece {
                rule: &rule,
                p,
                m,
                v,
                grads,
                tensor,
                offset,
            };
            if threads > 1 && total >= PARALLEL_MIN_PARAMS {
                let mid = p.len() / 2;
                let (p0, p1) = p.split_at_mut(mid);
                let (m0, m1) = m.split_at_mut(mid);
                let (v0, v1) = v.split_at_mut(mid);
                rayon::join(
                    || piece(p0, m0, v0, 0).run(),
                    || piece(p1, m1, v1, mid).run(),
                );
            } else {
                piece(p, m, v, 0).run();
            }
        }
    }
}

/// Below this many parameters a second thread costs more than the update.
const PARALLEL_MIN_PARAMS: usize = 1 << 15;

/// The coefficients of one AdamW step.
#[derive(Clone, Copy, Debug)]
struct Rule {
    b1: f32,
    b2: f32,
    eps: f32,
    /// lr / (1 - beta1^t).
    step: f32,
    /// 1 / sqrt(1 - beta2^t).
    inv_sqrt_c2: f32,
    /// 1 - lr * weight_decay.
    decay: f32,
}

/// A piece of one tensor to update: `p`, `m`, `v` from element `offset` of tensor `tensor`,
/// whose gradient is the weighted sum of that tensor in each of `grads`.
struct Piece<'a, 'g> {
    rule: &'a Rule,
    p: &'a mut [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
    grads: &'a [(&'g [&'g [f32]], f32)],
    tensor: usize,
    offset: usize,
}

impl Piece<'_, '_> {
    /// Runs the update compiled for the widest SIMD the CPU has (AVX2 where present: the crate
    /// is built for baseline x86-64, whose 4-wide sqrt and division made AdamW 16% of a
    /// batch-32 training profile). The body sits in `with_simd` because it must be inlined into
    /// pulp's `#[target_feature]` function, which a closure is not.
    fn run(self) {
        pulp::Arch::new().dispatch(self);
    }
}

impl pulp::WithSimd for Piece<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let mut sum = [0.0f32; BLOCK];
        for (start, ((p, m), v)) in self
            .p
            .chunks_mut(BLOCK)
            .zip(self.m.chunks_mut(BLOCK))
            .zip(self.v.chunks_mut(BLOCK))
            .enumerate()
            .map(|(b, x)| (self.offset + b * BLOCK, x))
        {
            let sum = &mut sum[..p.len()];
            sum.fill(0.0);
            for (buf, w) in self.grads {
                for (s, &x) in sum
                    .iter_mut()
                    .zip(&buf[self.tensor][start..start + p.len()])
                {
                    *s += w * x;
                }
            }
            self.rule.update(p, m, v, sum);
        }
    }
}

/// Elements per block of summed gradient: small enough for the stack, long enough to vectorise.
const BLOCK: usize = 64;

impl Rule {
    fn new(opt: &AdamW, lr: f32) -> Self {
        let c1 = 1.0 - opt.beta1.powi(opt.t as i32);
        let c2 = 1.0 - opt.beta2.powi(opt.t as i32);
        Rule {
            b1: opt.beta1,
            b2: opt.beta2,
            eps: opt.eps,
            step: lr / c1,
            inv_sqrt_c2: 1.0 / c2.sqrt(),
            decay: 1.0 - lr * opt.weight_decay,
        }
    }

    #[inline(always)]
    fn update(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        let Rule {
            b1,
            b2,
            eps,
            step,
            inv_sqrt_c2,
            decay,
        } = *self;
        for (((x, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *x = *x * decay - step * *m / (v.sqrt() * inv_sqrt_c2 + eps);
        }
    }
}

/// Linear warm-up from 0 to `peak` over `warmup` steps, then cosine decay to 0 at `total`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub peak: f32,
    pub warmup: usize,
    pub total: usize,
}

impl Schedule {
    /// `warmup_ratio` of `total` steps warm up (rounded up, as HF does).
    pub fn new(peak: f32, warmup_ratio: f32, total: usize) -> Self {
        // The tolerance absorbs f32 noise in the ratio (0.05f32 * 200 is 10.0000001, not 11 steps).
        let warmup = (warmup_ratio.max(0.0) as f64 * total as f64 - 1e-4)
            .ceil()
            .max(0.0) as usize;
        Schedule {
            peak,
            warmup,
            total,
        }
    }

    /// Learning rate for 0-based step `step`.
    pub fn lr(&self, step: usize) -> f32 {
        if step < self.warmup {
            return self.peak * step as f32 / self.warmup as f32;
        }
        let span = self.total.saturating_sub(self.warmup).max(1);
        let progress = ((step - self.warmup) as f64 / span as f64).min(1.0);
        (self.peak as f64 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())) as f32
    }
}

/// AdamW stepped once per minibatch at the rate of a [`Schedule`], counting its steps.
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

    /// One step: `update` moves the parameters with the AdamW state at this step's scheduled
    /// rate (e.g. `|adamw, lr| adamw.step(params, grads, lr)`).
    pub fn step(&mut self, update: impl FnOnce(&mut AdamW, f32)) {
        let lr = self.lr();
        update(&mut self.adamw, lr);
        self.step += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Least squares on one weight, x = mean of the targets: stepped per batch at the scheduled
    /// rate, the steps counted, the cosine ending at 0.
    #[test]
    fn the_optimiser_steps_at_the_scheduled_rate_and_counts() {
        let targets = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        let order = [4, 0, 3, 1, 2];
        let mut w = 0.0f32;
        let mut opt = Optimiser::new(0.3, 0.0, 0.0, 60);
        let mut rates = vec![];
        for _ in 0..20 {
            for idx in order.chunks(2) {
                let grad = idx.iter().map(|&i| w - targets[i]).sum::<f32>() / idx.len() as f32;
                opt.step(|adamw, lr| {
                    rates.push(lr);
                    adamw.step(&mut [std::slice::from_mut(&mut w)], &[&[grad]], lr)
                });
            }
        }
        let schedule = Schedule::new(0.3, 0.0, 60);
        assert_eq!(opt.steps(), 60);
        assert_eq!(rates, (0..60).map(|s| schedule.lr(s)).collect::<Vec<_>>());
        assert_eq!(opt.lr(), 0.0, "the cosine ends at 0");
        assert!((w - 3.0).abs() < 0.5, "{w}");
    }

    /// Two steps by hand from the published update rule.
    #[test]
    fn adamw_matches_the_update_rule_by_hand() {
        let mut opt = AdamW::new(0.1);
        let mut p = vec![1.0f32, -2.0];
        let g1 = [0.5f32, -1.0];
        opt.step(&mut [&mut p], &[&g1], 0.01);
        // First step: m_hat = g, v_hat = g^2, so the update is lr * sign(g) (up to eps).
        let want: Vec<f32> = [1.0f32, -2.0]
            .iter()
            .zip(&g1)
            .map(|(x, g)| x * (1.0 - 0.001) - 0.01 * g.signum())
            .collect();
        for (a, b) in p.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        let g2 = [0.25f32, 1.0];
        let before = p.clone();
        opt.step(&mut [&mut p], &[&g2], 0.01);
        for i in 0..2 {
            let m = 0.9 * 0.1 * g1[i] as f64 + 0.1 * g2[i] as f64;
            let v = 0.999 * 0.001 * (g1[i] as f64).powi(2) + 0.001 * (g2[i] as f64).powi(2);
            let (mh, vh) = (m / (1.0 - 0.81), v / (1.0 - 0.999f64.powi(2)));
            let want = before[i] as f64 * (1.0 - 0.001) - 0.01 * mh / (vh.sqrt() + 1e-8);
            assert!((p[i] as f64 - want).abs() < 1e-6, "{} vs {want}", p[i]);
        }
    }

    /// Two weighted buffers, split over two threads, give the step of their weighted sum.
    #[test]
    fn a_weighted_sum_of_buffers_steps_like_their_sum() {
        let n = (1 << 15) + 77;
        let g0: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
        let g1: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.11).cos()).collect();
        let sum: Vec<f32> = g0
            .iter()
            .zip(&g1)
            .map(|(a, b)| 0.25 * a + 0.75 * b)
            .collect();
        let mut want = vec![0.5f32; n];
        let mut got = want.clone();
        let (mut a, mut b) = (AdamW::new(0.01), AdamW::new(0.01));
        for _ in 0..3 {
            a.step(&mut [&mut want], &[&sum], 1e-2);
            b.step_sum(
                &mut [&mut got],
                &[(&[&g0[..]], 0.25), (&[&g1[..]], 0.75)],
                1e-2,
                2,
            );
        }
        for (x, y) in got.iter().zip(&want) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
    }

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let s = Schedule::new(2e-3, 0.05, 200);
        assert_eq!(s.warmup, 10);
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(5) - 1e-3).abs() < 1e-9);
        assert!((s.lr(10) - 2e-3).abs() < 1e-9);
        assert!((s.lr(105) - 1e-3).abs() < 1e-6);
        assert!(s.lr(200).abs() < 1e-9);
        assert!(s.lr(150) < s.lr(100));
    }
}
