//! How the K heads are mixed: [`Gate`], one type for the trainer's parameters and the saved
//! model, with every operation other code needs (weights, tensors, slicing and merging rows,
//! the tensors of the model folder). Other crates never match on its variants, so a new kind of
//! gate is added here, in the objective ([`crate::loss`]) and in [`crate::Method`].

use crate::float::{log_sum_exp, Float};
use crate::folder::ModelError;
use crate::model::ModelConfig;
use crate::router::{log_softmax, Router};
use micro_cache::Matrix;
use serde::{Deserialize, Serialize};

/// How the heads are mixed for a router input. `T` is `f32` except in gradient checks.
#[derive(Clone, Debug, PartialEq)]
pub enum Gate<T = f32> {
    /// Weights 1/K everywhere, nothing learned: one head, or the shared-base ensemble (trained
    /// on the uniform average of BT losses). A model holds it as zero [`Gate::Static`] logits,
    /// which is how it has always been saved.
    Uniform,
    /// softmax(logits) [K], the same for every prompt (static mixture).
    Static(Vec<T>),
    /// f(x) from the router input (MiCRo).
    Router(Router<T>),
}

/// `config.json`'s `router`: which gate a saved model has (`"mlp"`, `"linear"` or `"static"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouterKind {
    /// A router with one hidden layer.
    Mlp,
    /// A linear router, softmax(W x + b).
    Linear,
    /// Input-independent logits (also a uniform gate).
    Static,
}

impl std::fmt::Display for RouterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RouterKind::Mlp => "mlp",
            RouterKind::Linear => "linear",
            RouterKind::Static => "static",
        })
    }
}

impl<T: Float> Gate<T> {
    /// The router, when the weights depend on the router input.
    pub fn router(&self) -> Option<&Router<T>> {
        match self {
            Gate::Router(r) => Some(r),
            Gate::Static(_) | Gate::Uniform => None,
        }
    }

    /// How `config.json` names this gate.
    pub fn kind(&self) -> RouterKind {
        match self {
            Gate::Router(r) if r.hidden.is_some() => RouterKind::Mlp,
            Gate::Router(_) => RouterKind::Linear,
            Gate::Static(_) | Gate::Uniform => RouterKind::Static,
        }
    }

    /// Heads the gate mixes; `None` for a uniform gate, which mixes any number.
    pub fn k(&self) -> Option<usize> {
        match self {
            Gate::Router(r) => Some(r.k),
            Gate::Static(z) => Some(z.len()),
            Gate::Uniform => None,
        }
    }

    /// The learned tensors in a fixed order: a router's `[w1, b1, w2, b2]`, a static gate's
    /// logits first; absent ones empty.
    pub fn tensors(&self) -> [&[T]; 4] {
        match self {
            Gate::Uniform => [&[], &[], &[], &[]],
            Gate::Static(z) => [z, &[], &[], &[]],
            Gate::Router(r) => r.params(),
        }
    }

    /// Mutable [`Gate::tensors`], same order.
    pub fn tensors_mut(&mut self) -> [&mut [T]; 4] {
        match self {
            Gate::Uniform => [&mut [], &mut [], &mut [], &mut []],
            Gate::Static(z) => [z, &mut [], &mut [], &mut []],
            Gate::Router(r) => r.params_mut(),
        }
    }
}

impl Gate {
    /// log f_k(x) over `k` heads (`x` is ignored by an input-independent gate).
    pub fn log_weights(&self, k: usize, x: &[f32]) -> Vec<f32> {
        log_softmax(&self.logits(k, x))
    }

    /// The logits the weights are the softmax of, over `k` heads.
    pub fn logits(&self, k: usize, x: &[f32]) -> Vec<f32> {
        match self {
            Gate::Router(r) => r.logits(x),
            Gate::Static(logits) => logits.clone(),
            Gate::Uniform => vec![0.0; k],
        }
    }

    /// Adds a head with the fixed logit `logit` for every input: a router's output layer gains a
    /// zero row with bias `logit`, static logits gain `logit`; a uniform gate is left alone.
    pub(crate) fn append_head(&mut self, logit: f32) {
        match self {
            Gate::Uniform => {}
            Gate::Static(z) => z.push(logit),
            Gate::Router(r) => {
                let width = r.width();
                r.w2.extend(std::iter::repeat_n(0.0, width));
                r.b2.push(logit);
                r.k += 1;
            }
        }
    }

