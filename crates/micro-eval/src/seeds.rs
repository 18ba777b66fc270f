//! Stage 1 figures over several training seeds: per method and attribute, mean ± std.
//!
//! One training seed is not a result: float summation order alone moves a run by points (the
//! same seed gave a Stage 1 average of 0.8758 on one machine and 0.8960 on another). A
//! [`SeedSummary`] holds what each seed's evaluations said, aggregated.
//!
//! ```
//! use micro_eval::{summarize_seeds, EvalReport};
//! let report = |avg: f64| EvalReport {
//!     method: "micro".into(),
//!     k: 2,
//!     average: avg,
//!     best_head_average: avg + 0.1,
//!     per_attribute: [("u".to_string(), avg)].into(),
//!     ..Default::default()
//! };
//! let s = summarize_seeds(&[0, 1], &[vec![report(0.8)], vec![report(0.6)]]).unwrap();
//! assert!((s.rows[0].average.mean - 0.7).abs() < 1e-12);
//! assert!((s.rows[0].average.std - 0.1).abs() < 1e-12);
//! assert!((s.rows[0].best_head_average.mean - 0.8).abs() < 1e-12);
//! ```

use crate::error::{EvalError, Result};
use crate::evaluate::EvalReport;
use crate::metrics::Stat;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One method's figures over the seeds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedRow {
    pub method: String,
    /// Heads of the method's models.
    pub k: usize,
    pub per_attribute: BTreeMap<String, Stat>,
    pub average: Stat,
    /// Per attribute, the best head's accuracy (the paper's oracle).
    pub best_head: BTreeMap<String, Stat>,
    pub best_head_average: Stat,
}

/// Every method's [`SeedRow`], in the order the methods were given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedSummary {
    pub seeds: Vec<u64>,
    pub rows: Vec<SeedRow>,
}

/// Aggregates `runs[s]`, the reports of seed `seeds[s]`: the same methods in the same order.
pub fn summarize_seeds(seeds: &[u64], runs: &[Vec<EvalReport>]) -> Result<SeedSummary> {
    let Some(first) = runs.first() else {
        return Err(EvalError::NoSeeds);
    };
    if seeds.len() != runs.len() {
        return Err(EvalError::SeedsAndRuns {
            seeds: seeds.len(),
            runs: runs.len(),
        });
    }
    let mut rows = Vec::with_capacity(first.len());
    for (j, r0) in first.iter().enumerate() {
        let same: Vec<&EvalReport> = runs.iter().filter_map(|run| run.get(j)).collect();
        if same.len() != runs.len() || same.iter().any(|r| r.method != r0.method) {
            return Err(EvalError::SeedMethods {
                method: r0.method.clone(),
                position: j,
            });
        }
        let stat = |f: &dyn Fn(&EvalReport) -> Option<f64>| {
            Stat::of(same.iter().filter_map(|r| f(r)).collect())
        };
        let per_attribute = r0
            .per_attribute
            .keys()
            .map(|a| (a.clone(), stat(&|r| r.per_attribute.get(a).copied())))
            .collect();
        let best_head = r0
            .per_attribute
            .keys()
            .map(|a| (a.clone(), stat(&|r| best_head_of(r, a))))
            .collect();
        rows.push(SeedRow {
            method: r0.method.clone(),
            k: r0.k,
            per_attribute,
            average: stat(&|r| Some(r.average)),
            best_head,
            best_head_average: stat(&|r| Some(r.best_head_average)),
        });
    }
    Ok(SeedSummary {
        seeds: seeds.to_vec(),
        rows,
    })
}

fn best_head_of(r: &EvalReport, attr: &str) -> Option<f64> {
    let k = *r.best_head.get(attr)?;
    r.per_head.get(attr)?.get(k).copied()
}

/// A terminal table: one line per method, then one per method's best heads.
pub fn render_seed_summary(s: &SeedSummary) -> String {
    let attrs: Vec<&String> = s
        .rows
        .first()
        .map(|r| r.per_attribute.keys().collect())
        .unwrap_or_default();
    let w = s
        .rows
        .iter()
        .map(|r| r.method.len() + 10)
        .max()
        .unwrap_or(6)
        .max(6);
    let cw = attrs.iter().map(|a| a.len()).max().unwrap_or(0).max(13);
    let mut out = format!(
        "test accuracy, mean ± std over {} training seeds ({:?})\n{:<w$}",
        s.seeds.len(),
        s.seeds,
        "method"
    );
    for a in &attrs {
        let _ = write!(out, " {a:>cw$}");
    }
    let _ = writeln!(out, " {:>cw$}", "average");
    let fmt = |st: &Stat| format!("{:.4}±{:.4}", st.mean, st.std);
    for (suffix, pick) in [("", false), (" best head", true)] {
        for r in &s.rows {
            if pick && r.k < 2 {
                continue;
            }
            let _ = write!(out, "{:<w$}", format!("{}{suffix}", r.method));
            for a in &attrs {
                let st = if pick {
                    r.best_head.get(*a)
                } else {
                    r.per_attribute.get(*a)
                };
                let _ = write!(out, " {:>cw$}", st.map(fmt).unwrap_or_else(|| "-".into()));
            }
            let avg = if pick {
                &r.best_head_average
            } else {
                &r.average
            };
            let _ = writeln!(out, " {:>cw$}", fmt(avg));
        }
    }
    out
}
