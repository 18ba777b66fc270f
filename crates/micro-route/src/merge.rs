//! Merging redundant heads (the paper's mitigation for an overestimated K): heads whose margins
//! on held-out pairs correlate above a threshold are merged into one.
//!
//! Clusters are formed greedily: heads in decreasing order of router mass (their mean weight on
//! the held-out prompts) each lead a cluster and absorb every not-yet-assigned head correlated
//! with the leader above the threshold. Comparing with the leader only (not single linkage)
//! keeps a chain of pairwise-similar heads from merging two dissimilar ends.
//!
//! The merged head is the mass-weighted average of its members (for highly correlated heads,
//! close to either, and an ensemble of both). Its gate is the leader's: a static gate's logit
//! becomes the log-sum-exp of the members' (exact: the cluster keeps its total weight); a
//! router's output row is the leader's with its bias raised by ln(cluster mass / leader mass),
//! so the cluster keeps its mean weight on the held-out prompts (a softmax cannot represent a
//! sum of two of its terms exactly).

use crate::accuracy::{average, by_attribute, routed_credit};
use crate::error::{Result, RouteError};
use crate::likelihood::{check_compatible, head_margins};
use micro_cache::{EmbeddingCache, Matrix, TrainingArrays};
use micro_model::{HistoryEvent, MixtureModel};
use serde::Serialize;

/// Correlation above which heads are merged by default.
pub const DEFAULT_MERGE_THRESHOLD: f64 = 0.9;

/// What [`merge_correlated`] did.
#[derive(Clone, Debug, Serialize)]
pub struct MergeReport {
    pub threshold: f64,
    pub pairs: usize,
    /// Pearson correlation of the heads' margins, [K, K] row-major.
    pub correlation: Vec<f64>,
    /// Mean router weight of each original head on the held-out prompts.
    pub mass: Vec<f64>,
    /// Original head indices per merged head, leader first.
    pub clusters: Vec<Vec<usize>>,
    /// Average accuracy over attributes on the held-out pairs, before and after.
    pub accuracy_before: f64,
    pub accuracy_after: f64,
}

/// Merges the heads whose margins on the pairs `idx` correlate above `threshold`.
pub fn merge_correlated(
    model: &MixtureModel,
    cache: &EmbeddingCache,
    idx: &[usize],
    threshold: f64,
) -> Result<(MixtureModel, MergeReport)> {
    if !(-1.0..=1.0).contains(&threshold) {
        return Err(RouteError::Threshold { threshold });
    }
    check_compatible(model, cache)?;
    if idx.len() < 3 {
        return Err(RouteError::TooFewToCorrelate { pairs: idx.len() });
    }
    let k = model.k();
    let correlation = correlation_matrix(&head_margins(model, cache, idx), k);
    let mass = router_mass(model, cache, idx);
    let clusters = cluster(&correlation, &mass, k, threshold);
    let merged = build(model, &clusters, &mass)?;
    let before = average(&by_attribute(
        cache,
        idx,
        &routed_credit(model, cache, idx, &Default::default()),
    ));
    let after = average(&by_attribute(
        cache,
        idx,
        &routed_credit(&merged, cache, idx, &Default::default()),
    ));
    let report = MergeReport {
        threshold,
        pairs: idx.len(),
        correlation,
        mass,
        clusters,
        accuracy_before: before,
        accuracy_after: after,
    };
    let mut merged = merged;
    if report.clusters.len() < k {
        merged.push_history(HistoryEvent::Merge {
            clusters: report.clusters.clone(),
            threshold,
            pairs: idx.len(),
            removed: removed(&report.clusters),
            rule: "mass-weighted average of member heads; leader's router row".into(),
        });
    }
    Ok((merged, report))
}

/// `micro train --heads auto`: from a model trained with a generous K on `arrays`, merge the
/// heads whose margins correlate above `threshold` on `held`, the training pairs the trainer
/// held out, when there are at least [`AUTO_MIN_PAIRS`] of them; otherwise on every training
/// pair (correlations of frozen heads' predictions need no labels, so pairs the heads were fit
/// on cost independence, not validity). The test split is never looked at.
pub fn auto_heads(
    model: &MixtureModel,
    arrays: &TrainingArrays,
    held: &[usize],
    threshold: f64,
) -> Result<(MixtureModel, MergeReport)> {
    let idx: Vec<usize> = if held.len() >= AUTO_MIN_PAIRS {
        held.to_vec()
    } else {
        (0..arrays.pairs.len())
            .filter(|&i| arrays.pairs[i].is_train())
            .collect()
    };
    let held = held_out_cache(arrays, &idx)?;
    let all: Vec<usize> = (0..held.len()).collect();
    merge_correlated(model, &held, &all, threshold)
}

/// Held-out training pairs above which `auto_heads` compares heads on them alone.
pub const AUTO_MIN_PAIRS: usize = 100;

/// The rows `idx` as a cache whose chosen embedding is h_w - h_l and rejected is 0: all the
/// heads read is the difference.
fn held_out_cache(arrays: &TrainingArrays, idx: &[usize]) -> Result<EmbeddingCache> {
    let diff = arrays.diff.select_rows(idx);
    let zeros = Matrix::zeros(diff.rows, diff.cols);
    let pairs = idx.iter().map(|&i| arrays.pairs[i].clone()).collect();
    EmbeddingCache::new(
        arrays.meta.clone(),
        pairs,
        diff,
        zeros,
        arrays.prompt.select_rows(idx),
    )
    .map_err(RouteError::from)
}

fn removed(clusters: &[Vec<usize>]) -> Vec<usize> {
    let mut v: Vec<usize> = clusters
        .iter()
        .flat_map(|c| c[1..].iter().copied())
        .collect();
    v.sort_unstable();
    v
}

