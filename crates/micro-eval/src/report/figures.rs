//! The report's figures as SVG strings, drawn with plotters' SVG backend (text stays SVG text,
//! so no font files are needed).

use crate::error::{EvalError, Result};
use crate::sweep::{RowKind, SweepReport};
use micro_route::query::Selection;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// What plotters' SVG backend fails with.
type DrawError = DrawingAreaErrorKind<std::io::Error>;

fn plot_err(figure: &str) -> impl Fn(DrawError) -> EvalError + '_ {
    move |e| EvalError::Plot {
        figure: figure.to_string(),
        message: e.to_string(),
    }
}

/// Approximate width in pixels of `text` at `size` (sans-serif averages ~0.6 em per glyph).
fn text_width(text: &str, size: f64) -> i32 {
    (text.chars().count() as f64 * size * 0.6).ceil() as i32
}

fn text_style(size: f64, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font()).pos(Pos::new(h, v))
}

/// A sequential blue scale (light at `lo`, dark at `hi`), like matplotlib's "Blues".
fn blues(v: f64, lo: f64, hi: f64) -> RGBColor {
    let t = if hi > lo {
        ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
    } else {
        0.5
    };
    let (a, b) = ((247.0, 251.0, 255.0), (8.0, 48.0, 107.0));
    let mix = |x: f64, y: f64| (x + (y - x) * t).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A rows x columns grid of coloured cells with their values printed in them.
pub struct Heatmap<'a> {
    pub title: &'a str,
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    /// values[row][col]; NaN leaves the cell blank.
    pub values: Vec<Vec<f64>>,
    pub range: (f64, f64),
    /// Cells drawn with a thick outline (e.g. the best head per attribute).
    pub marked: Vec<(usize, usize)>,
}

impl Heatmap<'_> {
    pub fn to_svg(&self) -> Result<String> {
        let label_w = self
            .rows
            .iter()
            .map(|r| text_width(r, 13.0))
            .max()
            .unwrap_or(0)
            + 16;
        let cell_w = self
            .cols
            .iter()
            .map(|c| text_width(c, 12.0) + 12)
            .max()
            .unwrap_or(0)
            .max(64);
        let cell_h = 30;
        let (top, bottom) = (56, 30);
        let width = (label_w + cell_w * self.cols.len() as i32 + 20).max(320);
        let height = top + cell_h * self.rows.len() as i32 + bottom;
        let mut buf = String::new();
        {
            let root = SVGBackend::with_string(&mut buf, (width as u32, height as u32))
                .into_drawing_area();
            self.draw(&root, label_w, cell_w, cell_h, top)
                .map_err(plot_err(self.title))?;
            root.present().map_err(plot_err(self.title))?;
        }
        Ok(buf)
    }

    fn draw(
        &self,
        root: &Area<'_>,
        label_w: i32,
        cell_w: i32,
        cell_h: i32,
        top: i32,
    ) -> std::result::Result<(), DrawError> {
        root.fill(&WHITE)?;
        root.draw(&Text::new(
            self.title.to_string(),
            (10, 18),
            text_style(17.0, HPos::Left, VPos::Center),
        ))?;
        for (j, c) in self.cols.iter().enumerate() {
            let x = label_w + cell_w * j as i32 + cell_w / 2;
            root.draw(&Text::new(
                c.clone(),
                (x, top - 12),
                text_style(12.0, HPos::Center, VPos::Center),
            ))?;
        }
        for (i, r) in self.rows.iter().enumerate() {
            let y0 = top + cell_h * i as i32;
            root.draw(&Text::new(
                r.clone(),
                (label_w - 8, y0 + cell_h / 2),
                text_style(13.0, HPos::Right, VPos::Center),
            ))?;
            for (j, v) in self.values[i].iter().enumerate() {
                if v.is_nan() {
                    continue;
                }
                let x0 = label_w + cell_w * j as i32;
                let fill = blues(*v, self.range.0, self.range.1);
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell_w, y0 + cell_h)],
                    fill.filled(),
                ))?;
                let dark = (v - self.range.0) / (self.range.1 - self.range.0).max(1e-12) > 0.55;
                let ink = if dark { WHITE } else { BLACK };
                let style = text_style(12.0, HPos::Center, VPos::Center).color(&ink);
                root.draw(&Text::new(
                    format!("{v:.3}"),
                    (x0 + cell_w / 2, y0 + cell_h / 2),
                    style,
                ))?;
            }
        }
        for &(i, j) in &self.marked {
            let (x0, y0) = (label_w + cell_w * j as i32, top + cell_h * i as i32);
            let frame = RGBColor(230, 85, 13).stroke_width(3);
            root.draw(&Rectangle::new(
                [(x0 + 1, y0 + 1), (x0 + cell_w - 1, y0 + cell_h - 1)],
                frame,
            ))?;
        }
        Ok(())
    }
}

