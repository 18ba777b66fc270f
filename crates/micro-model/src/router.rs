//! The router f(x) = softmax(W2 act(W1 x + b1) + b2): prompt embedding -> weights on the simplex.
//!
//! With `hidden = None` it is purely linear, softmax(W x + b), as in the paper's released code.
//! Besides the one-prompt helpers used at inference, it has a batched forward and a hand-derived
//! batched backward ([`Router::forward_batch`], [`Router::backward_batch`]) that know nothing of
//! the loss: any objective supplies d loss / d logits. Parameters and gradients are both
//! `Router` values, walked as flat slices with [`Router::params`] / [`Router::params_mut`].

use crate::float::Float;
use crate::linalg::{matmul, Op};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Hidden-layer nonlinearity (the paper does not name one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
}

impl Activation {
    /// act(x) for any float type.
    pub fn apply_t<T: Float>(self, x: T) -> T {
        match self {
            Activation::Relu => x.max(T::zero()),
            Activation::Tanh => x.tanh(),
        }
    }

    /// act'(x) expressed through the output y = act(x), so the backward pass needs only y.
    pub fn derivative_from_output<T: Float>(self, y: T) -> T {
        match self {
            Activation::Relu => {
                if y > T::zero() {
                    T::one()
                } else {
                    T::zero()
                }
            }
            Activation::Tanh => T::one() - y * y,
        }
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
        })
    }
}

impl std::str::FromStr for Activation {
    type Err = micro_data::UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "relu" => Ok(Activation::Relu),
            "tanh" => Ok(Activation::Tanh),
            _ => Err(micro_data::UnknownValue::new(
                "activation",
                s,
                "relu or tanh",
            )),
        }
    }
}

/// Router parameters, all row-major. `T` is `f32` everywhere except in gradient checks.
#[derive(Clone, Debug, PartialEq)]
pub struct Router<T = f32> {
    pub input_dim: usize,
    pub k: usize,
    /// `Some(h)`: one hidden layer of `h` units; `None`: linear.
    pub hidden: Option<usize>,
    pub activation: Activation,
    /// [h, input_dim] (absent when linear)
    pub w1: Vec<T>,
    /// [h]
    pub b1: Vec<T>,
    /// [k, h] or [k, input_dim] when linear
    pub w2: Vec<T>,
    /// [k]
    pub b2: Vec<T>,
}

/// What [`Router::forward_batch`] keeps for the backward pass: the hidden activations of the
/// batch (empty for a linear router). Reusable across batches without reallocating.
#[derive(Clone, Debug, Default)]
pub struct RouterActs<T = f32> {
    /// Rows in the batch.
    pub n: usize,
    /// act(W1 x + b1), [n, h]; overwritten with d loss / d pre-activation by the backward pass.
    pub hidden: Vec<T>,
    /// One row of the backward pass's work, [h].
    scratch: Vec<T>,
}

impl Router {
    /// A zero router (uniform weights everywhere); trainers initialise it properly.
    pub fn zeros(
        input_dim: usize,
        k: usize,
        hidden: Option<usize>,
        activation: Activation,
    ) -> Self {
        Router::zeros_t(input_dim, k, hidden, activation)
    }
}

impl<T: Float> Router<T> {
    /// [`Router::zeros`] for any float type.
    pub fn zeros_t(
        input_dim: usize,
        k: usize,
        hidden: Option<usize>,
        activation: Activation,
    ) -> Self {
        let h = hidden.unwrap_or(0);
        let w2_in = hidden.unwrap_or(input_dim);
        Router {
            input_dim,
            k,
            hidden,
            activation,
            w1: vec![T::zero(); h * input_dim],
            b1: vec![T::zero(); h],
            w2: vec![T::zero(); k * w2_in],
            b2: vec![T::zero(); k],
        }
    }

    /// PyTorch's `nn.Linear` initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights
    /// and biases, so that training from here matches the reference's starting scale.
    pub fn init_random(
        input_dim: usize,
        k: usize,
        hidden: Option<usize>,
        activation: Activation,
        rng: &mut impl Rng,
    ) -> Self {
        let mut r = Router::zeros_t(input_dim, k, hidden, activation);
        let uniform = |v: &mut [T], fan_in: usize, rng: &mut dyn rand::RngCore| {
            let b = 1.0 / (fan_in.max(1) as f64).sqrt();
            for x in v {
                *x = T::of(rng.random_range(-b..b));
            }
        };
        uniform(&mut r.w1, input_dim, rng);
        uniform(&mut r.b1, input_dim, rng);
        let fan2 = hidden.unwrap_or(input_dim);
        uniform(&mut r.w2, fan2, rng);
        uniform(&mut r.b2, fan2, rng);
        r
    }

