//! `openbmb/UltraFeedback`: `instruction` (or `prompt`) and `completions[]`, each with a
//! `response` and `annotations{aspect: {Rating: "1".."5" | "N/A", …}}`.
//!
//! Per aspect, every two completions whose ratings differ by at least 1 form a pair, the higher
//! rated chosen; ties and gaps below 1 are dropped, `"N/A"` ratings skipped. The attribute is
//! the aspect name (`helpfulness`, `honesty`, `instruction_following`, `truthfulness`); ratings
//! go into `chosen_rating`/`rejected_rating`.

use super::{LoadCtx, LoadReport};
use crate::error::Result;
use crate::fields::{number_of, Row};
use crate::formats::native::kind;
use crate::pair::{PrefPair, Prompt};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const EXPECTS: &str = "UltraFeedback rows need instruction (or prompt) and completions[] with response and annotations";

/// One completion's response and its rating per aspect (`None` for "N/A").
struct Completion {
    response: String,
    ratings: BTreeMap<String, Option<f64>>,
}

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<PrefPair>> {
    let (path, split) = (ctx.path, ctx.split);
    let stem = super::file_stem(path);
    let mut pairs = Vec::new();
    ctx.for_each(|report, record| {
        let row = Row::new(&record.value, path, record.line, EXPECTS)?;
        let prompt = row.str_of(&["instruction", "prompt"])?;
        let completions = row
            .array("completions")?
            .iter()
            .enumerate()
            .map(|(c, v)| completion(&row, c, v))
            .collect::<Result<Vec<_>>>()?;
        let aspects: BTreeSet<&String> =
            completions.iter().flat_map(|c| c.ratings.keys()).collect();
        for aspect in aspects {
            for (w, l) in aspect_pairs(&completions, aspect, report) {
                let (cw, cl) = (&completions[w], &completions[l]);
                pairs.push(PrefPair {
                    id: Some(format!("{stem}:{}:{w}-{l}:{aspect}", record.line)),
                    prompt: Prompt::Text(prompt.to_string()),
                    chosen: cw.response.clone(),
                    rejected: cl.response.clone(),
                    attribute: Some(aspect.clone()),
                    split,
                    chosen_rating: cw.ratings[aspect],
                    rejected_rating: cl.ratings[aspect],
                    source: Some("ultrafeedback".into()),
                    ..Default::default()
                });
            }
        }
        Ok(())
    })?;
    Ok(pairs)
}

/// (winner, loser) completion indices for `aspect`: every two rated completions whose
/// ratings differ by at least 1.
fn aspect_pairs(
    completions: &[Completion],
    aspect: &str,
    report: &mut LoadReport,
) -> Vec<(usize, usize)> {
    let mut rated = Vec::new();
    for (i, c) in completions.iter().enumerate() {
        match c.ratings.get(aspect) {
            Some(Some(r)) => rated.push((i, *r)),
            _ => report.skip("completions with an N/A or missing rating (per aspect)"),
        }
    }
    let mut out = Vec::new();
    for (x, &(i, ri)) in rated.iter().enumerate() {
        for &(j, rj) in &rated[x + 1..] {
            if (ri - rj).abs() < 1.0 {
                report.skip("rating ties or gaps below 1");
            } else if completions[i].response == completions[j].response {
                report.skip("identical responses");
            } else {
                out.push(if ri > rj { (i, j) } else { (j, i) });
            }
        }
    }
    out
}

/// Reads completion `c`; the error names the nested field, e.g. `completions[2].annotations.honesty.Rating`.
fn completion(row: &Row, c: usize, v: &Value) -> Result<Completion> {
    let at = |f: &str| format!("completions[{c}]{f}");
    let obj = v
        .as_object()
        .ok_or_else(|| row.wrong_type(&at(""), "an object", v))?;
    let response = match obj.get("response") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => return Err(row.missing(&at(".response"))),
        Some(other) => return Err(row.wrong_type(&at(".response"), "a string", other)),
    };
    let annotations = match obj.get("annotations") {
        Some(Value::Object(a)) => a,
        None | Some(Value::Null) => return Err(row.missing(&at(".annotations"))),
        Some(other) => {
            return Err(row.wrong_type(&at(".annotations"), "an object of aspects", other))
        }
    };
    let mut ratings = BTreeMap::new();
    for (aspect, a) in annotations {
        // Some exports store the rating object directly, others as a one-element list.
        let a = match a {
            Value::Array(items) if items.len() == 1 => &items[0],
            other => other,
        };
        let rating = match a {
            Value::Object(o) => o.get("Rating").or_else(|| o.get("rating")),
            other => Some(other),
        };
        let value = match rating {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("n/a") => None,
            Some(r) => Some(number_of(r).ok_or_else(|| {
                row.err(
                    &at(&format!(".annotations.{aspect}.Rating")),
                    format!(
                        "expected a rating such as \"4\" or \"N/A\", got {} {r}",
                        kind(r)
                    ),
                )
            })?),
        };
        ratings.insert(aspect.clone(), value);
    }
    Ok(Completion { response, ratings })
}
