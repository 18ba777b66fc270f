//! The trained parameters as the saved artefact: a [`MixtureModel`] whose `config.json` records
//! the data, the backbone and the training.

use super::{TrainConfig, TrainReport};
use crate::gate::RouterKind;
use crate::loss::Params;
use crate::model::{MixtureModel, ModelConfig};
use crate::record::{Stage1Record, Training};
use crate::users::{UserIds, UserTable};
use micro_cache::{Matrix, TrainingArrays};
use sha2::{Digest, Sha256};

/// sha256 of the training pairs in the cache's canonical form (equals the cache's `pairs_hash`
/// when every pair is a training pair).
pub(super) fn train_pairs_hash(arrays: &TrainingArrays, idx: &[usize]) -> String {
    if idx.len() == arrays.pairs.len() && !arrays.meta.pairs_hash.is_empty() {
        return arrays.meta.pairs_hash.clone();
    }
    let mut h = Sha256::new();
    for &i in idx {
        h.update(serde_json::to_vec(&arrays.pairs[i]).unwrap_or_default());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// Wraps trained parameters as the saved artefact, with provenance in `config.json`.
pub(super) fn to_model(
    params: Params<f32>,
    arrays: &TrainingArrays,
    cfg: &TrainConfig,
    train_pairs_hash: String,
    report: &TrainReport,
    users: Option<UserIds>,
) -> MixtureModel {
    // Single and shared-base mix uniformly: saved as zero static logits.
    let router = params.gate.kind();
    let config = ModelConfig {
        format_version: 1,
        method: cfg.method,
        k: params.k,
        dim: params.dim,
        prompt_dim: arrays.prompt.cols,
        router,
        router_hidden: if router == RouterKind::Mlp {
            cfg.router_hidden
        } else {
            None
        },
        activation: cfg.activation,
        backbone: arrays.meta.backbone.clone(),
        recipe: arrays.meta.recipe(),
        router_input: arrays.router_input,
        train_pairs_hash,
        users: 0,
        shared_head: None,
        training: Training {
            stage1: Some(Stage1Record::new(cfg, report)),
            ..Training::default()
        },
        history: Vec::new(),
    };
    let table = users
        .filter(|u| params.n_users() > 0 && params.n_users() == u.len())
        .and_then(|u| {
            let rows = u.len();
            UserTable::new(u.names, Matrix::new(rows, params.k, params.users))
        });
    // The parts agree by construction: the heads, gate and table are the trainer's own.
    let mut model = MixtureModel::from_parts(
        config,
        Matrix::new(params.k, params.dim, params.heads),
        params.gate,
    );
    if let Some(t) = table {
        model.config.users = t.len();
        model.users = Some(t);
    }
    model
}
