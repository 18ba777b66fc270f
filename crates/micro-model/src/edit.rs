//! The operations that change a trained model: keeping a subset of its heads, merging heads,
//! replacing the gate (Stage 2's adapted router), editing head weights in place, and recording
//! what was done. Each keeps `config.json` true to the tensors, so other crates never touch the
//! router's rows or `config.k` themselves.

use crate::folder::ModelError;
use crate::gate::Gate;
use crate::model::{check_parts, held_gate, MixtureModel};
use crate::record::{HistoryEvent, Training};

/// The gate's logit for the shared head: against logits of ordinary size (|z| < 10) its weight
/// is below e^-20, about 2e-9, and typically far less.
pub const SHARED_HEAD_LOGIT: f32 = -30.0;

impl MixtureModel {
    /// The model restricted to the heads `keep` (in that order). Removing heads from a router
    /// drops their softmax terms, so the remaining weights renormalise among themselves.
    pub fn select_heads(&self, keep: &[usize]) -> Result<MixtureModel, ModelError> {
        let k = self.k();
        if keep.is_empty() {
            return Err(ModelError::NoHeadLeft);
        }
        if let Some(bad) = keep.iter().find(|&&h| h >= k) {
            return Err(ModelError::NoSuchHead { head: *bad, k });
        }
        let mut out = self.clone();
        out.heads = self.heads.select_rows(keep);
        out.config.k = keep.len();
        out.gate = self.gate.select(keep);
        out.users = self.users.as_ref().map(|t| t.select(keep));
        out.config.shared_head =
            (self.config.shared_head).and_then(|h| keep.iter().position(|&kept| kept == h));
        Ok(out)
    }

    /// Appends `head` (the single BT model trained beside the mixture) as the last head, the
    /// shared head: the gate gives it the logit [`SHARED_HEAD_LOGIT`], so the model's predictions
    /// stay what they were (its weight is below 1e-12 against logits of ordinary size), while
    /// Stage 2 and the server can weigh it as an expert of its own.
    pub fn append_shared_head(&mut self, head: &[f32]) -> Result<(), ModelError> {
        if head.len() != self.config.dim {
            return Err(ModelError::HeadsShape {
                heads: [1, head.len()],
                config: [1, self.config.dim],
            });
        }
        let mut rows: Vec<Vec<f32>> = (0..self.k()).map(|h| self.heads.row(h).to_vec()).collect();
        rows.push(head.to_vec());
        self.heads = micro_cache::Matrix::from_rows(&rows);
        self.gate.append_head(SHARED_HEAD_LOGIT);
        self.users = self.users.as_ref().map(|t| t.with_column(0.0));
        self.config.k += 1;
        self.config.shared_head = Some(self.config.k - 1);
        Ok(())
    }

    /// Merges each cluster of heads (leader first) into one: the merged head is the average of
    /// its members weighted by `mass` (each head's mean router weight; equal shares when the
    /// cluster has none), and its gate row is the leader's given the cluster's weight
    /// ([`Gate`]'s merge rule). Every head must be in exactly one cluster.
    pub fn merge_heads(
        &self,
        clusters: &[Vec<usize>],
        mass: &[f64],
    ) -> Result<MixtureModel, ModelError> {
        let k = self.k();
        let mut seen: Vec<usize> = clusters.iter().flatten().copied().collect();
        seen.sort_unstable();
        if mass.len() != k || seen != (0..k).collect::<Vec<_>>() {
            return Err(ModelError::Clusters {
                k,
                clusters: clusters.to_vec(),
                masses: mass.len(),
            });
        }
        let leaders: Vec<usize> = clusters.iter().map(|c| c[0]).collect();
        let mut out = self.select_heads(&leaders)?;
        for (j, c) in clusters.iter().enumerate() {
            let total: f64 = c.iter().map(|&h| mass[h]).sum();
            let row = out.heads.row_mut(j);
            row.fill(0.0);
            for &h in c {
                let share = if total > 0.0 {
                    mass[h] / total
                } else {
                    1.0 / c.len() as f64
                };
                for (o, v) in row.iter_mut().zip(self.heads.row(h)) {
                    *o += (share * *v as f64) as f32;
                }
            }
            out.gate.absorb(j, &self.gate, c, mass);
            if let (Some(t), Some(old)) = (out.users.as_mut(), self.users.as_ref()) {
                t.absorb(j, old, c);
            }
            // A merged head is no longer the single model alone.
            if c.len() > 1 && out.config.shared_head == Some(j) {
                out.config.shared_head = None;
            }
        }
        Ok(out)
    }

