//! The Stage 1 objectives and their hand-derived gradients.
//!
//! For a pair with h_w - h_l = u and router input e, head k's margin is delta_k = w_k . u and
//! the gate gives log f_k(e) = log softmax(z)_k. Per pair, with everything in log space:
//!
//! * **MiCRo** (router) and **static mixture** (input-independent logits z):
//!   `-LSE_k(log f_k + log sigma(delta_k)) + alpha * sum_k f_k log f_k`
//!   (the mixture NLL, Eq. 2, plus alpha times the negative entropy, Eq. 3).
//!   With posterior gamma_k = f_k sigma(delta_k) / sum_j f_j sigma(delta_j):
//!   d/d delta_k = -gamma_k sigma(-delta_k); d/d z_j = (f_j - gamma_j) + alpha f_j (log f_j - R),
//!   where R = sum_k f_k log f_k.
//! * **Single** head: the same with K = 1 and no gate: `-log sigma(delta)`.
//! * **Shared-base ensemble**: the uniform average of the K heads' BT losses,
//!   `(1/K) sum_k -log sigma(delta_k)`, d/d delta_k = -sigma(-delta_k) / K.
//!   HyRe adds each trainable head to a frozen random "prior" head. Without weight decay a fixed
//!   additive prior is the same as starting the trainable head at that prior (the BT loss sees
//!   only their sum), so we fold the prior into the random initialisation of each head; with
//!   weight decay ours decays toward zero instead of toward the prior.
//!
//! With a per-user table ([`crate::UserIds`]), a router's logits for a pair of a known user u are
//! z(e) + b_u, and d/d b_u is the sum of d/d z over that user's pairs in the batch.
//!
//! Losses are means over the batch; the gradient code is generic over f32/f64 so that the
//! finite-difference test checks this very code in f64.

use crate::float::{log_softmax_into, log_sum_exp, Float};
use crate::gate::Gate;
use crate::linalg::{matmul, Op};
use crate::method::Method;
use crate::router::{Activation, RouterActs};
use rand::Rng;

/// Everything Stage 1 learns: heads [K, dim], the gate and the per-user table [users, K]
/// (empty without one; only a router uses it).
#[derive(Clone, Debug, PartialEq)]
pub struct Params<T> {
    pub k: usize,
    pub dim: usize,
    pub heads: Vec<T>,
    pub gate: Gate<T>,
    pub users: Vec<T>,
}

impl<T: Float> Params<T> {
    /// Random heads U(-1/sqrt(dim), 1/sqrt(dim)) (PyTorch's `nn.Linear` scale; distinct heads
    /// are what lets a mixture split, identical ones would stay identical), and the gate the
    /// method needs: a random router, zero static logits, or none. No user table: see
    /// [`Params::with_users`].
    pub fn init(
        method: Method,
        k: usize,
        dim: usize,
        prompt_dim: usize,
        router_hidden: Option<usize>,
        activation: Activation,
        rng: &mut impl Rng,
    ) -> Self {
        let b = 1.0 / (dim.max(1) as f64).sqrt();
        let heads = (0..k * dim)
            .map(|_| T::of(rng.random_range(-b..b)))
            .collect();
        let gate = method.init_gate(k, prompt_dim, router_hidden, activation, rng);
        Params {
            k,
            dim,
            heads,
            gate,
            users: Vec::new(),
        }
    }

    /// The same with a user table of `n` rows, all zero (every user starts on the router).
    pub fn with_users(mut self, n: usize) -> Self {
        self.users = vec![T::zero(); n * self.k];
        self
    }

    /// Rows of the user table.
    pub fn n_users(&self) -> usize {
        self.users.len() / self.k.max(1)
    }

    /// Zeros of the same shape (a gradient accumulator).
    pub fn zeros_like(&self) -> Self {
        let mut p = self.clone();
        p.fill_zero();
        p
    }

    pub fn fill_zero(&mut self) {
        for t in self.tensors_mut() {
            t.fill(T::zero());
        }
    }

    /// The parameter tensors in a fixed order: heads, the gate's, the user table (absent ones
    /// are empty).
    pub fn tensors(&self) -> [&[T]; 6] {
        let [a, b, c, d] = self.gate.tensors();
        [&self.heads, a, b, c, d, &self.users]
    }

    /// Mutable [`Params::tensors`], same order.
    pub fn tensors_mut(&mut self) -> [&mut [T]; 6] {
        let [a, b, c, d] = self.gate.tensors_mut();
        [&mut self.heads, a, b, c, d, &mut self.users]
    }

    pub fn num_params(&self) -> usize {
        self.tensors().iter().map(|t| t.len()).sum()
    }
}

