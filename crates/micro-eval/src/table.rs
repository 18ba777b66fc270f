//! Plain-text tables for the terminal.

use crate::evaluate::EvalReport;
use crate::sweep::{RowKind, SweepPoint, SweepReport, SweepRow};
use std::collections::BTreeSet;
use std::fmt::Write;

/// The full human-readable account of one evaluation: per-attribute accuracy, log-loss, best
/// head and backbone baseline; the head x attribute accuracy matrix; the mean router weights.
pub fn render_table(r: &EvalReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} ({} model, K={}) on the {} split: {} pairs, {} attributes",
        r.method,
        r.model_method,
        r.k,
        r.split,
        r.n_pairs,
        r.n.len()
    );
    let w = name_width(r.per_attribute.keys().map(String::as_str));
    let backbone = r.backbone.as_ref();
    let _ = write!(
        s,
        "\n{:<w$} {:>6} {:>9} {:>9} {:>13}",
        "attribute", "n", "accuracy", "log-loss", "best head"
    );
    if backbone.is_some() {
        let _ = write!(s, " {:>9}", "backbone");
    }
    s.push('\n');
    for (a, acc) in &r.per_attribute {
        let best = r.best_head[a];
        let head = format!("h{best} {:.4}", r.per_head[a][best]);
        let _ = write!(
            s,
            "{a:<w$} {:>6} {acc:>9.4} {:>9.4} {head:>13}",
            r.n[a], r.per_attribute_log_loss[a]
        );
        if let Some(b) = backbone {
            let _ = write!(s, " {:>9.4}", b.per_attribute[a]);
        }
        s.push('\n');
    }
    let _ = write!(
        s,
        "{:<w$} {:>6} {:>9.4} {:>9.4} {:>13}",
        "average",
        r.n_pairs,
        r.average,
        r.log_loss,
        format!("{:.4}", r.best_head_average)
    );
    if let Some(b) = backbone {
        let _ = write!(s, " {:>9.4}", b.average);
    }
    s.push_str("\n\nper-head accuracy (* marks the best head per attribute)\n");
    matrix(&mut s, r, w, |a| r.per_head[a].clone(), Some(&r.best_head));
    s.push_str("\nmean router weights f_k(x, c) per attribute\n");
    matrix(&mut s, r, w, |a| r.mean_weights[a].clone(), None);
    s
}

fn matrix(
    s: &mut String,
    r: &EvalReport,
    w: usize,
    row: impl Fn(&str) -> Vec<f64>,
    mark: Option<&std::collections::BTreeMap<String, usize>>,
) {
    let _ = write!(s, "{:<w$}", "attribute");
    for k in 0..r.k {
        let _ = write!(s, " {:>8}", format!("h{k}"));
    }
    s.push('\n');
    for a in r.per_attribute.keys() {
        let _ = write!(s, "{a:<w$}");
        for (k, v) in row(a).iter().enumerate() {
            let star = if mark.is_some_and(|m| m[a] == k) {
                "*"
            } else {
                " "
            };
            let _ = write!(s, " {v:>7.4}{star}");
        }
        s.push('\n');
    }
}

/// One row per method, one column per attribute plus the average; adds the backbone's own
/// reward and each multi-head model's oracle best head as extra rows.
pub fn render_comparison(reports: &[EvalReport]) -> String {
    let attrs: BTreeSet<&str> = reports.iter().flat_map(|r| r.attributes()).collect();
    let rows = comparison_rows(reports);
    let w = name_width(rows.iter().map(|(n, _, _)| n.as_str())).max(6);
    let mut s = format!("{:<w$}", "method");
    for a in &attrs {
        let _ = write!(s, " {:>col$}", a, col = a.len().max(7));
    }
    s.push_str("  average\n");
    for (name, per, avg) in &rows {
        let _ = write!(s, "{name:<w$}");
        for a in &attrs {
            let col = a.len().max(7);
            match per.get(*a) {
                Some(v) => write!(s, " {v:>col$.4}"),
                None => write!(s, " {:>col$}", "-"),
            }
            .ok();
        }
        let _ = writeln!(s, "  {avg:.4}");
    }
    s
}

/// (name, accuracy per attribute, average) rows of the method table, shared with the HTML report.
pub fn comparison_rows(
    reports: &[EvalReport],
) -> Vec<(String, std::collections::BTreeMap<String, f64>, f64)> {
    let mut rows = Vec::new();
    if let Some(b) = reports.iter().find_map(|r| r.backbone.as_ref()) {
        rows.push(("backbone".to_string(), b.per_attribute.clone(), b.average));
    }
    for r in reports {
        rows.push((r.method.clone(), r.per_attribute.clone(), r.average));
    }
    for r in reports.iter().filter(|r| r.k > 1) {
        let best = r
            .per_head
            .iter()
            .map(|(a, h)| (a.clone(), h[r.best_head[a]]))
            .collect();
        rows.push((format!("{} best head", r.method), best, r.best_head_average));
    }
    rows
}

/// Accuracy per attribute as mean ± std over runs, one block per budget.
pub fn render_sweep(sw: &SweepReport) -> String {
    let mut s = format!(
        "accuracy vs budget B (pairs per attribute), mean ± std over {} runs\n",
        sw.runs
    );
    let w = name_width(sw.rows.iter().map(|r| r.method.as_str())).max(6);
    let cell = |m: f64, sd: f64| format!("{m:.4}±{sd:.4}");
    let mut header = format!("{:<w$} {:>5}", "method", "B");
    for a in &sw.attributes {
        let _ = write!(header, " {:>col$}", a, col = a.len().max(13));
    }
    let _ = writeln!(header, " {:>13}", "average");
    s.push_str(&header);
    for row in &sw.rows {
        for p in shown_points(row) {
            let b = match row.kind {
                RowKind::Hyre => format!("{}*", p.budget),
                RowKind::Fixed => "any".to_string(),
                RowKind::Adapted => p.budget.to_string(),
            };
            let _ = write!(s, "{:<w$} {b:>5}", row.method);
            for a in &sw.attributes {
                let col = a.len().max(13);
                let v = p
                    .per_attribute
                    .get(a)
                    .map_or("-".to_string(), |st| cell(st.mean, st.std));
                let _ = write!(s, " {v:>col$}");
            }
            let _ = writeln!(s, " {:>13}", cell(p.average.mean, p.average.std));
        }
    }
    if sw.rows.iter().any(|r| r.kind == RowKind::Fixed) {
        let _ = writeln!(
            s,
            "B = any: the model keeps its Stage 1 weights, so every budget gives this figure"
        );
    }
    if sw.rows.iter().any(|r| r.kind == RowKind::Hyre) {
        let _ = writeln!(s, "* HyRe rows: B is the number of labelled test pairs per attribute, held out of the evaluation");
    }
    s
}

/// The points worth a table line: a row that does not adapt is the same at every budget.
pub(crate) fn shown_points(row: &SweepRow) -> &[SweepPoint] {
    match row.kind {
        RowKind::Fixed => &row.points[..row.points.len().min(1)],
        _ => &row.points,
    }
}

fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(|n| n.chars().count()).max().unwrap_or(0).max(9)
}
