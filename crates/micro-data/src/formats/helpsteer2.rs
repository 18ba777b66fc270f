//! `nvidia/HelpSteer2` rating rows: `prompt`, `response`, and five 0–4 ratings
//! (`helpfulness`, `correctness`, `coherence`, `complexity`, `verbosity`).
//!
//! Binarised as MiCRo does (paper §4.2), by the rule of [`super::ratings`] with a minimum gap
//! of 1: per attribute, every two responses to the same prompt whose ratings differ by at least
//! 1 form a pair, the higher rated one chosen; ties are dropped; a pair on which all five
//! attributes agree is dropped from train and kept in test. Each pair's context is the paper's
//! Table 6 sentence for its attribute.

use super::ratings::{self, RatingsLayout};
use super::LoadCtx;
use crate::error::Result;
use crate::pair::PrefPair;

/// The five rated attributes, in the dataset's column order.
pub const ATTRIBUTES: [&str; 5] = [
    "helpfulness",
    "correctness",
    "coherence",
    "complexity",
    "verbosity",
];

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

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<PrefPair>> {
    ratings::load(ctx, &RatingsLayout::helpsteer2())
}
