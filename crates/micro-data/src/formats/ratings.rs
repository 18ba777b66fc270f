//! Rated responses (one row per prompt + response with numeric ratings for several attributes),
//! binarised into per-attribute pairs by HelpSteer2's rule.
//!
//! The rule (MiCRo §4.2, as for HelpSteer2): rows are grouped by prompt; for each attribute,
//! every two responses to the same prompt whose ratings differ by at least the minimum gap form
//! a pair, the higher rated one chosen; smaller gaps and ties are dropped (counted). A pair of
//! responses on which every attribute agrees (the same response ahead by at least the gap under
//! all of them) is dropped from train and kept in test, since it tells no attribute from
//! another. A rating that is `null` (or a bare `NaN`) is missing: that response takes part in
//! no pair for that attribute (counted). Gaps are compared with a tolerance of 1e-9, because
//! means of several raters are stored rounded (`0.6666666667`).
//!
//! Which fields hold what is a [`RatingsLayout`]: the prompt and response fields, and the
//! ratings either as top-level columns or in a nested object (UniEval's `scores`). Each pair's
//! `context` is a user criterion for its attribute: the sentence given in
//! [`LoadOptions::contexts`](super::LoadOptions::contexts), else the layout's built-in one, else
//! the paper's Table 6 sentence (HelpSteer2 attribute names); an attribute with none gets no
//! context and a note in the report.
//!
//! Two layouts are built in:
//! - [`RatingsLayout::helpsteer2`]: `prompt`, `response`, five 0–4 columns, gap 1 ([`Format::HelpSteer2`](super::Format::HelpSteer2));
//! - [`RatingsLayout::unieval`]: UniEval's dialogue files (USR Topical-Chat and PersonaChat):
//!   `source` (the dialogue so far, one turn per line), `system_output`, `scores` (mean of 3
//!   annotators: understandability and groundedness 0–1, naturalness, coherence and
//!   engagingness 1–3, overall 1–5), and a knowledge `context` (a fact the reply may use).
//!   Every score but `overall` is an attribute (`overall` sums the others up rather than
//!   stating a criterion; name it in `attributes` to have it).
//!   The dialogue becomes the prompt's turns, the last one the user's and earlier ones
//!   alternating with the assistant; the knowledge becomes a leading `system` turn, so it stays
//!   out of [`PrefPair::context`] (which is the user's criterion). Gap 0.5. On the 360 rows of
//!   `topical_chat.json` that gives 363-540 pairs per attribute before the train-only drop
//!   (703 for `overall`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::{helpsteer2, LoadCtx};
use crate::error::{DataError, Result};
use crate::fields::{number_of, Row};
use crate::formats::native::{kind, prompt_from_value};
use crate::pair::{Message, PrefPair, Prompt, Split};
use crate::split::PromptSplit;

/// Gaps within this of the minimum count as reaching it (ratings stored to 10 decimals).
const GAP_TOLERANCE: f64 = 1e-9;

/// Where a ratings file keeps the prompt, the response and the ratings.
#[derive(Clone, Debug, PartialEq)]
pub struct RatingsLayout {
    /// The prompt field: a string, or a list of `{role, content}` messages.
    pub prompt: String,
    /// The response field (a string).
    pub response: String,
    /// A nested object holding the ratings (`scores`); `None`: they are top-level columns.
    pub ratings: Option<String>,
    /// The rated attributes, in output order. Empty: every key of the first row's `ratings`
    /// object (in key order) but those in `exclude`.
    pub attributes: Vec<String>,
    /// Keys of the ratings object left out when `attributes` is empty.
    pub exclude: Vec<String>,
    /// A field with background knowledge for the reply, put before the dialogue as a `system`
    /// turn of the prompt; absent or empty values are fine.
    pub knowledge: Option<String>,
    /// Splits a text prompt into dialogue turns at this separator (UniEval: a newline).
    pub turn_separator: Option<String>,
    /// The minimum rating gap for a pair (HelpSteer2: 1 on its 0–4 scale).
    pub min_gap: f64,
    /// Built-in context sentences by attribute (see the module docs for the order of lookup).
    pub contexts: BTreeMap<String, String>,
    /// The pairs' `source`.
    pub source: String,
}

impl Default for RatingsLayout {
    /// `prompt`, `response`, top-level rating columns (to be named), gap 1.
    fn default() -> Self {
        RatingsLayout {
            prompt: "prompt".into(),
            response: "response".into(),
            ratings: None,
            attributes: Vec::new(),
            exclude: Vec::new(),
            knowledge: None,
            turn_separator: None,
            min_gap: 1.0,
            contexts: BTreeMap::new(),
            source: "ratings".into(),
        }
    }
}

