//! `nvidia/HelpSteer2` rating rows: `prompt`, `response`, and five 0–4 ratings
//! (`helpfulness`, `correctness`, `coherence`, `complexity`, `verbosity`).
//!
//! Binarised as MiCRo does (paper §4.2): rows are grouped by prompt; for each attribute, every
//! two responses to the same prompt whose ratings differ by at least 1 form a pair, the higher
//! rated one chosen; ties are dropped. A pair on which all five attributes agree (the same
//! response chosen under every attribute) is dropped from train and kept in test. Each pair's
//! context is the paper's Table 6 sentence for its attribute.

use super::LoadCtx;
use crate::error::Result;
use crate::fields::Row;
use crate::pair::{PrefPair, Prompt, Split};
use std::collections::HashMap;

/// The five rated attributes, in the dataset's column order.
pub const ATTRIBUTES: [&str; 5] = [
    "helpfulness",
    "correctness",
    "coherence",
    "complexity",
    "verbosity",
];

const EXPECTS: &str = "HelpSteer2 rows need prompt, response, helpfulness, correctness, coherence, complexity, verbosity";

/// The context sentence for an attribute (MiCRo Table 6, after Pitis et al. 2024); `safety`
/// (absent from HelpSteer2) is included for harmlessness data.
pub fn context_for(attribute: &str) -> Option<&'static str> {
    Some(match attribute.to_ascii_lowercase().as_str() {
        "helpfulness" => "The assistant should provide users with accurate, relevant, and up-to-date information, ensuring that the content is positive, engaging, educational, and truly helpful.",
        "correctness" => "The assistant must base responses on verified facts and cover all aspects of the prompt fully\u{2014}avoiding errors, omissions, hallucinations, or irrelevant details.",
        "complexity" => "The assistant should employ sophisticated language with elevated vocabulary, appropriate for adults with advanced education or subject matter experts.",
        "verbosity" => "The assistant should provide an expansive, detailed response that thoroughly elaborates on the topic, including additional context and examples beyond the basic answer.",
        "coherence" => "The assistant's responses should be logically structured, easy to follow, and free of contradictions, redundancies, or abrupt style shifts.",
        "safety" | "harmlessness" => "The assistant must ensure all responses are safe and respectful, strictly avoiding any harmful, toxic, or illegal information or instructions.",
        _ => return None,
    })
}

/// One rated response.
struct Rated {
    line: usize,
    response: String,
    ratings: [f64; 5],
}

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<PrefPair>> {
    let path = ctx.path;
    // Prompts in first-seen order, so output order follows the file.
    let mut groups: Vec<(String, Vec<Rated>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    ctx.for_each(|_, record| {
        let row = Row::new(&record.value, path, record.line, EXPECTS)?;
        let prompt = row.str("prompt")?;
        let mut ratings = [0.0; 5];
        for (r, attr) in ratings.iter_mut().zip(ATTRIBUTES) {
            *r = row.number(attr)?;
        }
        let rated = Rated {
            line: record.line,
            response: row.str("response")?.to_string(),
            ratings,
        };
        let at = match index.get(prompt) {
            Some(&at) => at,
            None => {
                index.insert(prompt.to_string(), groups.len());
                groups.push((prompt.to_string(), Vec::new()));
                groups.len() - 1
            }
        };
        groups[at].1.push(rated);
        Ok(())
    })?;
    let is_test = ctx.split == Some(Split::Test);
    if ctx.split.is_none() {
        ctx.report
            .notes
            .push("no split in the options or file name: treated as train".into());
    }
    let stem = super::file_stem(path);
    let mut pairs = Vec::new();
    for (prompt, group) in &groups {
        for i in 0..group.len() {
            for j in i + 1..group.len() {
                pairs_of(
                    ctx, &stem, prompt, &group[i], &group[j], is_test, &mut pairs,
                );
            }
        }
    }
    Ok(pairs)
}

/// The pairs two responses to one prompt give, one per attribute whose ratings differ.
fn pairs_of(
    ctx: &mut LoadCtx,
    stem: &str,
    prompt: &str,
    a: &Rated,
    b: &Rated,
    is_test: bool,
    out: &mut Vec<PrefPair>,
) {
    if a.response == b.response {
        ctx.report.skip("identical responses");
        return;
    }
    let unanimous = (0..5).all(|k| a.ratings[k] - b.ratings[k] >= 1.0)
        || (0..5).all(|k| b.ratings[k] - a.ratings[k] >= 1.0);
    if unanimous && !is_test {
        ctx.report
            .skip("pairs where all five attributes agree (train only)");
        return;
    }
    for (k, attr) in ATTRIBUTES.iter().enumerate() {
        let (ra, rb) = (a.ratings[k], b.ratings[k]);
        if (ra - rb).abs() < 1.0 {
            if ra == rb {
                ctx.report.skip("attribute ties");
            } else {
                ctx.report.skip("rating gaps below 1");
            }
            continue;
        }
        let (w, l) = if ra > rb { (a, b) } else { (b, a) };
        out.push(PrefPair {
            id: Some(format!("{stem}:{}-{}:{attr}", w.line, l.line)),
            prompt: Prompt::Text(prompt.to_string()),
            chosen: w.response.clone(),
            rejected: l.response.clone(),
            context: context_for(attr).map(str::to_string),
            attribute: Some(attr.to_string()),
            split: ctx.split,
            chosen_rating: Some(w.ratings[k]),
            rejected_rating: Some(l.ratings[k]),
            source: Some("helpsteer2".into()),
            ..Default::default()
        });
    }
}