/// Which loss, and its entropy weight alpha.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Objective {
    pub method: Method,
    /// Weight of sum_k f_k log f_k (mixtures only; the paper uses 0.5).
    pub alpha: f64,
}

/// Batch means of the loss and its parts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossParts<T> {
    /// nll + alpha * neg_entropy: what the gradient is of.
    pub loss: T,
    /// The likelihood part (mean BT loss for the shared-base ensemble).
    pub nll: T,
    /// Mean of sum_k f_k log f_k (0 without a gate).
    pub neg_entropy: T,
}

/// Reused buffers for one batch size, so a training step allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct Workspace<T> {
    deltas: Vec<T>,
    logits: Vec<T>,
    ddeltas: Vec<T>,
    dlogits: Vec<T>,
    row: Vec<T>,
    acts: RouterActs<T>,
}

/// Per-pair result of a mixture row: (nll, neg_entropy).
type RowLoss<T> = (T, T);

/// One batch: `n` pairs with `diff` [n, dim], router inputs `prompt` [n, prompt_dim] and each
/// pair's user-table row (`users`: one per pair, [`crate::NO_USER`] for none; may be empty when
/// the parameters have no table).
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a, T> {
    pub diff: &'a [T],
    pub prompt: &'a [T],
    pub users: &'a [u32],
    pub n: usize,
}

impl Objective {
    /// Mean loss over the pairs of `batch`; when `grads` is given, adds the gradient of that
    /// mean to it.
    pub fn loss_and_grad<T: Float>(
        &self,
        params: &Params<T>,
        batch: Batch<'_, T>,
        mut grads: Option<&mut Params<T>>,
        ws: &mut Workspace<T>,
        threads: usize,
    ) -> LossParts<T> {
        let Batch {
            diff, prompt, n, ..
        } = batch;
        let (k, dim) = (params.k, params.dim);
        assert_eq!(diff.len(), n * dim, "loss_and_grad: diff must be [n, dim]");
        if n == 0 {
            return LossParts::default();
        }
        ws.deltas.resize(n * k, T::zero());
        ws.ddeltas.resize(n * k, T::zero());
        ws.row.resize(2 * k, T::zero());
        let router = match &params.gate {
            Gate::Router(r) => {
                assert_eq!(
                    prompt.len(),
                    n * r.input_dim,
                    "loss_and_grad: prompt must be [n, prompt_dim]"
                );
                Some(r)
            }
            _ => None,
        };
        {
            let (deltas, logits, acts) = (&mut ws.deltas, &mut ws.logits, &mut ws.acts);
            let mut heads_forward = || {
                matmul(
                    deltas,
                    diff,
                    Op::N,
                    &params.heads,
                    Op::T,
                    n,
                    dim,
                    k,
                    false,
                    threads,
                )
            };
            match router {
                Some(r) => both(threads, n, heads_forward, || {
                    r.forward_batch_into(prompt, n, logits, acts, threads)
                }),
                None => heads_forward(),
            }
        }
        let scale = T::one() / T::of(n as f64);
        let alpha = T::of(self.alpha);
        let (nll, negent) = match &params.gate {
            // A single head (K = 1) is the shared-base loss with one head: no gate to mix.
            Gate::Uniform => (
                shared_base_rows(&ws.deltas, k, scale, &mut ws.ddeltas),
                T::zero(),
            ),
            Gate::Static(z) => {
                ws.dlogits.clear();
                ws.dlogits.resize(k, T::zero());
                let mut sum = (T::zero(), T::zero());
                for i in 0..n {
                    // Accumulates the per-row logit gradients: z is shared by every pair.
                    let r = mixture_row(
                        &ws.deltas[i * k..(i + 1) * k],
                        z,
                        alpha,
                        scale,
                        &mut ws.ddeltas[i * k..(i + 1) * k],
                        &mut ws.dlogits,
                        &mut ws.row,
                    );
                    sum = (sum.0 + r.0, sum.1 + r.1);
                }
                if let Some(Gate::Static(g)) = grads.as_deref_mut().map(|g| &mut g.gate) {
                    for (a, &b) in g.iter_mut().zip(&ws.dlogits) {
                        *a += b;
                    }
                }
                sum
            }
            Gate::Router(_) => {
                add_user_rows(&mut ws.logits, &params.users, batch.users, k);
                ws.dlogits.clear();
                ws.dlogits.resize(n * k, T::zero());
                let mut sum = (T::zero(), T::zero());
                for i in 0..n {
                    let s = i * k..(i + 1) * k;
                    let rr = mixture_row(
                        &ws.deltas[s.clone()],
                        &ws.logits[s.clone()],
                        alpha,
                        scale,
                        &mut ws.ddeltas[s.clone()],
                        &mut ws.dlogits[s],
                        &mut ws.row,
                    );
                    sum = (sum.0 + rr.0, sum.1 + rr.1);
                }
                sum
            }
        };
        if let Some(Params {
            heads: gh,
            gate: gg,
            users: gu,
            ..
        }) = grads
        {
            if router.is_some() {
                add_user_grads(gu, &ws.dlogits, batch.users, k);
            }
            let mut heads_backward = || {
                matmul(
                    gh,
                    &ws.ddeltas,
                    Op::T,
                    diff,
                    Op::N,
                    k,
                    n,
                    dim,
                    true,
                    threads,
                )
            };
            match (router, gg) {
                (Some(r), Gate::Router(gr)) => both(threads, n, heads_backward, || {
                    r.backward_batch(prompt, n, &mut ws.acts, &ws.dlogits, gr, threads)
                }),
                _ => heads_backward(),
            }
        }
        let (nll, negent) = (nll * scale, negent * scale);
        LossParts {
            loss: nll + alpha * negent,
            nll,
            neg_entropy: negent,
        }
    }
}