/// Grouped bars: one group per category (attribute), one bar per series (method), y in [0, 1].
pub fn grouped_bars(
    title: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<String> {
    let n_series = series.len().max(1) as i32;
    let group_w = (14 * n_series + 24).max(
        categories
            .iter()
            .map(|c| text_width(c, 12.0) + 10)
            .max()
            .unwrap_or(0),
    );
    let legend_w = series
        .iter()
        .map(|(n, _)| text_width(n, 12.0))
        .max()
        .unwrap_or(0)
        + 40;
    let (left, top, plot_h) = (56, 44, 300);
    let width = left + group_w * categories.len() as i32 + legend_w + 20;
    let height = top + plot_h + 44;
    let mut buf = String::new();
    {
        let root =
            SVGBackend::with_string(&mut buf, (width as u32, height as u32)).into_drawing_area();
        let geo = BarGeometry {
            left,
            top,
            plot_h,
            group_w,
        };
        draw_bars(&root, title, categories, series, &geo).map_err(plot_err(title))?;
        root.present().map_err(plot_err(title))?;
    }
    Ok(buf)
}

struct BarGeometry {
    left: i32,
    top: i32,
    plot_h: i32,
    group_w: i32,
}

fn draw_bars(
    root: &Area<'_>,
    title: &str,
    cats: &[String],
    series: &[(String, Vec<f64>)],
    g: &BarGeometry,
) -> std::result::Result<(), DrawError> {
    let y_of = |v: f64| g.top + g.plot_h - (v.clamp(0.0, 1.0) * g.plot_h as f64).round() as i32;
    let right = g.left + g.group_w * cats.len() as i32;
    root.fill(&WHITE)?;
    root.draw(&Text::new(
        title.to_string(),
        (10, 18),
        text_style(17.0, HPos::Left, VPos::Center),
    ))?;
    for t in 0..=10 {
        let v = t as f64 / 10.0;
        let y = y_of(v);
        let grid = if t % 5 == 0 {
            RGBColor(170, 170, 170)
        } else {
            RGBColor(225, 225, 225)
        };
        root.draw(&PathElement::new(
            vec![(g.left, y), (right, y)],
            grid.stroke_width(1),
        ))?;
        if t % 2 == 0 {
            root.draw(&Text::new(
                format!("{v:.1}"),
                (g.left - 6, y),
                text_style(11.0, HPos::Right, VPos::Center),
            ))?;
        }
    }
    let bar_w = ((g.group_w - 16) / series.len().max(1) as i32).max(2);
    for (c, cat) in cats.iter().enumerate() {
        let gx = g.left + g.group_w * c as i32 + 8;
        for (s, (_, vals)) in series.iter().enumerate() {
            let v = vals.get(c).copied().unwrap_or(f64::NAN);
            if v.is_nan() {
                continue;
            }
            let x0 = gx + bar_w * s as i32;
            let color = Palette99::pick(s).to_rgba();
            root.draw(&Rectangle::new(
                [(x0, y_of(v)), (x0 + bar_w - 1, y_of(0.0))],
                color.filled(),
            ))?;
        }
        let cx = g.left + g.group_w * c as i32 + g.group_w / 2;
        root.draw(&Text::new(
            cat.clone(),
            (cx, y_of(0.0) + 14),
            text_style(12.0, HPos::Center, VPos::Center),
        ))?;
    }
    root.draw(&PathElement::new(
        vec![(g.left, g.top), (g.left, y_of(0.0)), (right, y_of(0.0))],
        BLACK.stroke_width(1),
    ))?;
    for (s, (name, _)) in series.iter().enumerate() {
        let (x, y) = (right + 16, g.top + 10 + 20 * s as i32);
        root.draw(&Rectangle::new(
            [(x, y - 6), (x + 12, y + 6)],
            Palette99::pick(s).to_rgba().filled(),
        ))?;
        root.draw(&Text::new(
            name.clone(),
            (x + 18, y),
            text_style(12.0, HPos::Left, VPos::Center),
        ))?;
    }
    Ok(())
}

/// Lines of mean accuracy against the budget with a ±std band; rows that do not adapt are
/// dashed horizontal lines. An active row (pairs chosen by the information of their answer) is
/// drawn in its model's colour, dashed, with triangles, next to the random row. `attribute`
/// chooses the figure from a point: the average, or one attribute.
fn budget_chart(
    area: &Area<'_>,
    title: &str,
    sw: &SweepReport,
    attribute: Option<&str>,
    legend: bool,
) -> std::result::Result<(), DrawError> {
    let series = budget_series(sw, attribute);
    let x_max = sw.budgets.iter().copied().max().unwrap_or(1).max(1) as f64;
    let (mut lo, mut hi) = (1.0f64, 0.0f64);
    for s in &series {
        for (_, m, sd) in &s.points {
            lo = lo.min(m - sd);
            hi = hi.max(m + sd);
        }
    }
    let pad = ((hi - lo) * 0.1).max(0.02);
    let (lo, hi) = (
        (lo - pad).max(0.0),
        (hi + pad).min(1.0).max((lo - pad).max(0.0) + 0.05),
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", if legend { 18 } else { 14 }))
        .margin(12)
        .x_label_area_size(if legend { 42 } else { 28 })
        .y_label_area_size(if legend { 56 } else { 44 })
        .build_cartesian_2d(0f64..x_max, lo..hi)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(8)
        .y_labels(8)
        .y_label_formatter(&|v| format!("{v:.2}"))
        .x_label_formatter(&|v| format!("{v:.0}"));
    if legend {
        mesh.x_desc("B: labelled pairs per attribute")
            .y_desc("accuracy");
    }
    mesh.draw()?;
    for s in &series {
        let color = Palette99::pick(s.color).to_rgba();
        let pts: Vec<(f64, f64)> = s.points.iter().map(|(b, m, _)| (*b, *m)).collect();
        let drawn = match s.kind {
            RowKind::Adapted => {
                let mut band: Vec<(f64, f64)> =
                    s.points.iter().map(|(b, m, sd)| (*b, m + sd)).collect();
                band.extend(s.points.iter().rev().map(|(b, m, sd)| (*b, m - sd)));
                let active = s.selection == Selection::Active;
                let alpha = if active { 0.10 } else { 0.18 };
                chart.draw_series(std::iter::once(Polygon::new(
                    band,
                    color.mix(alpha).filled(),
                )))?;
                if active {
                    chart.draw_series(
                        pts.iter()
                            .map(|p| TriangleMarker::new(*p, 5, color.filled())),
                    )?;
                    chart.draw_series(DashedLineSeries::new(pts, 6, 3, color.stroke_width(2)))?
                } else {
                    chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
                    chart.draw_series(LineSeries::new(pts, color.stroke_width(2)))?
                }
            }
            RowKind::Fixed | RowKind::Hyre => {
                let m = s.points.first().map_or(f64::NAN, |p| p.1);
                let (dash, gap) = if s.kind == RowKind::Fixed {
                    (8, 5)
                } else {
                    (3, 3)
                };
                chart.draw_series(DashedLineSeries::new(
                    vec![(0.0, m), (x_max, m)],
                    dash,
                    gap,
                    color.stroke_width(2),
                ))?
            }
        };
        if legend && s.selection == Selection::Active {
            // A dashed stroke with a triangle, as the curve is drawn.
            drawn.label(s.label.clone()).legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (5, 0)], color.stroke_width(2))
                    + PathElement::new(vec![(13, 0), (18, 0)], color.stroke_width(2))
                    + TriangleMarker::new((9, 0), 4, color.filled())
            });
        } else if legend {
            drawn.label(s.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()?;
    }
    Ok(())
}

