//! Evidence the model did not train on: cross-fitted predictions for every training pair.
//!
//! Stage 2 and the per-user weights judge the heads and the shared predictions by how well they
//! predicted a user's (or a context's) labelled pairs. On pairs the model trained on, that
//! favours whatever overfits most: the heads, which each fit a part of the data, over the shared
//! mixture and the single head, and a user's table row over everything. So the training pairs
//! are split into folds by prompt, a model with the kept settings is trained on all folds but
//! one, and its predictions on the held-out fold are the evidence for those pairs. A fold
//! model's heads are matched to the final model's by the correlation of their margins over the
//! training pairs (Hungarian assignment), so that "head k" means the same head in the evidence
//! and in the model. Measured in a numpy replica of both stages (5 splits by prompt, B = 50
//! pairs per user, the heads and the shared predictions as experts): per-user accuracy with
//! cross-fitted evidence against in-sample evidence, PandaLM's annotators 0.5599 / 0.5533,
//! HH-RLHF users known by id 0.7178 / 0.7085, the built-in RPR-style set 0.8781 / 0.8740.
//!
//! The evidence is stored beside the model ([`EVIDENCE_FILE`], [`EVIDENCE_META`]) and refers to
//! the rows of the training cache, named by its pairs hash.

use crate::edit::SHARED_HEAD_LOGIT;
use crate::folder::ModelError;
use crate::model::MixtureModel;
use crate::router::log_softmax;
use crate::search::Search;
use crate::train::{train_on, TrainConfig, TrainError, TrainEvent};
use micro_cache::tensors::{self, TensorData, TensorFile};
use micro_cache::{Dtype, Matrix, TrainingArrays};
use pathfinding::prelude::{kuhn_munkres, Matrix as Weights};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Cross-fitted margins and gate weights, as `evidence.safetensors` holds them.
pub const EVIDENCE_FILE: &str = "evidence.safetensors";
/// Which cache and rows the evidence is for.
pub const EVIDENCE_META: &str = "evidence.json";

/// Folds of the cross-fit by default.
pub const DEFAULT_FOLDS: usize = 5;

/// What the evidence covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvidenceMeta {
    /// `pairs_hash` of the cache the rows are rows of.
    pub pairs_hash: String,
    pub folds: usize,
    /// The cache rows with evidence, in the order of the tensors' rows.
    pub rows: Vec<usize>,
}

/// Per training pair, what the model of the folds that did not contain it predicted.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    pub meta: EvidenceMeta,
    /// Each head's margin, [rows, K] (the final model's heads, shared head included).
    pub margins: Matrix,
    /// log f_k of the gate, with the pair's user row where the table knew the user, [rows, K].
    pub log_gate: Matrix,
    index: HashMap<usize, usize>,
}

impl Evidence {
    fn new(meta: EvidenceMeta, margins: Matrix, log_gate: Matrix) -> Self {
        let index = meta.rows.iter().enumerate().map(|(i, &r)| (r, i)).collect();
        Evidence {
            meta,
            margins,
            log_gate,
            index,
        }
    }

    /// The evidence row of cache row `row` of the cache hashed `pairs_hash`; `None` for another
    /// cache or a row the model did not train on (whose in-sample predictions are then clean).
    pub fn row_of(&self, pairs_hash: &str, row: usize) -> Option<usize> {
        if pairs_hash != self.meta.pairs_hash {
            return None;
        }
        self.index.get(&row).copied()
    }

    /// Heads covered (K of the model).
    pub fn k(&self) -> usize {
        self.margins.cols
    }

    /// Writes `dir/evidence.safetensors` and `dir/evidence.json`.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let list = [
            ("margins", TensorData::Matrix(&self.margins)),
            ("log_gate", TensorData::Matrix(&self.log_gate)),
        ];
        tensors::write(&dir.join(EVIDENCE_FILE), &list, Dtype::F32, None)?;
        let json = serde_json::to_string(&self.meta)
            .map_err(|e| ModelError::invalid(dir, e.to_string()))?;
        std::fs::write(dir.join(EVIDENCE_META), json)
            .map_err(|e| ModelError::invalid(&dir.join(EVIDENCE_META), e.to_string()))
    }

    /// Reads the evidence beside a model; `Ok(None)` when the folder has none.
    pub fn load(dir: &Path) -> Result<Option<Self>, ModelError> {
        let meta_path = dir.join(EVIDENCE_META);
        if !meta_path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&meta_path)
            .map_err(|e| ModelError::invalid(&meta_path, e.to_string()))?;
        let meta: EvidenceMeta = serde_json::from_str(&text)
            .map_err(|e| ModelError::invalid(&meta_path, format!("invalid evidence.json: {e}")))?;
        let mut file = TensorFile::open(&dir.join(EVIDENCE_FILE))?;
        let margins = file.read_matrix("margins")?;
        let log_gate = file.read_matrix("log_gate")?;
        let n = meta.rows.len();
        if margins.rows != n || log_gate.rows != n || margins.cols != log_gate.cols {
            return Err(ModelError::invalid(
                &dir.join(EVIDENCE_FILE),
                format!(
                    "{n} rows in evidence.json, margins [{}, {}] and log_gate [{}, {}]",
                    margins.rows, margins.cols, log_gate.rows, log_gate.cols
                ),
            ));
        }
        Ok(Some(Evidence::new(meta, margins, log_gate)))
    }
}