    /// The gate of the heads `keep` (valid indices, in that order): a router's output rows or
    /// the static logits sliced, so the kept heads' weights renormalise among themselves.
    pub(crate) fn select(&self, keep: &[usize]) -> Gate {
        match self {
            Gate::Uniform => Gate::Uniform,
            Gate::Static(logits) => Gate::Static(keep.iter().map(|&h| logits[h]).collect()),
            Gate::Router(r) => {
                let mut r = r.clone();
                let width = r.width();
                r.w2 = keep
                    .iter()
                    .flat_map(|&h| r.w2[h * width..(h + 1) * width].to_vec())
                    .collect();
                r.b2 = keep.iter().map(|&h| r.b2[h]).collect();
                r.k = keep.len();
                Gate::Router(r)
            }
        }
    }

    /// Gives merged head `j` (row `j` of this gate, the leader's) the weight of its cluster
    /// `members` of the `old` gate, whose heads carry `mass`: a static logit becomes the
    /// log-sum-exp of the members' (exact); a router's bias rises by ln(cluster mass / leader
    /// mass) (a softmax cannot represent a sum of two of its terms exactly).
    pub(crate) fn absorb(&mut self, j: usize, old: &Gate, members: &[usize], mass: &[f64]) {
        let total: f64 = members.iter().map(|&h| mass[h]).sum();
        match (self, old) {
            (Gate::Static(new), Gate::Static(old)) => {
                let logits: Vec<f64> = members.iter().map(|&h| old[h] as f64).collect();
                new[j] = log_sum_exp(&logits) as f32;
            }
            (Gate::Router(r), _) if mass[members[0]] > 0.0 && total > 0.0 => {
                r.b2[j] += (total / mass[members[0]]).ln() as f32
            }
            _ => {}
        }
    }

    /// The gate's tensors as the model folder stores them (see [`crate::folder`]): matrices
    /// 2-D so that Python sees their shapes, then vectors. `k` sizes a uniform gate's logits.
    pub(crate) fn saved_tensors(&self, k: usize) -> SavedTensors<'_> {
        match self {
            Gate::Router(r) => {
                let mut matrices = vec![(
                    "router.w2",
                    Matrix::new(r.k, r.w2.len() / r.k.max(1), r.w2.clone()),
                )];
                let mut vectors: Vec<(&str, std::borrow::Cow<'_, [f32]>)> = Vec::new();
                if let Some(h) = r.hidden {
                    matrices.push(("router.w1", Matrix::new(h, r.input_dim, r.w1.clone())));
                    vectors.push(("router.b1", r.b1.as_slice().into()));
                }
                vectors.push(("router.b2", r.b2.as_slice().into()));
                (matrices, vectors)
            }
            Gate::Static(logits) => (vec![], vec![("gate.logits", logits.as_slice().into())]),
            Gate::Uniform => (vec![], vec![("gate.logits", vec![0.0; k].into())]),
        }
    }

    /// Reads the gate `config` describes; `read(name, len)` returns a stored tensor's values.
    pub(crate) fn read(
        config: &ModelConfig,
        mut read: impl FnMut(&str, usize) -> Result<Vec<f32>, ModelError>,
    ) -> Result<Gate, ModelError> {
        let (k, dp) = (config.k, config.prompt_dim);
        if config.router == RouterKind::Static {
            return Ok(Gate::Static(read("gate.logits", k)?));
        }
        let hidden = config
            .router_hidden
            .filter(|_| config.router == RouterKind::Mlp);
        let mut r = Router::zeros(dp, k, hidden, config.activation);
        if let Some(h) = hidden {
            r.w1 = read("router.w1", h * dp)?;
            r.b1 = read("router.b1", h)?;
        }
        r.w2 = read("router.w2", k * hidden.unwrap_or(dp))?;
        r.b2 = read("router.b2", k)?;
        Ok(Gate::Router(r))
    }
}

/// A gate's stored tensors: (name, matrix) and (name, vector), each in the order written.
pub(crate) type SavedTensors<'a> = (
    Vec<(&'static str, Matrix)>,
    Vec<(&'static str, std::borrow::Cow<'a, [f32]>)>,
);

#[cfg(test)]
mod tests {
    use super::*;

    /// config.json files written before the enum store the kind as these strings.
    #[test]
    fn router_kinds_read_and_write_the_strings_of_old_config_files() {
        for (kind, s) in [
            (RouterKind::Mlp, "\"mlp\""),
            (RouterKind::Linear, "\"linear\""),
            (RouterKind::Static, "\"static\""),
        ] {
            assert_eq!(serde_json::to_string(&kind).unwrap(), s);
            assert_eq!(serde_json::from_str::<RouterKind>(s).unwrap(), kind);
            assert_eq!(format!("\"{kind}\""), s);
        }
        assert!(serde_json::from_str::<RouterKind>("\"gru\"").is_err());
    }
}
