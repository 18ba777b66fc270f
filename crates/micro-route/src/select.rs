//! Keeping a subset of the heads, as a setting a user gives: the model does the slicing
//! ([`MixtureModel::select_heads`]: heads, router output rows or static logits together), and
//! what was removed is recorded in `ModelConfig.history` ([`MixtureModel::push_history`]).

use crate::error::Result;
use micro_model::MixtureModel;

/// The model restricted to the heads `keep` (in that order). Removing heads from a router
/// drops their softmax terms, so the remaining weights renormalise among themselves.
pub fn select_heads(model: &MixtureModel, keep: &[usize]) -> Result<MixtureModel> {
    Ok(model.select_heads(keep)?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use micro_cache::Matrix;
    use micro_model::{Activation, Gate, Router};

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
        MixtureModel::new(config, heads, Gate::Router(r)).unwrap()
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
        assert_eq!(s.heads().row(0), m.heads().row(3));
        assert_eq!(s.config().k, 2);
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
}
