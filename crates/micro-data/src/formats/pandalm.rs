//! PandaLM's human test set (`testset-v1.json`, 999 items): `instruction`, `input`,
//! `response1`, `response2`, and three annotators' labels `annotator1..3` (1 or 2: the better
//! response; 0: a tie).
//!
//! Each annotator is a user: per item, every annotator with a preference gives one pair, with
//! `attribute` and `user_id` the annotator's field name (`annotator1`, ...), so the three users
//! judge mostly the same triples (they disagree on about one item in eight). Ties (0) are
//! skipped and counted per annotator; so are missing labels (`null`, or a bare `NaN`, which
//! the reader maps to `null`). The prompt is the instruction, followed by the input after a
//! blank line when there is one. A response stored as a JSON number or boolean (the file has
//! a few `true`, left by a spreadsheet round trip of the text "True") is read as its text,
//! booleans capitalised, and counted in the notes. Items whose two responses are identical are
//! skipped. The annotators come with no description, so the pairs carry no context: the
//! annotators are users known only by id, as real annotator sets arrive, and Stage 1's per-user
//! table and Stage 2's per-user weights tell them apart. (An earlier loader invented an identity
//! sentence per annotator; it gave the router nothing the id does not.)

use super::LoadCtx;
use crate::error::Result;
use crate::fields::Row;
use crate::formats::native::kind;
use crate::pair::{PrefPair, Prompt};
use serde_json::Value;

/// The label fields, one per annotator.
pub const ANNOTATORS: [&str; 3] = ["annotator1", "annotator2", "annotator3"];
const EXPECTS: &str = "PandaLM rows need instruction, input, response1, response2, annotator1..3";

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<PrefPair>> {
    let (path, split) = (ctx.path, ctx.split);
    let stem = super::file_stem(path);
    let mut pairs = Vec::new();
    let mut non_text = 0;
    ctx.for_each(|report, record| {
        let row = Row::new(&record.value, path, record.line, EXPECTS)?;
        let prompt = prompt_of(&row)?;
        let (r1, r2) = (response(&row, "response1")?, response(&row, "response2")?);
        non_text += usize::from(r1.1) + usize::from(r2.1);
        let (r1, r2) = (r1.0, r2.0);
        if r1 == r2 {
            report.skip("items with identical responses");
            return Ok(());
        }
        let item = match row.obj.get("idx") {
            Some(Value::Number(n)) => n.to_string(),
            _ => record.line.to_string(),
        };
        for annotator in ANNOTATORS {
            let (chosen, rejected) = match label(&row, annotator)? {
                Some(1) => (&r1, &r2),
                Some(2) => (&r2, &r1),
                Some(_) => {
                    report.skip(&format!("ties ({annotator})"));
                    continue;
                }
                None => {
                    report.skip(&format!("missing labels ({annotator})"));
                    continue;
                }
            };
            pairs.push(PrefPair {
                id: Some(format!("{stem}:{item}:{annotator}")),
                prompt: prompt.clone(),
                chosen: chosen.clone(),
                rejected: rejected.clone(),
                attribute: Some(annotator.to_string()),
                user_id: Some(annotator.to_string()),
                split,
                source: Some("pandalm".into()),
                ..Default::default()
            });
        }
        Ok(())
    })?;
    if non_text > 0 {
        ctx.report.notes.push(format!(
            "{non_text} responses stored as JSON numbers or booleans, read as text"
        ));
    }
    Ok(pairs)
}

/// The instruction, then the input after a blank line when it is not empty.
fn prompt_of(row: &Row) -> Result<Prompt> {
    let instruction = row.str("instruction")?.trim();
    let input = row.opt_str("input")?.map(str::trim).unwrap_or("");
    Ok(Prompt::Text(if input.is_empty() {
        instruction.to_string()
    } else {
        format!("{instruction}\n\n{input}")
    }))
}

/// A response's text, and whether it was stored as a number or boolean rather than a string.
fn response(row: &Row, field: &str) -> Result<(String, bool)> {
    match row.get(field)? {
        Value::String(s) => Ok((s.clone(), false)),
        Value::Bool(true) => Ok(("True".into(), true)),
        Value::Bool(false) => Ok(("False".into(), true)),
        Value::Number(n) => Ok((n.to_string(), true)),
        v => Err(row.wrong_type(field, "a string", v)),
    }
}

/// An annotator's label: `Some(0 | 1 | 2)`, `None` when missing; anything else is an error.
fn label(row: &Row, field: &str) -> Result<Option<u8>> {
    match row.obj.get(field) {
        None => Err(row.missing(field)),
        Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x == 0.0 || x == 1.0 || x == 2.0 => Ok(Some(x as u8)),
            _ => Err(row.err(
                field,
                format!(
                    "expected 0 (tie), 1 or 2 (the better response), got {}",
                    match v {
                        Value::Number(n) => n.to_string(),
                        other => kind(other).to_string(),
                    }
                ),
            )),
        },
    }
}