impl RatingsLayout {
    /// `nvidia/HelpSteer2`: `prompt`, `response`, five 0–4 columns, gap 1.
    pub fn helpsteer2() -> Self {
        RatingsLayout {
            attributes: helpsteer2::ATTRIBUTES.map(String::from).to_vec(),
            source: "helpsteer2".into(),
            ..Default::default()
        }
    }

    /// UniEval's dialogue files (see the module docs), gap 0.5, dialogue context sentences.
    pub fn unieval() -> Self {
        RatingsLayout {
            prompt: "source".into(),
            response: "system_output".into(),
            ratings: Some("scores".into()),
            attributes: Vec::new(),
            // A summary of the others, not a criterion a user would state.
            exclude: vec!["overall".into()],
            knowledge: Some("context".into()),
            turn_separator: Some("\n".into()),
            min_gap: 0.5,
            contexts: DIALOGUE_CONTEXTS
                .iter()
                .map(|(a, c)| (a.to_string(), c.to_string()))
                .collect(),
            source: "unieval".into(),
        }
    }

    /// The layout a file starts from: UniEval's when its first record has that shape, else the
    /// generic one (whose fields a caller then names).
    pub fn for_file(path: &std::path::Path) -> Result<Self> {
        let first = crate::record::first_record(path)?;
        Ok(match first.as_ref().and_then(|r| r.value.as_object()) {
            Some(obj) if Self::is_unieval(obj) => Self::unieval(),
            _ => Self::default(),
        })
    }

    /// Whether a record looks like a UniEval file's (`system_output` and a `scores` object).
    pub fn is_unieval(obj: &Map<String, Value>) -> bool {
        obj.get("system_output").is_some_and(Value::is_string)
            && obj.get("scores").is_some_and(Value::is_object)
    }

    /// The field holding `attribute`'s rating, as error messages name it.
    fn field(&self, attribute: &str) -> String {
        match &self.ratings {
            Some(obj) => format!("{obj}.{attribute}"),
            None => attribute.to_string(),
        }
    }

    fn expects(&self) -> String {
        let ratings = match (&self.ratings, self.attributes.is_empty()) {
            (Some(obj), true) => format!("a `{obj}` object of numeric ratings"),
            _ => self
                .attributes
                .iter()
                .map(|a| format!("`{}`", self.field(a)))
                .collect::<Vec<_>>()
                .join(", "),
        };
        format!(
            "rating rows need `{}`, `{}` and {ratings} (name other fields with --prompt-field, \
             --response-field, --ratings-field, --attributes)",
            self.prompt, self.response
        )
    }
}

/// Criterion sentences for UniEval's dialogue attributes (after USR's annotation questions,
/// Mehri & Eskenazi 2020), written as a user's wish like the paper's Table 6.
pub const DIALOGUE_CONTEXTS: [(&str, &str); 6] = [
    ("understandability", "The assistant's reply should be easy to understand on its own, given the conversation so far."),
    ("naturalness", "The assistant should reply the way a person naturally would in conversation: fluent, idiomatic, not stilted."),
    ("coherence", "The assistant's reply should follow on from what was just said: a valid continuation that keeps the context of the conversation."),
    ("engagingness", "The assistant should be interesting and engaging, adding something that makes me want to keep talking rather than a dull reply."),
    ("groundedness", "The assistant should make good use of the knowledge it was given, working the relevant fact into its reply."),
    ("overall", "The assistant's reply should be a good conversational response overall: understandable, natural, on topic, engaging and informed."),
];

/// One rated response.
struct Rated {
    line: usize,
    response: String,
    /// One entry per attribute; `None` when the rating is missing.
    ratings: Vec<Option<f64>>,
}

/// Rows of one prompt, in file order.
struct Group {
    prompt: Prompt,
    rows: Vec<Rated>,
}

/// Reads rated rows with `layout` and binarises them (rule in the module docs).
pub fn load(ctx: &mut LoadCtx, layout: &RatingsLayout) -> Result<Vec<PrefPair>> {
    let min_gap = ctx.options.min_gap.unwrap_or(layout.min_gap);
    if !(min_gap > 0.0 && min_gap.is_finite()) {
        return Err(DataError::MinGap { gap: min_gap });
    }
    let (groups, attributes) = read_groups(ctx, layout)?;
    let splits = group_splits(ctx, &groups);
    let rule = Rule {
        min_gap,
        attributes: &attributes,
        contexts: contexts(ctx, layout, &attributes),
        stem: super::file_stem(ctx.path),
        source: &layout.source,
    };
    let mut pairs = Vec::new();
    for (group, split) in groups.iter().zip(splits) {
        for (i, a) in group.rows.iter().enumerate() {
            for b in &group.rows[i + 1..] {
                rule.pairs_of(ctx, group, split, a, b, &mut pairs);
            }
        }
    }
    Ok(pairs)
}