/// Adds each pair's user row of `table` [users, K] to its logits (pairs without a known user,
/// or a batch without users, are left alone).
fn add_user_rows<T: Float>(logits: &mut [T], table: &[T], users: &[u32], k: usize) {
    if table.is_empty() {
        return;
    }
    for (row, &u) in logits.chunks_exact_mut(k).zip(users) {
        if let Some(b) = user_row(table, u, k) {
            for (z, &b) in row.iter_mut().zip(b) {
                *z += b;
            }
        }
    }
}

/// d loss / d b_u: the sum of d loss / d logits over user u's pairs.
fn add_user_grads<T: Float>(grads: &mut [T], dlogits: &[T], users: &[u32], k: usize) {
    if grads.is_empty() {
        return;
    }
    for (d, &u) in dlogits.chunks_exact(k).zip(users) {
        if u != crate::users::NO_USER {
            let g = &mut grads[u as usize * k..(u as usize + 1) * k];
            for (a, &b) in g.iter_mut().zip(d) {
                *a += b;
            }
        }
    }
}

fn user_row<T>(table: &[T], u: u32, k: usize) -> Option<&[T]> {
    let start = (u as usize).checked_mul(k)?;
    (u != crate::users::NO_USER).then(|| table.get(start..start + k))?
}

const JOIN_MIN_ROWS: usize = 128;

/// Runs two independent products side by side when there are threads to spare: the heads'
/// and the router's GEMMs never touch the same buffers.
/// Below `JOIN_MIN_ROWS` rows waking a second thread costs more than it saves (measured on
/// 2 cores: batch 32 took 2.1 s per epoch joined, 1.7 s on one thread).
fn both(threads: usize, rows: usize, a: impl FnOnce() + Send, b: impl FnOnce() + Send) {
    if threads > 1 && rows >= JOIN_MIN_ROWS {
        rayon::join(a, b);
    } else {
        a();
        b();
    }
}

/// One pair of a mixture: returns (nll, neg_entropy) and adds `scale` times their gradient
/// (d/d delta into `ddelta`, overwritten; d/d logits into `dlogits`, accumulated).
fn mixture_row<T: Float>(
    delta: &[T],
    logits: &[T],
    alpha: T,
    scale: T,
    ddelta: &mut [T],
    dlogits: &mut [T],
    row: &mut [T],
) -> RowLoss<T> {
    let k = delta.len();
    let (log_f, a) = row.split_at_mut(k);
    log_softmax_into(logits, log_f);
    for j in 0..k {
        a[j] = log_f[j] + delta[j].log_sigmoid();
    }
    let lse = log_sum_exp(a);
    let mut neg_entropy = T::zero();
    for &lf in log_f.iter() {
        neg_entropy += lf.exp() * lf;
    }
    for j in 0..k {
        let gamma = (a[j] - lse).exp();
        let f = log_f[j].exp();
        ddelta[j] = -scale * gamma * (-delta[j]).sigmoid();
        dlogits[j] += scale * ((f - gamma) + alpha * f * (log_f[j] - neg_entropy));
    }
    (-lse, neg_entropy)
}

/// Sum over pairs of the mean-over-heads BT loss; writes `scale` times its gradient.
fn shared_base_rows<T: Float>(deltas: &[T], k: usize, scale: T, ddeltas: &mut [T]) -> T {
    let inv_k = T::one() / T::of(k as f64);
    let mut sum = T::zero();
    for (d, g) in deltas.iter().zip(ddeltas.iter_mut()) {
        sum -= d.log_sigmoid();
        *g = -scale * inv_k * (-*d).sigmoid();
    }
    sum * inv_k
}
