//! The Stage 1 methods, and what each learns: a method is named here, given its gate here, and
//! its loss in [`crate::loss`]; nothing outside micro-model matches on it.

use crate::float::Float;
use crate::gate::Gate;
use crate::router::{Activation, Router};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Which Stage 1 objective produced the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Mixture of BT heads with a prompt-dependent router (the paper's MiCRo).
    #[default]
    Micro,
    /// One BT head.
    Single,
    /// Mixture with input-independent weights (MaxMin-style).
    Static,
    /// K heads trained on the uniform sum of BT losses (HyRe's shared-base ensemble).
    SharedBase,
}

impl Method {
    /// The gate the method trains, initialised: a random router (PyTorch's `nn.Linear` scale),
    /// zero static logits, or none (uniform).
    pub fn init_gate<T: Float>(
        self,
        k: usize,
        prompt_dim: usize,
        router_hidden: Option<usize>,
        activation: Activation,
        rng: &mut impl Rng,
    ) -> Gate<T> {
        match self {
            Method::Micro => Gate::Router(Router::init_random(
                prompt_dim,
                k,
                router_hidden,
                activation,
                rng,
            )),
            Method::Static => Gate::Static(vec![T::zero(); k]),
            Method::Single | Method::SharedBase => Gate::Uniform,
        }
    }

    /// Whether the method learns mixture weights, so that the entropy weight alpha matters.
    pub fn learns_gate(self) -> bool {
        matches!(self, Method::Micro | Method::Static)
    }

    /// Whether training reads the router input (the prompt embeddings).
    pub fn reads_router_input(self) -> bool {
        self == Method::Micro
    }
}

impl std::str::FromStr for Method {
    type Err = micro_data::UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "micro" => Ok(Method::Micro),
            "single" => Ok(Method::Single),
            "static" => Ok(Method::Static),
            "shared-base" | "shared_base" | "shared" => Ok(Method::SharedBase),
            _ => Err(micro_data::UnknownValue::new(
                "method",
                s,
                "micro, single, static or shared-base",
            )),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Micro => "micro",
            Method::Single => "single",
            Method::Static => "static",
            Method::SharedBase => "shared-base",
        })
    }
}