    /// Width of the layer feeding the output logits (h, or input_dim when linear).
    pub fn width(&self) -> usize {
        self.hidden.unwrap_or(self.input_dim)
    }

    /// The parameter tensors in a fixed order, `[w1, b1, w2, b2]` (w1, b1 empty when linear).
    pub fn params(&self) -> [&[T]; 4] {
        [&self.w1, &self.b1, &self.w2, &self.b2]
    }

    /// Mutable [`Router::params`], same order.
    pub fn params_mut(&mut self) -> [&mut [T]; 4] {
        [&mut self.w1, &mut self.b1, &mut self.w2, &mut self.b2]
    }

    /// The output layer's tensors, `[w2, b2]`: what a caller training only that layer steps.
    pub fn output_params(&self) -> [&[T]; 2] {
        [&self.w2, &self.b2]
    }

    /// Mutable [`Router::output_params`], same order.
    pub fn output_params_mut(&mut self) -> [&mut [T]; 2] {
        [&mut self.w2, &mut self.b2]
    }

    /// Sets every parameter to zero (to reset a gradient accumulator).
    pub fn fill_zero(&mut self) {
        for p in self.params_mut() {
            p.fill(T::zero());
        }
    }

    /// Pre-softmax scores for one prompt embedding.
    pub fn logits(&self, x: &[T]) -> Vec<T> {
        debug_assert_eq!(x.len(), self.input_dim);
        let z: Vec<T> = match self.hidden {
            None => x.to_vec(),
            Some(h) => (0..h)
                .map(|j| {
                    self.activation.apply_t(
                        dot_t(&self.w1[j * self.input_dim..(j + 1) * self.input_dim], x)
                            + self.b1[j],
                    )
                })
                .collect(),
        };
        let width = z.len();
        (0..self.k)
            .map(|k| dot_t(&self.w2[k * width..(k + 1) * width], &z) + self.b2[k])
            .collect()
    }

    /// log f_k(x), normalised.
    pub fn log_weights(&self, x: &[T]) -> Vec<T> {
        let z = self.logits(x);
        let mut out = vec![T::zero(); z.len()];
        crate::float::log_softmax_into(&z, &mut out);
        out
    }

    /// Logits for `n` prompts `x` [n, input_dim]: returns (logits [n, k], activations for
    /// [`Router::backward_batch`]).
    pub fn forward_batch(&self, x: &[T], n: usize) -> (Vec<T>, RouterActs<T>) {
        let mut logits = Vec::new();
        let mut acts = RouterActs::default();
        self.forward_batch_into(x, n, &mut logits, &mut acts, 1);
        (logits, acts)
    }

    /// [`Router::forward_batch`] into reused buffers (resized, never shrunk); `threads` > 1 lets
    /// large products use the rayon pool.
    pub fn forward_batch_into(
        &self,
        x: &[T],
        n: usize,
        logits: &mut Vec<T>,
        acts: &mut RouterActs<T>,
        threads: usize,
    ) {
        assert_eq!(
            x.len(),
            n * self.input_dim,
            "forward_batch: x must be [n, input_dim]"
        );
        let k = self.k;
        logits.resize(n * k, T::zero());
        acts.n = n;
        let z: &[T] = match self.hidden {
            None => x,
            Some(h) => {
                acts.hidden.resize(n * h, T::zero());
                matmul(
                    &mut acts.hidden,
                    x,
                    Op::N,
                    &self.w1,
                    Op::T,
                    n,
                    self.input_dim,
                    h,
                    false,
                    threads,
                );
                for row in acts.hidden.chunks_exact_mut(h) {
                    for (v, &b) in row.iter_mut().zip(&self.b1) {
                        *v = self.activation.apply_t(*v + b);
                    }
                }
                &acts.hidden
            }
        };
        matmul(
            logits,
            z,
            Op::N,
            &self.w2,
            Op::T,
            n,
            self.width(),
            k,
            false,
            threads,
        );
        for row in logits.chunks_exact_mut(k) {
            for (v, &b) in row.iter_mut().zip(&self.b2) {
                *v += b;
            }
        }
    }

    /// The output layer's part of [`Router::backward_batch`]: accumulates the gradients of W2
    /// and b2 only (all a caller that trains only the output layer needs).
    pub fn backward_output_batch(
        &self,
        x: &[T],
        n: usize,
        acts: &RouterActs<T>,
        dlogits: &[T],
        grads: &mut Router<T>,
        threads: usize,
    ) {
        let k = self.k;
        assert_eq!(
            dlogits.len(),
            n * k,
            "backward_batch: dlogits must be [n, k]"
        );
        assert_eq!(
            acts.n, n,
            "backward_batch: activations are from a batch of another size"
        );
        assert_eq!(
            grads.w2.len(),
            self.w2.len(),
            "backward_batch: grads has another shape"
        );
        add_column_sums(&mut grads.b2, dlogits, k);
        let input = if self.hidden.is_some() {
            &acts.hidden[..]
        } else {
            x
        };
        matmul(
            &mut grads.w2,
            dlogits,
            Op::T,
            input,
            Op::N,
            k,
            n,
            self.width(),
            true,
            threads,
        );
    }

