//! AdamW (Loshchilov & Hutter: decoupled weight decay) and the warm-up + cosine learning-rate
//! schedule of the reference trainer (HF `get_cosine_schedule_with_warmup`).

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

    /// Steps taken so far.
    pub fn steps(&self) -> u32 {
        self.t
    }

    /// One update of every tensor in `params` with its gradient in `grads`, at learning rate `lr`.
    /// The moment buffers are created on the first call and must keep their shapes after.
    pub fn step(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]], lr: f32) {
        assert_eq!(
            params.len(),
            grads.len(),
            "AdamW::step: one gradient per parameter tensor"
        );
        if self.m.is_empty() {
            self.m = params.iter().map(|p| vec![0.0; p.len()]).collect();
            self.v = self.m.clone();
        }
        assert_eq!(
            self.m.len(),
            params.len(),
            "AdamW::step: the parameter list changed"
        );
        self.t += 1;
        let c1 = 1.0 - self.beta1.powi(self.t as i32);
        let c2 = 1.0 - self.beta2.powi(self.t as i32);
        let step = lr / c1;
        let inv_sqrt_c2 = 1.0 / c2.sqrt();
        let decay = 1.0 - lr * self.weight_decay;
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            assert_eq!(
                p.len(),
                g.len(),
                "AdamW::step: gradient shape differs from its parameter"
            );
            assert_eq!(
                p.len(),
                m.len(),
                "AdamW::step: a parameter tensor changed size"
            );
            for (((x, &g), m), v) in p
                .iter_mut()
                .zip(g.iter())
                .zip(m.iter_mut())
                .zip(v.iter_mut())
            {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *x = *x * decay - step * *m / (v.sqrt() * inv_sqrt_c2 + eps);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

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
