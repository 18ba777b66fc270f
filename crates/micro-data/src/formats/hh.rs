//! `Anthropic/hh-rlhf`: `chosen` and `rejected` are whole transcripts of
//! `"\n\nHuman: …\n\nAssistant: …"` turns that share everything up to the last assistant turn.
//!
//! Each transcript is split at its last `"\n\nAssistant:"`; the shared prefix becomes the prompt
//! as a message list (Human → `user`, Assistant → `assistant`) and the two tails the responses.
//! Rows whose prefixes differ, or that have no assistant turn, are skipped and counted.
//! The attribute is the HH subset named in the file path (`harmless-base`, `helpful-base`,
//! `helpful-online`, `helpful-rejection-sampled`), when there is one. TRL re-exports with
//! message lists are [`Format::Native`](super::Format::Native).

use super::LoadCtx;
use crate::error::Result;
use crate::fields::Row;
use crate::pair::{Message, PrefPair, Prompt};

pub const HUMAN: &str = "\n\nHuman:";
pub const ASSISTANT: &str = "\n\nAssistant:";
const SUBSETS: [&str; 4] = [
    "harmless-base",
    "helpful-base",
    "helpful-online",
    "helpful-rejection-sampled",
];
const EXPECTS: &str = "HH-RLHF rows need chosen and rejected transcripts";

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<PrefPair>> {
    let (path, split) = (ctx.path, ctx.split);
    let stem = super::file_stem(path);
    let shown = path.to_string_lossy();
    let subset = SUBSETS
        .iter()
        .find(|s| shown.contains(*s))
        .map(|s| s.to_string());
    let mut pairs = Vec::new();
    ctx.for_each(|report, record| {
        let row = Row::new(&record.value, path, record.line, EXPECTS)?;
        let (Some((prefix, chosen)), Some((prefix_r, rejected))) = (
            split_last_turn(row.str("chosen")?),
            split_last_turn(row.str("rejected")?),
        ) else {
            report.skip("rows without an Assistant turn");
            return Ok(());
        };
        if prefix != prefix_r {
            report.skip("rows whose chosen and rejected prefixes differ");
            return Ok(());
        }
        pairs.push(PrefPair {
            id: Some(format!("{stem}:{}", record.line)),
            prompt: Prompt::Messages(parse_turns(prefix)),
            chosen: chosen.to_string(),
            rejected: rejected.to_string(),
            attribute: subset.clone(),
            split,
            source: Some("hh-rlhf".into()),
            ..Default::default()
        });
        Ok(())
    })?;
    if ctx.report.skipped_total() > 0 {
        ctx.report.notes.push(format!(
            "{} rows skipped of {}",
            ctx.report.skipped_total(),
            ctx.report.records
        ));
    }
    Ok(pairs)
}

/// Splits a transcript at its last assistant marker: (prefix, trimmed response).
pub fn split_last_turn(transcript: &str) -> Option<(&str, &str)> {
    let at = transcript.rfind(ASSISTANT)?;
    Some((&transcript[..at], transcript[at + ASSISTANT.len()..].trim()))
}

/// Parses `"\n\nHuman: …\n\nAssistant: …"` into messages; text before the first marker,
/// if any, is a user turn.
pub fn parse_turns(text: &str) -> Vec<Message> {
    let mut turns = Vec::new();
    let mut rest = text;
    let mut role = "user";
    loop {
        let next = [(HUMAN, "user"), (ASSISTANT, "assistant")]
            .into_iter()
            .filter_map(|(marker, r)| rest.find(marker).map(|at| (at, marker, r)))
            .min_by_key(|(at, ..)| *at);
        let (body, following) = match next {
            Some((at, marker, r)) => (&rest[..at], Some((at + marker.len(), r))),
            None => (rest, None),
        };
        let body = body.trim();
        if !body.is_empty() || !turns.is_empty() {
            turns.push(Message::new(role, body));
        }
        match following {
            Some((skip, r)) => {
                rest = &rest[skip..];
                role = r;
            }
            None => break,
        }
    }
    turns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_turns_and_splits_last() {
        let t = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how?\n\nAssistant: like this";
        let (prefix, resp) = split_last_turn(t).unwrap();
        assert_eq!(resp, "like this");
        assert_eq!(
            parse_turns(prefix),
            vec![
                Message::new("user", "hi"),
                Message::new("assistant", "hello"),
                Message::new("user", "how?")
            ]
        );
        assert_eq!(split_last_turn("\n\nHuman: no reply"), None);
    }
}