    /// Replaces the gate (e.g. with Stage 2's adapted router); `config.json`'s router kind,
    /// hidden width and activation follow it. Refused if it mixes another number of heads or
    /// reads another input width.
    pub fn set_gate(&mut self, gate: Gate) -> Result<(), ModelError> {
        let mut config = self.config.clone();
        config.router = gate.kind();
        config.router_hidden = gate.router().and_then(|r| r.hidden);
        if let Some(r) = gate.router().filter(|r| r.hidden.is_some()) {
            config.activation = r.activation;
        }
        check_parts(&config, &self.heads, &gate)?;
        self.gate = held_gate(gate, self.k());
        self.config = config;
        Ok(())
    }

    /// Head `h`'s weights, to edit in place (its width cannot change).
    ///
    /// # Panics
    /// When `h` is not below K.
    pub fn head_mut(&mut self, h: usize) -> &mut [f32] {
        self.heads.row_mut(h)
    }

    /// Multiplies every head's weights by `factor` (sharper or flatter margins).
    pub fn scale_heads(&mut self, factor: f32) {
        self.heads.data.iter_mut().for_each(|w| *w *= factor);
    }

    /// `config.json`'s `training` record, for a later stage to add to.
    pub fn training_mut(&mut self) -> &mut Training {
        &mut self.config.training
    }

    /// Appends `event` to `config.history`.
    pub fn push_history(&mut self, event: HistoryEvent) {
        self.config.history.push(event);
    }
}

#[cfg(test)]
mod tests {
    use crate::gate::{Gate, RouterKind};
    use crate::model::{MixtureModel, ModelConfig};
    use crate::router::{Activation, Router};
    use micro_cache::Matrix;

    /// Three heads on 2-d responses with a linear router on 2-d prompts.
    fn model() -> MixtureModel {
        let config: ModelConfig = serde_json::from_value(serde_json::json!({
            "format_version": 1, "method": "micro", "k": 3, "dim": 2, "prompt_dim": 2,
            "router": "linear", "backbone": {"name": "t", "kind": "synthetic"},
        }))
        .unwrap();
        let mut r = Router::zeros(2, 3, None, Activation::Relu);
        r.w2 = vec![1.0, 0.0, 0.0, 1.0, -1.0, -1.0];
        r.b2 = vec![0.1, 0.2, 0.3];
        let heads = Matrix::new(3, 2, vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        MixtureModel::new(config, heads, Gate::Router(r)).unwrap()
    }

    #[test]
    fn parts_that_disagree_are_refused() {
        let m = model();
        let wrong_k = Matrix::new(2, 2, vec![0.0; 4]);
        let err = MixtureModel::new(m.config().clone(), wrong_k, m.gate().clone()).unwrap_err();
        assert!(err.to_string().contains("config.json says [3, 2]"), "{err}");
        let mut two = m.clone();
        assert!(two.set_gate(Gate::Static(vec![0.0; 2])).is_err());
        assert_eq!(two, m, "a refused gate leaves the model as it was");
    }

    #[test]
    fn selecting_and_replacing_keep_the_config_true_to_the_tensors() {
        let m = model();
        let s = m.select_heads(&[2, 0]).unwrap();
        assert_eq!((s.k(), s.config().k), (2, 2));
        assert_eq!(s.heads().row(0), &[1.0, 1.0]);
        assert_eq!(
            s.router().map(|r| (r.k, r.b2.clone())),
            Some((2, vec![0.3, 0.1]))
        );
        let mut st = m.clone();
        st.set_gate(Gate::Uniform).unwrap();
        assert_eq!(st.config().router, RouterKind::Static);
        assert_eq!(st.gate(), &Gate::Static(vec![0.0; 3]));
        assert!((st.weights(&[]).iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn merged_heads_average_by_mass_and_keep_the_cluster_weight() {
        let mut m = model();
        m.set_gate(Gate::Static(vec![0.0, 1.0, 2.0])).unwrap();
        let merged = m
            .merge_heads(&[vec![1, 0], vec![2]], &[0.25, 0.75, 0.5])
            .unwrap();
        // (0.75 (0, 1) + 0.25 (1, 0)) / 1: the heavier member counts three times as much.
        assert_eq!(merged.heads().row(0), &[0.25, 0.75]);
        let (w0, w1) = (m.weights(&[]), merged.weights(&[]));
        assert!((w1[0] - (w0[0] + w0[1])).abs() < 1e-6 && (w1[1] - w0[2]).abs() < 1e-6);
        assert!(m.merge_heads(&[vec![1, 0]], &[0.25, 0.75, 0.5]).is_err());
    }
}