struct BudgetSeries {
    label: String,
    kind: RowKind,
    selection: Selection,
    /// Palette index: a model's random and active rows share one colour.
    color: usize,
    /// (budget, mean, std)
    points: Vec<(f64, f64, f64)>,
}

fn budget_series(sw: &SweepReport, attribute: Option<&str>) -> Vec<BudgetSeries> {
    let mut colors: Vec<String> = Vec::new();
    sw.rows
        .iter()
        .map(|row| {
            let base = match row.selection {
                Selection::Active => row.method.trim_end_matches("+active").to_string(),
                Selection::Random => row.method.clone(),
            };
            let color = colors.iter().position(|c| *c == base).unwrap_or_else(|| {
                colors.push(base);
                colors.len() - 1
            });
            let points = row
                .points
                .iter()
                .filter_map(|p| {
                    let st = match attribute {
                        None => Some(&p.average),
                        Some(a) => p.per_attribute.get(a),
                    }?;
                    st.mean
                        .is_finite()
                        .then_some((p.budget as f64, st.mean, st.std))
                })
                .collect();
            let label = if row.kind == RowKind::Hyre {
                format!("{} ({} test labels)", row.method, sw.hyre_shots)
            } else {
                row.method.clone()
            };
            BudgetSeries {
                label,
                kind: row.kind,
                selection: row.selection,
                color,
                points,
            }
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

/// Figure 4: average accuracy against the budget, with the spread over runs.
pub fn budget_curve(sw: &SweepReport) -> Result<String> {
    let title = format!(
        "Average accuracy vs budget (mean ± std over {} runs)",
        sw.runs
    );
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (900, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err("budget"))?;
        budget_chart(&root, &title, sw, None, true).map_err(plot_err("budget"))?;
        root.present().map_err(plot_err("budget"))?;
    }
    Ok(buf)
}

/// The same curve per attribute, one small panel each.
pub fn budget_panels(sw: &SweepReport) -> Result<String> {
    let n = sw.attributes.len().max(1);
    let cols = n.min(3);
    let rows = n.div_ceil(cols);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (360 * cols as u32, 260 * rows as u32))
            .into_drawing_area();
        root.fill(&WHITE)
            .map_err(plot_err("budget per attribute"))?;
        for (panel, a) in root.split_evenly((rows, cols)).iter().zip(&sw.attributes) {
            budget_chart(panel, a, sw, Some(a), false).map_err(plot_err("budget per attribute"))?;
        }
        root.present().map_err(plot_err("budget per attribute"))?;
    }
    Ok(buf)
}