/// Reads every row, grouped by prompt in first-seen order, and the attribute list.
fn read_groups(ctx: &mut LoadCtx, layout: &RatingsLayout) -> Result<(Vec<Group>, Vec<String>)> {
    let path = ctx.path;
    let expects = layout.expects();
    let mut attributes = layout.attributes.clone();
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    ctx.for_each(|_, record| {
        let row = Row::new(&record.value, path, record.line, &expects)?;
        if attributes.is_empty() {
            attributes = attribute_names(&row, layout)?;
        }
        let prompt = prompt_of(&row, layout)?;
        let rated = Rated {
            line: record.line,
            response: row.str(&layout.response)?.to_string(),
            ratings: attributes
                .iter()
                .map(|a| rating(&row, layout, a))
                .collect::<Result<_>>()?,
        };
        let key = prompt.to_text();
        let at = *index.entry(key).or_insert_with(|| {
            groups.push(Group {
                prompt,
                rows: Vec::new(),
            });
            groups.len() - 1
        });
        groups[at].rows.push(rated);
        Ok(())
    })?;
    Ok((groups, attributes))
}

/// Every key of the row's ratings object, when the layout names no attributes.
fn attribute_names(row: &Row, layout: &RatingsLayout) -> Result<Vec<String>> {
    let Some(field) = &layout.ratings else {
        return Err(DataError::RatingsLayout {
            path: row.path.to_path_buf(),
            prompt: false,
        });
    };
    let names: Vec<String> = match row.get(field)? {
        Value::Object(m) => m
            .keys()
            .filter(|k| !layout.exclude.contains(k))
            .cloned()
            .collect(),
        v => return Err(row.wrong_type(field, "an object of ratings", v)),
    };
    if names.is_empty() {
        return Err(row.err(
            field,
            "holds no ratings; name the attributes with --attributes",
        ));
    }
    Ok(names)
}

/// The prompt: a string (split into turns when the layout says so) or a message list, after
/// the optional knowledge turn.
fn prompt_of(row: &Row, layout: &RatingsLayout) -> Result<Prompt> {
    let value = row.get(&layout.prompt)?;
    let prompt = prompt_from_value(value).ok_or_else(|| {
        row.wrong_type(
            &layout.prompt,
            "a string or a list of {role, content} messages",
            value,
        )
    })?;
    let mut turns = match (prompt, &layout.turn_separator) {
        (Prompt::Text(t), Some(sep)) => dialogue_turns(&t, sep),
        (Prompt::Text(t), None) => vec![Message::new("user", t.trim())],
        (Prompt::Messages(m), _) => m,
    };
    if let Some(field) = &layout.knowledge {
        let knowledge = row.opt_str(field)?.map(str::trim).unwrap_or("");
        if !knowledge.is_empty() {
            turns.insert(0, Message::new("system", knowledge));
        }
    }
    Ok(match turns.as_slice() {
        [only] if only.role == "user" => Prompt::Text(only.content.clone()),
        _ => Prompt::Messages(turns),
    })
}

/// Dialogue lines as turns: the last is the user's (the reply answers it), earlier ones
/// alternate with the assistant going backwards. Blank lines are dropped.
pub fn dialogue_turns(text: &str, separator: &str) -> Vec<Message> {
    let lines: Vec<&str> = text
        .split(separator)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let n = lines.len();
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let role = if (n - 1 - i).is_multiple_of(2) {
                "user"
            } else {
                "assistant"
            };
            Message::new(role, l)
        })
        .collect()
}

/// One attribute's rating: a number or numeric string; `null` is a missing rating; an absent
/// key is an error (most likely a misspelt attribute).
fn rating(row: &Row, layout: &RatingsLayout, attribute: &str) -> Result<Option<f64>> {
    let field = layout.field(attribute);
    let holder = match &layout.ratings {
        Some(obj) => match row.get(obj)? {
            Value::Object(m) => m,
            v => return Err(row.wrong_type(obj, "an object of ratings", v)),
        },
        None => row.obj,
    };
    match holder.get(attribute) {
        None => Err(row.missing(&field)),
        Some(Value::Null) => Ok(None),
        Some(v) => number_of(v)
            .map(Some)
            .ok_or_else(|| row.err(&field, format!("expected a number, got {}", kind(v)))),
    }
}