/// Cross-fits `model` (from [`crate::train_search`], whose `search` it recorded) on the training
/// pairs of `arrays` in `folds` folds by prompt. `None` when there is nothing to weigh: one head,
/// or no router.
pub fn cross_fit(
    arrays: &TrainingArrays,
    model: &MixtureModel,
    folds: usize,
    mut progress: impl FnMut(usize, &TrainEvent) + Send,
) -> Result<Option<Evidence>, TrainError> {
    let Some(stage1) = model.config().training.stage1.as_ref() else {
        return Ok(None);
    };
    if model.router().is_none() || model.k() < 2 || folds < 2 {
        return Ok(None);
    }
    let cfg = &stage1.hyperparameters;
    let single = shared_head_config(model, cfg);
    let rows = crate::train::train_rows_of(arrays)?;
    let fold_of = fold_ids(arrays, &rows, folds, cfg.seed);
    // The model's heads but the shared one, in order: what the fold mixtures' heads match.
    let mixture: Vec<usize> = (0..model.k())
        .filter(|&h| Some(h) != model.shared_head())
        .collect();
    let full = margins_of(&select(model, &mixture), arrays, &rows);
    let (mut margins, mut log_gate) = (vec![vec![]; rows.len()], vec![vec![]; rows.len()]);
    for f in 0..folds {
        let fit: Vec<usize> = (rows.iter().zip(&fold_of))
            .filter(|(_, &g)| g != f)
            .map(|(&r, _)| r)
            .collect();
        let (fold, _) = train_on(arrays, &fit, cfg, |e| progress(f, e))?;
        let perm = align(&full, &margins_of(&fold, arrays, &rows));
        let single_fold = match &single {
            Some(c) => Some(train_on(arrays, &fit, c, |e| progress(f, e))?.0),
            None => None,
        };
        for (j, (&r, _)) in (rows.iter().zip(&fold_of))
            .enumerate()
            .filter(|(_, (_, &g))| g == f)
        {
            let diff = arrays.diff.row(r);
            let m = fold.margins(diff);
            let z = fold.logits_for(arrays.prompt.row(r), arrays.pairs[r].user_id.as_deref());
            let single_margin = single_fold.as_ref().map_or(0.0, |s| s.margins(diff)[0]);
            // Each of the model's heads: its matched fold head, or the single fold model.
            let mut matched = perm.iter();
            let (mut row, mut logits) = (Vec::new(), Vec::new());
            for h in 0..model.k() {
                if Some(h) == model.shared_head() {
                    row.push(single_margin);
                    logits.push(SHARED_HEAD_LOGIT);
                } else if let Some(&p) = matched.next() {
                    row.push(m[p]);
                    logits.push(z[p]);
                }
            }
            margins[j] = row;
            log_gate[j] = log_softmax(&logits);
        }
    }
    let meta = EvidenceMeta {
        pairs_hash: arrays.meta.pairs_hash.clone(),
        folds,
        rows,
    };
    Ok(Some(Evidence::new(
        meta,
        Matrix::from_rows(&margins),
        Matrix::from_rows(&log_gate),
    )))
}

/// The settings the model's shared head was trained with, from the search's record.
fn shared_head_config(model: &MixtureModel, cfg: &TrainConfig) -> Option<TrainConfig> {
    model.shared_head()?;
    let search: &Search = model.config().training.search.as_ref()?;
    let t = &search.trials[search.shared_head_from?];
    Some(TrainConfig {
        method: crate::Method::Single,
        k: 1,
        users: false,
        alpha: t.alpha,
        lr: t.lr,
        ..cfg.clone()
    })
}

/// Each training row's fold: distinct prompts shuffled with `seed`, dealt round-robin.
fn fold_ids(arrays: &TrainingArrays, rows: &[usize], folds: usize, seed: u64) -> Vec<usize> {
    let groups = crate::train::prompt_groups(&arrays.pairs);
    let mut distinct: Vec<u64> = rows.iter().map(|&r| groups[r]).collect();
    distinct.sort_unstable();
    distinct.dedup();
    distinct.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0xC205_5F17));
    let fold: HashMap<u64, usize> = (distinct.iter().enumerate())
        .map(|(i, &g)| (g, i % folds))
        .collect();
    rows.iter().map(|&r| fold[&groups[r]]).collect()
}

