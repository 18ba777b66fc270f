//! The page itself: tables as HTML, figures as <img> of the SVG files beside it.

use crate::results::Results;
use crate::sweep::RowKind;
use crate::table::comparison_rows;
use std::collections::BTreeSet;
use std::fmt::Write;

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;max-width:1400px;color:#222}\
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#eef3f8}td.best{font-weight:bold;background:#fdf1e6}\
figure{margin:12px 0 28px}figure img{max-width:100%;border:1px solid #ddd}figcaption{color:#555;font-size:90%}\
.note{color:#8a5a00}";

pub(crate) fn page(r: &Results, figures: &[(&str, &str)]) -> String {
    let title = if r.title.is_empty() {
        "micro evaluation report"
    } else {
        &r.title
    };
    let mut s = format!("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{0}</title><style>{STYLE}</style></head><body>\n<h1>{0}</h1>\n", esc(title));
    if let Some(src) = &r.source {
        let _ = writeln!(s, "<p>Source: <code>{}</code></p>", esc(src));
    }
    let _ = writeln!(
        s,
        "<p>Pairwise accuracy: a pair is right when sum<sub>k</sub> f<sub>k</sub>(x,c) &sigma;(&delta;<sub>k</sub>) &gt; 0.5 (ties count as wrong); the average is the unweighted mean over users (attributes).</p>"
    );
    for n in r
        .notes
        .iter()
        .chain(r.sweep.iter().flat_map(|sw| sw.notes.iter()))
    {
        let _ = writeln!(s, "<p class=\"note\">{}</p>", esc(n));
    }
    if let Some(seeds) = &r.seeds {
        seed_table(&mut s, seeds);
    }
    if !r.methods.is_empty() {
        s.push_str("<h2>Accuracy per user</h2>\n");
        if r.seeds.is_some() {
            s.push_str(
                "<p>The first training seed's models, in full (the figures below show them).</p>\n",
            );
        }
        method_table(&mut s, r);
        loss_table(&mut s, r);
    }
    for (name, caption) in figures {
        let _ = writeln!(
            s,
            "<figure><img src=\"{0}\" alt=\"{0}\"><figcaption>{1}</figcaption></figure>",
            esc(name),
            esc(caption)
        );
    }
    if r.sweep.is_some() {
        sweep_table(&mut s, r);
    }
    s.push_str("</body></html>\n");
    s
}

fn method_table(s: &mut String, r: &Results) {
    let rows = comparison_rows(&r.methods);
    let attrs: BTreeSet<&String> = rows.iter().flat_map(|(_, per, _)| per.keys()).collect();
    let best = |a: Option<&String>| {
        rows.iter()
            .filter_map(|(_, per, avg)| a.map_or(Some(*avg), |a| per.get(a).copied()))
            .fold(f64::NEG_INFINITY, f64::max)
    };
    s.push_str("<table><tr><th>method</th>");
    for a in &attrs {
        let _ = write!(s, "<th>{}</th>", esc(a));
    }
    s.push_str("<th>average</th></tr>\n");
    for (name, per, avg) in &rows {
        let _ = write!(s, "<tr><td>{}</td>", esc(name));
        for a in &attrs {
            cell(s, per.get(*a).copied(), best(Some(a)));
        }
        cell(s, Some(*avg), best(None));
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n<p>Rows “… best head” pick the best single head per user on the test pairs themselves (an oracle, as in the paper's Stage 1 analysis).</p>\n");
}

fn seed_table(s: &mut String, seeds: &crate::seeds::SeedSummary) {
    let _ = writeln!(
        s,
        "<h2>Stage 1 over {} training seeds</h2>\n<p>Test accuracy, mean ± std over training seeds {:?}.</p>",
        seeds.seeds.len(),
        seeds.seeds
    );
    let attrs: Vec<&String> = seeds
        .rows
        .first()
        .map(|r| r.per_attribute.keys().collect())
        .unwrap_or_default();
    s.push_str("<table><tr><th>method</th>");
    for a in &attrs {
        let _ = write!(s, "<th>{}</th>", esc(a));
    }
    s.push_str("<th>average</th></tr>\n");
    let stat = |s: &mut String, st: Option<&crate::metrics::Stat>| {
        match st {
            Some(st) => write!(s, "<td>{:.4} ± {:.4}</td>", st.mean, st.std),
            None => write!(s, "<td>–</td>"),
        }
        .ok();
    };
    for best in [false, true] {
        for r in seeds.rows.iter().filter(|r| !best || r.k > 1) {
            let name = if best {
                format!("{} best head", r.method)
            } else {
                r.method.clone()
            };
            let _ = write!(s, "<tr><td>{}</td>", esc(&name));
            for a in &attrs {
                let map = if best { &r.best_head } else { &r.per_attribute };
                stat(s, map.get(*a));
            }
            stat(
                s,
                Some(if best {
                    &r.best_head_average
                } else {
                    &r.average
                }),
            );
            s.push_str("</tr>\n");
        }
    }
    s.push_str("</table>\n");
}

fn cell(s: &mut String, v: Option<f64>, best: f64) {
    match v {
        Some(v) if v == best => write!(s, "<td class=\"best\">{v:.4}</td>"),
        Some(v) => write!(s, "<td>{v:.4}</td>"),
        None => write!(s, "<td>–</td>"),
    }
    .ok();
}

fn loss_table(s: &mut String, r: &Results) {
    s.push_str("<table><tr><th>method</th><th>K</th><th>split</th><th>pairs</th><th>log-loss (nats)</th></tr>\n");
    for m in &r.methods {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td></tr>",
            esc(&m.method),
            m.k,
            esc(&m.split),
            m.n_pairs,
            m.log_loss
        );
    }
    s.push_str("</table>\n");
}

fn sweep_table(s: &mut String, r: &Results) {
    let Some(sw) = &r.sweep else { return };
    let _ = writeln!(s, "<h2>Budget study</h2>\n<p>Accuracy, mean ± std over {} runs with different samples of B train pairs per user.</p>", sw.runs);
    s.push_str("<table><tr><th>method</th><th>B</th>");
    for a in &sw.attributes {
        let _ = write!(s, "<th>{}</th>", esc(a));
    }
    s.push_str("<th>average</th></tr>\n");
    for row in &sw.rows {
        for p in crate::table::shown_points(row) {
            let b = match row.kind {
                RowKind::Hyre => format!("{} test labels", p.budget),
                RowKind::Fixed => "any (Stage 1 weights)".to_string(),
                RowKind::Adapted => p.budget.to_string(),
            };
            let _ = write!(s, "<tr><td>{}</td><td>{}</td>", esc(&row.method), b);
            for a in &sw.attributes {
                match p.per_attribute.get(a) {
                    Some(st) => write!(s, "<td>{:.4} ± {:.4}</td>", st.mean, st.std),
                    None => write!(s, "<td>–</td>"),
                }
                .ok();
            }
            let _ = writeln!(
                s,
                "<td>{:.4} ± {:.4}</td></tr>",
                p.average.mean, p.average.std
            );
        }
    }
    s.push_str("</table>\n");
}
