//! The model folder: `model.safetensors` + `config.json`.
//!
//! Tensors (f32): `heads` [K, dim]; with a router `router.w2` [K, hidden or prompt_dim],
//! `router.b2` [K] and, for the MLP, `router.w1` [hidden, prompt_dim], `router.b1` [hidden];
//! with a static gate `gate.logits` [K]; with a per-user table `users.logits` [users, K], its
//! users listed in `users.json`. A Python user reads it with `safetensors` alone:
//! `w = f(e) = softmax(W2 @ act(W1 @ e + b1) + b2 [+ users.logits[u]])`,
//! `p = sum_k w_k sigmoid(heads[k] @ (h_w - h_l))`.

use crate::gate::{Gate, RouterKind};
use crate::model::{MixtureModel, ModelConfig};
use crate::router::Activation;
use crate::users::UserTable;
use micro_cache::tensors::{self, TensorData, TensorFile};
use micro_cache::Dtype;
use std::path::Path;

pub const MODEL_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
/// The users of the per-user table, in row order (a JSON list of ids), when the model has one.
pub const USERS_FILE: &str = "users.json";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Cache(#[from] micro_cache::CacheError),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("the heads are {heads:?}, config.json says {config:?}")]
    HeadsShape {
        heads: [usize; 2],
        config: [usize; 2],
    },
    #[error("the gate mixes {gate} heads, the model has {model}")]
    GateHeads { gate: usize, model: usize },
    #[error("the gate is {gate}, config.json says {config}")]
    GateKind {
        gate: RouterKind,
        config: RouterKind,
    },
    #[error("the router reads {router}-d inputs, config.json says {config}-d")]
    RouterInput { router: usize, config: usize },
    /// (hidden units, activation) of the router and of `config.json`.
    #[error("the router has {:?} hidden units ({:?}), config.json says {:?} ({:?})", router.0, router.1, config.0, config.1)]
    RouterHidden {
        router: (Option<usize>, Activation),
        config: (Option<usize>, Activation),
    },
    #[error("the router's tensors [w1, b1, w2, b2] should hold {want:?} values")]
    RouterTensors { want: [usize; 4] },
    #[error("the per-user table has {table} columns, the model has {model} heads")]
    UserTableHeads { table: usize, model: usize },
    #[error("cannot remove every head: at least one must stay")]
    NoHeadLeft,
    #[error("head {head} does not exist: the model has {k} heads (0..{})", k.saturating_sub(1))]
    NoSuchHead { head: usize, k: usize },
    #[error(
        "merging needs each of the {k} heads in one cluster and a mass per head: got clusters {clusters:?} and {masses} masses"
    )]
    Clusters {
        k: usize,
        clusters: Vec<Vec<usize>>,
        masses: usize,
    },
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
        let (matrices, vectors) = self.gate.saved_tensors(self.k());
        let mut list: Vec<(&str, TensorData<'_>)> =
            vec![("heads", TensorData::Matrix(&self.heads))];
        list.extend(matrices.iter().map(|(n, m)| (*n, TensorData::Matrix(m))));
        list.extend(vectors.iter().map(|(n, v)| (*n, TensorData::Vector(v))));
        if let Some(t) = &self.users {
            list.push(("users.logits", TensorData::Matrix(t.logits())));
            let names = serde_json::to_string(t.names())
                .map_err(|e| ModelError::invalid(dir, e.to_string()))?;
            std::fs::write(dir.join(USERS_FILE), names)
                .map_err(|e| ModelError::invalid(&dir.join(USERS_FILE), e.to_string()))?;
        }
        tensors::write(&dir.join(MODEL_FILE), &list, Dtype::F32, None)?;
        let json = serde_json::to_string_pretty(&self.config)
            .map_err(|e| ModelError::invalid(dir, e.to_string()))?;
        std::fs::write(dir.join(CONFIG_FILE), json)
            .map_err(|e| ModelError::invalid(&dir.join(CONFIG_FILE), e.to_string()))
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
        let (k, dim) = (config.k, config.dim);
        if heads.rows != k || heads.cols != dim {
            return Err(ModelError::invalid(
                &path,
                format!(
                    "heads is [{}, {}], config.json says [{k}, {dim}]",
                    heads.rows, heads.cols
                ),
            ));
        }
        let read = |name: &str, len: usize| -> Result<Vec<f32>, ModelError> {
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
        let gate = Gate::read(&config, read)?;
        let users = (config.users > 0)
            .then(|| read_users(dir, &mut file, config.users, k))
            .transpose()?;
        let mut model = MixtureModel::new(config, heads, gate)
            .map_err(|e| ModelError::invalid(&cfg_path, e.to_string()))?;
        model.users = users;
        crate::model::check_extras(&model)
            .map_err(|e| ModelError::invalid(&cfg_path, e.to_string()))?;
        Ok(model)
    }
}

/// The per-user table of a model folder: `users.json` and the tensor `users.logits`.
fn read_users(
    dir: &Path,
    file: &mut TensorFile,
    rows: usize,
    k: usize,
) -> Result<UserTable, ModelError> {
    let path = dir.join(USERS_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ModelError::invalid(&path, format!("cannot read the table's users ({e})")))?;
    let names: Vec<String> = serde_json::from_str(&text).map_err(|e| {
        ModelError::invalid(&path, format!("expected a JSON list of user ids: {e}"))
    })?;
    let logits = file.read_matrix("users.logits")?;
    if names.len() != rows || logits.rows != rows || logits.cols != k {
        return Err(ModelError::invalid(
            &path,
            format!(
                "config.json says {rows} users over {k} heads; users.json lists {} and users.logits is [{}, {}]",
                names.len(),
                logits.rows,
                logits.cols
            ),
        ));
    }
    UserTable::new(names, logits)
        .ok_or_else(|| ModelError::invalid(&path, "users and table rows differ"))
}