/// `model` restricted to the heads `keep` (all valid).
fn select(model: &MixtureModel, keep: &[usize]) -> MixtureModel {
    model
        .select_heads(keep)
        .expect("the heads kept are the model's own")
}

/// The margins of every head of `model` on `rows`, one vector per head.
fn margins_of(model: &MixtureModel, arrays: &TrainingArrays, rows: &[usize]) -> Vec<Vec<f64>> {
    let mut cols = vec![Vec::with_capacity(rows.len()); model.k()];
    for &r in rows {
        for (c, m) in cols.iter_mut().zip(model.margins(arrays.diff.row(r))) {
            c.push(m as f64);
        }
    }
    cols
}

/// `perm[k]`: the head of the fold model that matches the final model's head k, the assignment
/// of largest total correlation of their margins.
pub(crate) fn align(full: &[Vec<f64>], fold: &[Vec<f64>]) -> Vec<usize> {
    let k = full.len();
    // Correlations in millionths: the assignment solver works on integers.
    let rows: Vec<Vec<i64>> = full
        .iter()
        .map(|a| {
            fold.iter()
                .map(|b| (correlation(a, b) * 1e6) as i64)
                .collect()
        })
        .collect();
    match Weights::from_rows(rows) {
        Ok(w) if k > 0 => kuhn_munkres(&w).1,
        _ => (0..k).collect(),
    }
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    let d = (saa * sbb).sqrt();
    if d > 0.0 {
        sab / d
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::tests::{arrays, quick};
    use crate::{train_search, Grid};

    /// The evidence covers every training pair with the final model's heads (the shared one
    /// included), matched: each head's cross-fitted margins follow the model's own.
    #[test]
    fn every_training_pair_gets_the_prediction_of_a_model_that_did_not_see_it() {
        let mut data = arrays(600, 6, &["a", "b"], &[false, true], 5);
        data.meta.pairs_hash = "h".into();
        let grid = Grid {
            alphas: vec![0.05],
            lrs: vec![1e-2],
            ..Grid::default()
        };
        let (model, _, _) = train_search(&data, &quick(2), &grid, |_| {}).unwrap();
        assert_eq!((model.k(), model.shared_head()), (3, Some(2)));
        let ev = cross_fit(&data, &model, 3, |_, _| {}).unwrap().unwrap();
        assert_eq!(ev.meta.rows, (0..600).collect::<Vec<_>>());
        assert_eq!((ev.margins.rows, ev.k()), (600, 3));
        assert_eq!(ev.row_of("h", 7), Some(7));
        assert_eq!(ev.row_of("other cache", 7), None);
        let rows: Vec<usize> = (0..600).collect();
        // (The shared head is the single model, which learns little where users reverse each
        // other: its margins are noise and are not compared.)
        let full = margins_of(&select(&model, &[0, 1]), &data, &rows);
        for (h, own) in full.iter().enumerate() {
            let oof: Vec<f64> = (0..600).map(|i| ev.margins.row(i)[h] as f64).collect();
            assert!(correlation(own, &oof) > 0.8, "head {h}");
        }
        // The gate's weights sum to one and give the shared head nothing.
        let w: Vec<f32> = ev.log_gate.row(0).iter().map(|l| l.exp()).collect();
        assert!(
            (w.iter().sum::<f32>() - 1.0).abs() < 1e-4 && w[2] < 1e-9,
            "{w:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        ev.save(dir.path()).unwrap();
        assert_eq!(Evidence::load(dir.path()).unwrap(), Some(ev));
        assert_eq!(Evidence::load(&dir.path().join("none")).unwrap(), None);
    }

    /// Oracle: a permutation of the heads, with noise, is recovered whatever it is.
    #[test]
    fn alignment_recovers_a_permutation_of_the_heads() {
        let heads: Vec<Vec<f64>> = (0..4)
            .map(|h| {
                (0..50)
                    .map(|i| ((i * (h + 2)) as f64 * 0.37).sin())
                    .collect()
            })
            .collect();
        let perm = [2usize, 0, 3, 1];
        // fold head perm[k] is the full model's head k, slightly changed.
        let mut fold = vec![vec![]; 4];
        for (k, &p) in perm.iter().enumerate() {
            fold[p] = heads[k]
                .iter()
                .enumerate()
                .map(|(i, v)| v + 0.01 * (i as f64).cos())
                .collect();
        }
        assert_eq!(align(&heads, &fold), perm);
        assert!((correlation(&heads[0], &heads[0]) - 1.0).abs() < 1e-12);
    }
}
