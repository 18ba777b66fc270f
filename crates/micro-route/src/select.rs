//! Keeping a subset of the heads: the heads' rows, the router's output rows (`router.w2`,
//! `router.b2`) or the static logits are sliced together, and what was removed is recorded in
//! `ModelConfig.history` (a JSON array of events).

use crate::error::{config, Result};
use micro_model::{Gate, MixtureModel};

/// The model restricted to the heads `keep` (in that order). Removing heads from a router
/// drops their softmax terms, so the remaining weights renormalise among themselves.
pub fn select_heads(model: &MixtureModel, keep: &[usize]) -> Result<MixtureModel> {
    let k = model.k();
    if keep.is_empty() {
        return Err(config("cannot remove every head: at least one must stay"));
    }
    if let Some(bad) = keep.iter().find(|&&h| h >= k) {
        return Err(config(format!(
            "head {bad} does not exist: the model has {k} heads (0..{})",
            k - 1
        )));
    }
    let mut out = model.clone();
    out.heads = model.heads.select_rows(keep);
    out.config.k = keep.len();
    out.gate = match &model.gate {
        Gate::Static(logits) => Gate::Static(keep.iter().map(|&h| logits[h]).collect()),
        Gate::Router(r) => {
            let mut r = r.clone();
            let width = r.width();
            r.w2 = keep
                .iter()
                .flat_map(|&h| model_router_row(&r.w2, width, h))
                .collect();
            r.b2 = keep.iter().map(|&h| r.b2[h]).collect();
            r.k = keep.len();
            Gate::Router(r)
        }
    };
    Ok(out)
}

fn model_router_row(w2: &[f32], width: usize, h: usize) -> Vec<f32> {
    w2[h * width..(h + 1) * width].to_vec()
}

/// Appends `event` to `config.history` (made an array if it was empty or something else).
pub fn push_history(model: &mut MixtureModel, event: serde_json::Value) {
    let history = &mut model.config.history;
    if !history.is_array() {
        let old = std::mem::take(history);
        *history = serde_json::Value::Array(if old.is_null() { vec![] } else { vec![old] });
    }
    if let Some(events) = history.as_array_mut() {
        events.push(event);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use micro_cache::Matrix;
    use micro_model::{Activation, Router};

    /// A small MLP-routed model with distinct values everywhere.
    pub(crate) fn model(k: usize, dim: usize, hidden: Option<usize>) -> MixtureModel {
        let mut r = Router::zeros(dim, k, hidden, Activation::Relu);
        for (i, v) in r.w1.iter_mut().enumerate() {
            *v = ((i as f32) * 0.37).sin() * 0.3;
        }
        for (i, v) in r.w2.iter_mut().chain(r.b2.iter_mut()).enumerate() {
            *v = ((i as f32) * 0.11).cos() * 0.5;
        }
        let heads = Matrix::new(
            k,
            dim,
            (0..k * dim).map(|i| ((i as f32) * 0.23).sin()).collect(),
        );
        let config = crate::fixture::model_config(dim, k, hidden);
        MixtureModel {
            config,
            heads,
            gate: Gate::Router(r),
        }
    }

    /// Oracle: the kept heads' weights are the full router's renormalised over them.
    #[test]
    fn kept_heads_keep_their_relative_weights() {
        let m = model(4, 3, Some(5));
        let keep = [3, 1];
        let s = select_heads(&m, &keep).unwrap();
        let x = [0.3f32, -0.7, 1.1];
        let full = m.weights(&x);
        let z = full[3] + full[1];
        let part = s.weights(&x);
        assert!((part[0] - full[3] / z).abs() < 1e-6 && (part[1] - full[1] / z).abs() < 1e-6);
        assert_eq!(s.heads.row(0), m.heads.row(3));
        assert_eq!(s.config.k, 2);
        let dir = tempfile::tempdir().unwrap();
        s.save(dir.path()).unwrap();
        assert_eq!(MixtureModel::load(dir.path()).unwrap(), s);
    }

    #[test]
    fn refuses_empty_or_unknown_selections() {
        let m = model(3, 2, None);
        assert!(select_heads(&m, &[])
            .unwrap_err()
            .to_string()
            .contains("at least one"));
        assert!(select_heads(&m, &[5])
            .unwrap_err()
            .to_string()
            .contains("head 5 does not exist"));
    }

    #[test]
    fn history_becomes_an_array_of_events() {
        let mut m = model(2, 2, None);
        push_history(&mut m, serde_json::json!({"op": "mask"}));
        push_history(&mut m, serde_json::json!({"op": "merge"}));
        assert_eq!(m.config.history.as_array().unwrap().len(), 2);
    }
}
