//! The model folder: `model.safetensors` + `config.json`.
//!
//! Tensors (f32): `heads` [K, dim]; with a router `router.w2` [K, hidden or prompt_dim],
//! `router.b2` [K] and, for the MLP, `router.w1` [hidden, prompt_dim], `router.b1` [hidden];
//! with a static gate `gate.logits` [K]. A Python user reads it with `safetensors` alone:
//! `w = f(e) = softmax(W2 @ act(W1 @ e + b1) + b2)`, `p = sum_k w_k sigmoid(heads[k] @ (h_w - h_l))`.

use crate::model::{Gate, MixtureModel, ModelConfig};
use crate::router::Router;
use micro_cache::tensors::{self, TensorData, TensorFile};
use micro_cache::{Dtype, Matrix};
use std::path::Path;

pub const MODEL_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Cache(#[from] micro_cache::CacheError),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl ModelError {
    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        ModelError::Invalid {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

impl MixtureModel {
    /// Writes `dir/model.safetensors` and `dir/config.json`.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        std::fs::create_dir_all(dir).map_err(|e| ModelError::invalid(dir, e.to_string()))?;
        // Router matrices are stored 2-D so Python sees their shapes.
        let matrices = self.router_matrices();
        let mut list: Vec<(&str, TensorData<'_>)> =
            vec![("heads", TensorData::Matrix(&self.heads))];
        list.extend(
            matrices
                .iter()
                .map(|(name, m)| (*name, TensorData::Matrix(m))),
        );
        match &self.gate {
            Gate::Router(r) => {
                if r.hidden.is_some() {
                    list.push(("router.b1", TensorData::Vector(&r.b1)));
                }
                list.push(("router.b2", TensorData::Vector(&r.b2)));
            }
            Gate::Static(logits) => list.push(("gate.logits", TensorData::Vector(logits))),
        }
        tensors::write(&dir.join(MODEL_FILE), &list, Dtype::F32, None)?;
        let json = serde_json::to_string_pretty(&self.config)
            .map_err(|e| ModelError::invalid(dir, e.to_string()))?;
        std::fs::write(dir.join(CONFIG_FILE), json)
            .map_err(|e| ModelError::invalid(&dir.join(CONFIG_FILE), e.to_string()))
    }

    fn router_matrices(&self) -> Vec<(&'static str, Matrix)> {
        match &self.gate {
            Gate::Router(r) => {
                let mut v = vec![(
                    "router.w2",
                    Matrix::new(r.k, r.w2.len() / r.k.max(1), r.w2.clone()),
                )];
                if let Some(h) = r.hidden {
                    v.push(("router.w1", Matrix::new(h, r.input_dim, r.w1.clone())));
                }
                v
            }
            Gate::Static(_) => vec![],
        }
    }

    /// Reads a model folder, checking every tensor's shape against config.json.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let cfg_path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| {
            ModelError::invalid(
                &cfg_path,
                format!("cannot read ({e}); is {} a model folder?", dir.display()),
            )
        })?;
        let config: ModelConfig = serde_json::from_str(&text)
            .map_err(|e| ModelError::invalid(&cfg_path, format!("invalid config.json: {e}")))?;
        let path = dir.join(MODEL_FILE);
        let mut file = TensorFile::open(&path)?;
        let heads = file.read_matrix("heads")?;
        let (k, dim, dp) = (config.k, config.dim, config.prompt_dim);
        if heads.rows != k || heads.cols != dim {
            return Err(ModelError::invalid(
                &path,
                format!(
                    "heads is [{}, {}], config.json says [{k}, {dim}]",
                    heads.rows, heads.cols
                ),
            ));
        }
        let mut read = |name: &str, len: usize| -> Result<Vec<f32>, ModelError> {
            let v = if file.tensors.get(name).is_some_and(|t| t.shape.len() == 2) {
                file.read_matrix(name)?.data
            } else {
                file.read_vector(name)?
            };
            if v.len() != len {
                return Err(ModelError::invalid(
                    &path,
                    format!("`{name}` has {} values, expected {len}", v.len()),
                ));
            }
            Ok(v)
        };
        let gate = if config.router == "static" {
            Gate::Static(read("gate.logits", k)?)
        } else {
            let hidden = config.router_hidden.filter(|_| config.router == "mlp");
            let mut r = Router::zeros(dp, k, hidden, config.activation);
            if let Some(h) = hidden {
                r.w1 = read("router.w1", h * dp)?;
                r.b1 = read("router.b1", h)?;
            }
            r.w2 = read("router.w2", k * hidden.unwrap_or(dp))?;
            r.b2 = read("router.b2", k)?;
            Gate::Router(r)
        };
        Ok(MixtureModel {
            config,
            heads,
            gate,
        })
    }
}