/// Pearson correlation between columns of `m` [n, k]; 0 where a column is constant.
pub fn correlation_matrix(m: &[f32], k: usize) -> Vec<f64> {
    let n = (m.len() / k.max(1)) as f64;
    let mean: Vec<f64> = (0..k)
        .map(|j| m.iter().skip(j).step_by(k).map(|&v| v as f64).sum::<f64>() / n)
        .collect();
    let mut cov = vec![0.0f64; k * k];
    for row in m.chunks_exact(k) {
        for a in 0..k {
            let da = row[a] as f64 - mean[a];
            for b in a..k {
                cov[a * k + b] += da * (row[b] as f64 - mean[b]);
            }
        }
    }
    let mut corr = vec![0.0f64; k * k];
    for a in 0..k {
        for b in a..k {
            let denom = (cov[a * k + a] * cov[b * k + b]).sqrt();
            let c = if a == b {
                1.0
            } else if denom > 0.0 {
                cov[a * k + b] / denom
            } else {
                0.0
            };
            corr[a * k + b] = c;
            corr[b * k + a] = c;
        }
    }
    corr
}

/// Mean weight of each head over the pairs, each routed as Stage 1 was trained to route.
fn router_mass(model: &MixtureModel, cache: &EmbeddingCache, idx: &[usize]) -> Vec<f64> {
    let mut mass = vec![0.0f64; model.k()];
    let inputs = cache.router_inputs(model.config().router_input);
    for &i in idx {
        for (m, w) in mass.iter_mut().zip(model.weights(inputs.row(i))) {
            *m += w as f64 / idx.len() as f64;
        }
    }
    mass
}

/// Leader-greedy clusters (see the module docs), leaders in decreasing mass.
fn cluster(corr: &[f64], mass: &[f64], k: usize, threshold: f64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| mass[b].total_cmp(&mass[a]).then(a.cmp(&b)));
    let mut taken = vec![false; k];
    let mut clusters = Vec::new();
    for &lead in &order {
        if taken[lead] {
            continue;
        }
        taken[lead] = true;
        let mut c = vec![lead];
        for &h in &order {
            if !taken[h] && corr[lead * k + h] > threshold {
                taken[h] = true;
                c.push(h);
            }
        }
        clusters.push(c);
    }
    clusters
}

/// The merged model: the arithmetic (mass-weighted heads, the leader's gate row given the
/// cluster's weight) is the model's own, [`MixtureModel::merge_heads`].
fn build(model: &MixtureModel, clusters: &[Vec<usize>], mass: &[f64]) -> Result<MixtureModel> {
    Ok(model.merge_heads(clusters, mass)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Oracle: correlations of constructed columns (identical, negated, scaled, independent).
    #[test]
    fn correlation_of_known_columns() {
        let a = [1.0f32, 2.0, 3.0, 5.0];
        let other = [2.0f32, -1.0, 2.0, -1.0];
        let m: Vec<f32> = (0..4)
            .flat_map(|i| [a[i], -a[i], 3.0 * a[i] + 1.0, other[i], 7.0])
            .collect();
        let c = correlation_matrix(&m, 5);
        assert!((c[1] + 1.0).abs() < 1e-12 && (c[2] - 1.0).abs() < 1e-12);
        let direct = {
            let (ma, mo) = (11.0 / 4.0, 0.5);
            let cov: f64 = (0..4)
                .map(|i| (a[i] as f64 - ma) * (other[i] as f64 - mo))
                .sum();
            let va: f64 = (0..4).map(|i| (a[i] as f64 - ma).powi(2)).sum();
            let vo: f64 = (0..4).map(|i| (other[i] as f64 - mo).powi(2)).sum();
            cov / (va * vo).sqrt()
        };
        assert!((c[3] - direct).abs() < 1e-12);
        assert_eq!(c[4], 0.0);
        assert_eq!(c[4 * 5 + 4], 1.0);
    }

    #[test]
    fn clusters_follow_the_leader_not_chains() {
        // 0~1 and 1~2 correlate above 0.9, 0 and 2 do not: 0 leads and takes only 1.
        let k = 3;
        let corr = vec![1.0, 0.95, 0.5, 0.95, 1.0, 0.95, 0.5, 0.95, 1.0];
        assert_eq!(
            cluster(&corr, &[0.5, 0.3, 0.2], k, 0.9),
            vec![vec![0, 1], vec![2]]
        );
        assert_eq!(
            cluster(&corr, &[0.2, 0.5, 0.3], k, 0.9),
            vec![vec![1, 2, 0]]
        );
    }

    #[test]
    fn static_gate_keeps_the_cluster_weight_exactly() {
        let mut m = crate::select::tests::model(3, 2, None);
        m.set_gate(micro_model::Gate::Static(vec![0.2, -0.4, 1.0]))
            .unwrap();
        let merged = build(&m, &[vec![2, 0], vec![1]], &[0.3, 0.2, 0.5]).unwrap();
        let (w0, w1) = (m.weights(&[0.0, 0.0]), merged.weights(&[0.0, 0.0]));
        assert!((w1[0] - (w0[2] + w0[0])).abs() < 1e-6 && (w1[1] - w0[1]).abs() < 1e-6);
        let want: Vec<f32> = (0..2)
            .map(|j| {
                (0.5 * m.heads().row(2)[j] as f64 + 0.3 * m.heads().row(0)[j] as f64) as f32 / 0.8
            })
            .collect();
        for (g, w) in merged.heads().row(0).iter().zip(&want) {
            assert!((g - w).abs() < 1e-6);
        }
    }
}
