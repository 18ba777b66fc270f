//! The native (and generic `prompt/chosen/rejected`) JSON form.
//!
//! Accepts the field names of [`PrefPair`] plus common aliases: `criteria` for `context`,
//! `category`/`subset` for `attribute`. `chosen`/`rejected` may be strings or message lists
//! whose last assistant turn is the response; with message lists and no `prompt`, the turns
//! before the response are the prompt (TRL's "implicit prompt").

use super::LoadCtx;
use crate::error::{DataError, Result};
use crate::fields::Row;
use crate::pair::{Message, PrefPair, Prompt, Split};
use serde_json::Value;
use std::path::Path;

/// Reads native or generic records; `--split` overrides each record's split, and records
/// without one take the split the file name implies.
pub fn load(ctx: &mut LoadCtx) -> Result<Vec<PrefPair>> {
    let (path, forced, fallback) = (ctx.path, ctx.options.split, ctx.split);
    let mut pairs = Vec::new();
    ctx.for_each(|_, record| {
        let mut pair = pair_from_value(&record.value, path, record.line)?;
        pair.split = forced.or(pair.split).or(fallback);
        pairs.push(pair);
        Ok(())
    })?;
    Ok(pairs)
}

/// Parses one JSON object into a pair; `line` is used only for error messages.
pub fn pair_from_value(value: &Value, path: &Path, line: usize) -> Result<PrefPair> {
    let obj = value
        .as_object()
        .ok_or_else(|| DataError::invalid(path, Some(line), None, "expected a JSON object"))?;
    let err = |field: &str, msg: String| DataError::invalid(path, Some(line), Some(field), msg);
    let row = Row {
        path,
        line,
        obj,
        expects: "",
    };

    let (chosen_prefix, chosen) = response(obj.get("chosen"), "chosen", path, line)?;
    let (_, rejected) = response(obj.get("rejected"), "rejected", path, line)?;
    let prompt = match obj.get("prompt") {
        Some(v) => prompt_from_value(v).ok_or_else(|| {
            err(
                "prompt",
                format!(
                    "expected a string or a list of {{role, content}} messages, got {}",
                    kind(v)
                ),
            )
        })?,
        None => match chosen_prefix {
            Some(turns) if !turns.is_empty() => Prompt::Messages(turns),
            _ => {
                return Err(err(
                    "prompt",
                    "missing (and `chosen` is not a message list that carries it)".into(),
                ))
            }
        },
    };
    let split = match opt_string(&row, &["split"])? {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<Split>(Value::String(s.clone())).map_err(|_| {
                err(
                    "split",
                    format!("unknown split {s:?}: use \"train\" or \"test\""),
                )
            })?,
        ),
    };
    Ok(PrefPair {
        id: opt_id(obj.get("id")),
        prompt,
        chosen,
        rejected,
        context: opt_string(&row, &["context", "criteria"])?,
        attribute: opt_string(&row, &["attribute", "category", "subset"])?,
        user_id: opt_id(obj.get("user_id")),
        split,
        chosen_rating: opt_number(&row, &["chosen_rating", "score_chosen"])?,
        rejected_rating: opt_number(&row, &["rejected_rating", "score_rejected"])?,
        margin: opt_number(&row, &["margin"])?,
        source: opt_string(&row, &["source"])?,
    })
}

/// A prompt from a string or a message list.
pub fn prompt_from_value(v: &Value) -> Option<Prompt> {
    match v {
        Value::String(s) => Some(Prompt::Text(s.clone())),
        Value::Array(_) => messages_from_value(v).map(Prompt::Messages),
        _ => None,
    }
}

/// A list of `{role, content}` objects.
pub fn messages_from_value(v: &Value) -> Option<Vec<Message>> {
    v.as_array()?
        .iter()
        .map(|m| {
            Some(Message::new(
                m.get("role")?.as_str()?,
                content_text(m.get("content")?)?,
            ))
        })
        .collect()
}

/// Message content: a string, or OpenAI-style parts `[{type: "text", text}]` joined.
fn content_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
        ),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// A response: a string, or a message list whose last assistant turn is the response
/// (returned with the turns before it).
fn response(
    v: Option<&Value>,
    field: &str,
    path: &Path,
    line: usize,
) -> Result<(Option<Vec<Message>>, String)> {
    let err = |msg: String| DataError::invalid(path, Some(line), Some(field), msg);
    match v {
        None | Some(Value::Null) => Err(err("missing".into())),
        Some(Value::String(s)) => Ok((None, s.clone())),
        Some(list @ Value::Array(_)) => {
            let mut turns = messages_from_value(list)
                .ok_or_else(|| err("expected a list of {role, content} messages".into()))?;
            let last = turns
                .iter()
                .rposition(|m| m.role == "assistant")
                .ok_or_else(|| {
                    err("message list has no assistant turn to take as the response".into())
                })?;
            let resp = turns.remove(last).content;
            turns.truncate(last);
            Ok((Some(turns), resp))
        }
        Some(other) => Err(err(format!(
            "expected a string or a message list, got {}",
            kind(other)
        ))),
    }
}

/// The first of the alias fields `names` that is present, as a string.
fn opt_string(row: &Row, names: &[&str]) -> Result<Option<String>> {
    match names.iter().find(|n| row.has(n)) {
        Some(n) => Ok(row.opt_str(n)?.map(str::to_string)),
        None => Ok(None),
    }
}

/// The first of the alias fields `names` that is present, as a JSON number (not a numeric
/// string, unlike [`Row::number`]).
fn opt_number(row: &Row, names: &[&str]) -> Result<Option<f64>> {
    match names.iter().find(|n| row.has(n)) {
        Some(n) => match row.get(n)? {
            Value::Number(x) => Ok(x.as_f64()),
            v => Err(row.wrong_type(n, "a number", v)),
        },
        None => Ok(None),
    }
}

/// Ids may be strings or numbers in the wild.
fn opt_id(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A short name for a JSON value's type, for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