    /// Accumulates into `grads` (a Router of the same shape) the gradient of a loss whose
    /// derivative with respect to the batch's logits is `dlogits` [n, k]. `x` and `acts` must be
    /// those of the matching forward pass; `acts.hidden` is reused as scratch and is spent after.
    pub fn backward_batch(
        &self,
        x: &[T],
        n: usize,
        acts: &mut RouterActs<T>,
        dlogits: &[T],
        grads: &mut Router<T>,
        threads: usize,
    ) {
        self.backward_output_batch(x, n, acts, dlogits, grads, threads);
        let (k, Some(h)) = (self.k, self.hidden) else {
            return;
        };
        // d pre = (dlogits . W2) * act'(pre); K is small, so a direct loop beats a GEMM call.
        // It overwrites the activations in place: first with act', then scaled by the sum over
        // the K rows of W2, each a contiguous run of h (so the inner loop vectorises).
        acts.scratch.resize(h, T::zero());
        for (arow, drow) in acts.hidden.chunks_exact_mut(h).zip(dlogits.chunks_exact(k)) {
            let sum = &mut acts.scratch;
            sum.fill(T::zero());
            for (&d, w) in drow.iter().zip(self.w2.chunks_exact(h)) {
                for (s, &w) in sum.iter_mut().zip(w) {
                    *s += d * w;
                }
            }
            for (a, &s) in arow.iter_mut().zip(sum.iter()) {
                *a = s * self.activation.derivative_from_output(*a);
            }
        }
        add_column_sums(&mut grads.b1, &acts.hidden, h);
        matmul(
            &mut grads.w1,
            &acts.hidden,
            Op::T,
            x,
            Op::N,
            h,
            n,
            self.input_dim,
            true,
            threads,
        );
    }
}

fn add_column_sums<T: Float>(acc: &mut [T], m: &[T], cols: usize) {
    for row in m.chunks_exact(cols) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v;
        }
    }
}

fn dot_t<T: Float>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).map(|(&x, &y)| x * y).sum()
}

/// log softmax, stable for any input magnitude.
pub(crate) fn log_softmax(z: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; z.len()];
    crate::float::log_softmax_into(z, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Central differences of L = sum_ik c_ik logits_ik, whose dlogits is c.
    #[test]
    fn backward_matches_finite_differences() {
        for (hidden, act) in [
            (Some(4), Activation::Tanh),
            (Some(5), Activation::Relu),
            (None, Activation::Relu),
        ] {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
            let (d, k, n) = (6, 3, 5);
            let r: Router<f64> = Router::init_random(d, k, hidden, act, &mut rng);
            let x: Vec<f64> = (0..n * d).map(|_| rng.random_range(-1.0..1.0)).collect();
            let c: Vec<f64> = (0..n * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            let loss = |r: &Router<f64>| -> f64 {
                r.forward_batch(&x, n)
                    .0
                    .iter()
                    .zip(&c)
                    .map(|(a, b)| a * b)
                    .sum()
            };
            let (_, mut acts) = r.forward_batch(&x, n);
            let mut g = Router::zeros_t(d, k, hidden, act);
            r.backward_batch(&x, n, &mut acts, &c, &mut g, 1);
            for t in 0..4 {
                for i in 0..r.params()[t].len() {
                    let (mut p, mut m) = (r.clone(), r.clone());
                    p.params_mut()[t][i] += 1e-6;
                    m.params_mut()[t][i] -= 1e-6;
                    let fd = (loss(&p) - loss(&m)) / 2e-6;
                    let an = g.params()[t][i];
                    assert!(
                        (fd - an).abs() <= 1e-6 * (1.0 + fd.abs()),
                        "tensor {t}[{i}]: {an} vs {fd}"
                    );
                }
            }
        }
    }

    #[test]
    fn batched_forward_matches_single_prompt_logits() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let r: Router<f32> = Router::init_random(8, 3, Some(6), Activation::Relu, &mut rng);
        let x: Vec<f32> = (0..4 * 8).map(|i| (i as f32).sin()).collect();
        let (logits, _) = r.forward_batch(&x, 4);
        for i in 0..4 {
            for (a, b) in r
                .logits(&x[i * 8..(i + 1) * 8])
                .iter()
                .zip(&logits[i * 3..(i + 1) * 3])
            {
                assert!((a - b).abs() < 1e-5);
            }
        }
    }
}
