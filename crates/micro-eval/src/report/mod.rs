//! The HTML report: `index.html` with SVG figures beside it.
//!
//! Figures: the method x user accuracy bars (`methods.svg`), the head x user accuracy heatmap
//! (`heads.svg`, the paper's Tables 7/8 as a picture), mean router weights per user
//! (`router_weights.svg`, the paper's Fig. 3), and accuracy against the Stage 2 budget with its
//! spread (`budget.svg` and `budget_attributes.svg`, the paper's Fig. 4).

pub mod figures;
mod html;

use crate::error::{EvalError, Result};
use crate::results::Results;
use figures::{budget_curve, budget_panels, grouped_bars, transpose, Heatmap};
use micro_route::query::Selection;
use std::path::{Path, PathBuf};

/// What [`write_report`] wrote.
#[derive(Clone, Debug)]
pub struct ReportFiles {
    pub index: PathBuf,
    pub figures: Vec<PathBuf>,
}

/// Writes `out_dir/index.html` and its figures (only those the results have data for).
pub fn write_report(results: &Results, out_dir: &Path) -> Result<ReportFiles> {
    if results.methods.is_empty() && results.sweep.is_none() {
        return Err(EvalError::NothingToReport);
    }
    std::fs::create_dir_all(out_dir).map_err(|e| EvalError::io(out_dir, e))?;
    let figs = render_figures(results)?;
    let mut written = Vec::new();
    for (name, _, svg) in &figs {
        let path = out_dir.join(name);
        std::fs::write(&path, svg).map_err(|e| EvalError::io(&path, e))?;
        written.push(path);
    }
    let captions: Vec<(&str, &str)> = figs
        .iter()
        .map(|(n, c, _)| (n.as_str(), c.as_str()))
        .collect();
    let index = out_dir.join("index.html");
    std::fs::write(&index, html::page(results, &captions)).map_err(|e| EvalError::io(&index, e))?;
    Ok(ReportFiles {
        index,
        figures: written,
    })
}

/// (file name, caption, SVG) for every figure the results support.
pub fn render_figures(results: &Results) -> Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    if !results.methods.is_empty() {
        let rows = crate::table::comparison_rows(&results.methods);
        let mut cats: Vec<String> = rows
            .iter()
            .flat_map(|(_, per, _)| per.keys().cloned())
            .collect();
        cats.sort();
        cats.dedup();
        let series: Vec<(String, Vec<f64>)> = rows
            .iter()
            .map(|(name, per, avg)| {
                let mut v: Vec<f64> = cats
                    .iter()
                    .map(|c| per.get(c).copied().unwrap_or(f64::NAN))
                    .collect();
                v.push(*avg);
                (name.clone(), v)
            })
            .collect();
        cats.push("average".into());
        let svg = grouped_bars("Pairwise accuracy per user (attribute)", &cats, &series)?;
        out.push((
            "methods.svg".into(),
            "Accuracy of each method per user, and the unweighted average.".into(),
            svg,
        ));
    }
    if let Some(r) = results.heads_report() {
        let attrs: Vec<String> = r.per_attribute.keys().cloned().collect();
        let mut rows: Vec<String> = (0..r.k).map(|k| format!("head {k}")).collect();
        let mut values = transpose(&r.per_head, r.k);
        rows.push(format!("{} (routed)", r.method));
        values.push(attrs.iter().map(|a| r.per_attribute[a]).collect());
        let marked = attrs
            .iter()
            .enumerate()
            .map(|(j, a)| (r.best_head[a], j))
            .collect();
        let heat = Heatmap {
            title: &format!("Accuracy of each head of `{}` per user", r.method),
            rows,
            cols: attrs.clone(),
            values,
            range: (0.0, 1.0),
            marked,
        };
        out.push(("heads.svg".into(), "Each head alone (rows) on each user's test pairs (columns); the outlined cell is the best head per user.".into(), heat.to_svg()?));
        let weights: Vec<Vec<f64>> = attrs.iter().map(|a| r.mean_weights[a].clone()).collect();
        let heat = Heatmap {
            title: &format!("Mean router weights f_k(x, c) of `{}` per user", r.method),
            rows: attrs,
            cols: (0..r.k).map(|k| format!("head {k}")).collect(),
            values: weights,
            range: (0.0, 1.0),
            marked: vec![],
        };
        out.push(("router_weights.svg".into(), "Mean router weight on each head over each user's test pairs (context-augmented prompts).".into(), heat.to_svg()?));
    }
    if let Some(sw) = &results.sweep {
        let mut caption = "Average accuracy against the Stage 2 budget B; bands are ± one std over runs, flat dashed lines do not adapt.".to_string();
        if sw.rows.iter().any(|r| r.selection == Selection::Active) {
            caption.push_str(" Triangles on a dashed line in a model's colour: its labelled pairs chosen one at a time by the information of their answer (`+active`) rather than at random.");
        }
        out.push(("budget.svg".into(), caption, budget_curve(sw)?));
        out.push((
            "budget_attributes.svg".into(),
            "The same per user.".into(),
            budget_panels(sw)?,
        ));
    }
    Ok(out)
}