/// The rows x attributes matrix of a per-attribute map of vectors (heads or weights).
pub fn transpose(map: &BTreeMap<String, Vec<f64>>, k: usize) -> Vec<Vec<f64>> {
    (0..k)
        .map(|j| {
            map.values()
                .map(|v| v.get(j).copied().unwrap_or(f64::NAN))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Stat;
    use crate::sweep::{SweepPoint, SweepRow};

    fn row(method: &str, selection: Selection, means: &[f64]) -> SweepRow {
        SweepRow {
            method: method.into(),
            kind: RowKind::Adapted,
            points: means
                .iter()
                .zip([0usize, 5, 15])
                .map(|(&m, budget)| SweepPoint {
                    budget,
                    average: Stat::of(vec![m, m + 0.01]),
                    per_attribute: [("u".to_string(), Stat::of(vec![m]))].into(),
                })
                .collect(),
            selection,
        }
    }

    #[test]
    fn an_active_row_shares_its_models_colour_and_is_drawn_with_triangles() {
        let sw = SweepReport {
            budgets: vec![0, 5, 15],
            runs: 2,
            seed: 0,
            hyre_shots: 0,
            attributes: vec!["u".into()],
            rows: vec![
                row("micro", Selection::Random, &[0.6, 0.7, 0.8]),
                row("micro+active", Selection::Active, &[0.6, 0.8, 0.85]),
                row("other", Selection::Random, &[0.5, 0.55, 0.6]),
            ],
            notes: vec![],
        };
        let series = budget_series(&sw, None);
        let colors: Vec<usize> = series.iter().map(|s| s.color).collect();
        assert_eq!(colors, vec![0, 0, 1]);
        let svg = budget_curve(&sw).unwrap();
        // Circles mark the two random rows' three points; triangles (polygons) the active row's,
        // besides the three bands.
        assert_eq!(svg.matches("<circle").count(), 6, "{svg}");
        assert!(svg.matches("<polygon").count() >= 3 + 3);
        assert!(svg.contains("micro+active"));
    }
}
