//! What a budget study returns: rows of points (accuracy at one budget, mean ± std over runs),
//! and the pooling of studies of the same design.

use crate::error::{EvalError, Result};
use crate::evaluate::EvalReport;
use crate::metrics::Stat;
use micro_route::query::Selection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a row's numbers were obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowKind {
    /// Router adapted on B sampled pairs per attribute.
    Adapted,
    /// Stage 1 weights kept (no router, or a static mixture): the same at every budget.
    Fixed,
    /// Per-attribute HyRe weights from `budget` labelled test pairs per attribute.
    Hyre,
}

/// Accuracy at one budget, over runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub budget: usize,
    /// Over runs of the per-run unweighted mean over attributes.
    pub average: Stat,
    pub per_attribute: BTreeMap<String, Stat>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    pub method: String,
    pub kind: RowKind,
    pub points: Vec<SweepPoint>,
    /// How an adapted row's labelled pairs were picked (random for the other kinds).
    #[serde(default)]
    pub selection: Selection,
}

/// The whole study; `rows` in the order the models were given, HyRe rows last.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    pub budgets: Vec<usize>,
    pub runs: usize,
    pub seed: u64,
    pub hyre_shots: usize,
    /// The test attributes, sorted.
    pub attributes: Vec<String>,
    pub rows: Vec<SweepRow>,
    /// Caveats met on the way (short attributes, attributes with no train pairs).
    #[serde(default)]
    pub notes: Vec<String>,
}
pub(super) fn point(budget: usize, reports: &[EvalReport]) -> SweepPoint {
    let mut per: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in reports {
        for (a, v) in &r.per_attribute {
            per.entry(a.clone()).or_default().push(*v);
        }
    }
    SweepPoint {
        budget,
        average: Stat::of(reports.iter().map(|r| r.average).collect()),
        per_attribute: per.into_iter().map(|(a, v)| (a, Stat::of(v))).collect(),
    }
}

/// Studies of the same design (e.g. one per training seed) as one: each point's runs pooled, so
/// its mean ± std is over every (seed, run). Fails when the studies' rows or budgets differ.
pub fn pool_sweeps(reports: &[SweepReport]) -> Result<SweepReport> {
    let Some(first) = reports.first() else {
        return Err(EvalError::NoStudies);
    };
    let mut out = first.clone();
    for other in &reports[1..] {
        let same_design = other.budgets == first.budgets
            && other.attributes == first.attributes
            && other.rows.len() == first.rows.len();
        if !same_design {
            return Err(EvalError::StudiesDiffer);
        }
        for (row, o) in out.rows.iter_mut().zip(&other.rows) {
            if row.method != o.method || row.points.len() != o.points.len() {
                return Err(EvalError::StudyRows {
                    row: row.method.clone(),
                    other: o.method.clone(),
                });
            }
            for (p, q) in row.points.iter_mut().zip(&o.points) {
                p.average = pooled(&p.average, &q.average);
                for (a, st) in p.per_attribute.iter_mut() {
                    if let Some(qs) = q.per_attribute.get(a) {
                        *st = pooled(st, qs);
                    }
                }
            }
        }
        out.runs += other.runs;
        for n in &other.notes {
            if !out.notes.contains(n) {
                out.notes.push(n.clone());
            }
        }
    }
    Ok(out)
}

fn pooled(a: &Stat, b: &Stat) -> Stat {
    Stat::of(a.values.iter().chain(&b.values).copied().collect())
}

#[cfg(test)]
mod pool_tests {
    use super::*;

    fn study(values: &[f64]) -> SweepReport {
        let point = SweepPoint {
            budget: 10,
            average: Stat::of(values.to_vec()),
            per_attribute: [("u".to_string(), Stat::of(values.to_vec()))].into(),
        };
        SweepReport {
            budgets: vec![10],
            runs: values.len(),
            seed: 0,
            hyre_shots: 0,
            attributes: vec!["u".into()],
            rows: vec![SweepRow {
                method: "micro".into(),
                kind: RowKind::Adapted,
                points: vec![point],
                selection: Selection::Random,
            }],
            notes: vec![],
        }
    }

    #[test]
    fn pooled_points_are_over_every_run_of_every_study() {
        let p = pool_sweeps(&[study(&[0.5, 0.7]), study(&[0.9])]).unwrap();
        let avg = &p.rows[0].points[0].average;
        assert_eq!(p.runs, 3);
        assert!((avg.mean - 0.7).abs() < 1e-12);
        assert!((avg.std - (0.08f64 / 3.0).sqrt()).abs() < 1e-12);
        let mut other = study(&[0.1]);
        other.budgets = vec![20];
        assert!(pool_sweeps(&[study(&[0.5]), other]).is_err());
    }
}