/// The split of each group: by a seeded shuffle of prompts when a test fraction is set, else
/// the file's (or the option's) split.
fn group_splits(ctx: &mut LoadCtx, groups: &[Group]) -> Vec<Option<Split>> {
    let Some(fraction) = ctx.options.test_fraction else {
        if ctx.split.is_none() {
            ctx.report
                .notes
                .push("no split in the options or file name: treated as train".into());
        }
        return vec![ctx.split; groups.len()];
    };
    let keys: Vec<String> = groups.iter().map(|g| g.prompt.to_text()).collect();
    let split = PromptSplit::new(keys.iter().map(String::as_str), fraction, ctx.options.seed);
    ctx.split_done = true;
    let note = super::split_note(split.test_prompts(), fraction, ctx.options.seed);
    ctx.report.notes.push(note);
    keys.iter().map(|k| Some(split.of(k))).collect()
}

/// The context sentence of each attribute (lookup order in the module docs); notes the ones
/// left without.
fn contexts(
    ctx: &mut LoadCtx,
    layout: &RatingsLayout,
    attributes: &[String],
) -> Vec<Option<String>> {
    let mut out = Vec::with_capacity(attributes.len());
    let mut without = BTreeSet::new();
    for a in attributes {
        let sentence = ctx
            .options
            .contexts
            .get(a)
            .or_else(|| layout.contexts.get(a))
            .cloned()
            .or_else(|| helpsteer2::context_for(a).map(str::to_string));
        if sentence.is_none() {
            without.insert(a.as_str());
        }
        out.push(sentence);
    }
    if !without.is_empty() {
        let names: Vec<&str> = without.into_iter().collect();
        ctx.report.notes.push(format!(
            "no context sentence for {}: pass --context NAME='sentence' to give one",
            names.join(", ")
        ));
    }
    out
}

/// What turns two rated responses into pairs.
struct Rule<'a> {
    min_gap: f64,
    attributes: &'a [String],
    contexts: Vec<Option<String>>,
    stem: String,
    source: &'a str,
}

impl Rule<'_> {
    /// Whether `a` is ahead of `b` by the gap under every attribute, or `b` of `a`.
    fn unanimous(&self, a: &Rated, b: &Rated) -> bool {
        let ahead = |x: &Rated, y: &Rated| {
            x.ratings
                .iter()
                .zip(&y.ratings)
                .all(|(rx, ry)| match (rx, ry) {
                    (Some(rx), Some(ry)) => rx - ry >= self.min_gap - GAP_TOLERANCE,
                    _ => false,
                })
        };
        ahead(a, b) || ahead(b, a)
    }

    /// The pairs two responses to one prompt give, one per attribute whose ratings differ.
    fn pairs_of(
        &self,
        ctx: &mut LoadCtx,
        group: &Group,
        split: Option<Split>,
        a: &Rated,
        b: &Rated,
        out: &mut Vec<PrefPair>,
    ) {
        if a.response == b.response {
            ctx.report.skip("identical responses");
            return;
        }
        if split != Some(Split::Test) && self.attributes.len() > 1 && self.unanimous(a, b) {
            ctx.report.skip(&format!(
                "pairs where all {} attributes agree (train only)",
                self.attributes.len()
            ));
            return;
        }
        for (k, attr) in self.attributes.iter().enumerate() {
            let (Some(ra), Some(rb)) = (a.ratings[k], b.ratings[k]) else {
                ctx.report.skip("missing ratings");
                continue;
            };
            if (ra - rb).abs() < self.min_gap - GAP_TOLERANCE {
                if (ra - rb).abs() <= GAP_TOLERANCE {
                    ctx.report.skip("attribute ties");
                } else {
                    ctx.report
                        .skip(&format!("rating gaps below {}", self.min_gap));
                }
                continue;
            }
            let (w, l, rw, rl) = if ra > rb {
                (a, b, ra, rb)
            } else {
                (b, a, rb, ra)
            };
            out.push(PrefPair {
                id: Some(format!("{}:{}-{}:{attr}", self.stem, w.line, l.line)),
                prompt: group.prompt.clone(),
                chosen: w.response.clone(),
                rejected: l.response.clone(),
                context: self.contexts[k].clone(),
                attribute: Some(attr.clone()),
                split,
                chosen_rating: Some(rw),
                rejected_rating: Some(rl),
                source: Some(self.source.to_string()),
                ..Default::default()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialogue_lines_alternate_back_from_the_user() {
        let turns = dialogue_turns("hi there \n hello ! \n how are you ? \n\n", "\n");
        assert_eq!(
            turns,
            vec![
                Message::new("user", "hi there"),
                Message::new("assistant", "hello !"),
                Message::new("user", "how are you ?"),
            ]
        );
        let two = dialogue_turns("a\nb", "\n");
        assert_eq!(
            (two[0].role.as_str(), two[1].role.as_str()),
            ("assistant", "user")
        );
    }
}
