//! The [`Backbone`] trait every frozen transformer (encoder or decoder) implements, and what
//! goes in and comes out of it.

use crate::error::Result;
use micro_cache::Matrix;
use micro_data::Prompt;
use serde::{Deserialize, Serialize};

/// One response to embed: h(x, a) for prompt `x` (and context `c`, when the pair has one).
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    pub prompt: &'a Prompt,
    pub context: Option<&'a str>,
    pub response: &'a str,
}

/// One router input to embed: e(x, c).
#[derive(Clone, Copy, Debug)]
pub struct PromptItem<'a> {
    pub prompt: &'a Prompt,
    pub context: Option<&'a str>,
}

/// What [`Backbone::embed_responses`] returns, one row per item, in the items' order.
#[derive(Clone, Debug, Default)]
pub struct ResponseFeatures {
    /// The reward features h(x, a): `[items, dim]`.
    pub features: Matrix,
    /// Decoders: the hidden state at the prompt boundary (last token before the response),
    /// from the same forward pass, used as the router input e(x, c): `[items, prompt_dim]`.
    /// `None` for encoders, whose router input is a separate pass ([`Backbone::embed_prompts`]).
    pub router_inputs: Option<Matrix>,
    /// Decoder reward models: the score head's scalar per item.
    pub scores: Option<Vec<f32>>,
    /// How many items lost tokens to the model's context length.
    pub truncated: usize,
}

/// What [`Backbone::embed_prompts`] returns, one row per prompt, in order.
#[derive(Clone, Debug, Default)]
pub struct PromptFeatures {
    /// `[prompts, prompt_dim]`.
    pub features: Matrix,
    pub truncated: usize,
}

/// Where a pair's context goes (paper: "we prepend the contextual information to the user prompt").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContextMode {
    /// `[criteria] {c}\n[context] {prompt}` in the (last) user turn, as the paper's code does.
    #[default]
    Prefix,
    /// A system message carrying the context (decoders with a chat template; encoders treat it
    /// like `Prefix`).
    System,
    /// Contexts are ignored.
    None,
}

impl ContextMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ContextMode::Prefix => "prefix",
            ContextMode::System => "system",
            ContextMode::None => "none",
        }
    }
}

impl std::str::FromStr for ContextMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "prefix" => Ok(ContextMode::Prefix),
            "system" => Ok(ContextMode::System),
            "none" => Ok(ContextMode::None),
            _ => Err(format!(
                "unknown context mode {s:?}: use prefix, system or none"
            )),
        }
    }
}

/// Where the forward pass runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceKind {
    #[default]
    Cpu,
    /// A CUDA GPU by ordinal (needs the `cuda` cargo feature).
    Cuda(usize),
}

impl std::str::FromStr for DeviceKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.to_ascii_lowercase();
        match s.as_str() {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" | "gpu" => Ok(DeviceKind::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceKind::Cuda)
                .ok_or_else(|| format!("unknown device {s:?}: use cpu, cuda or cuda:N")),
        }
    }
}

/// How to load and run a backbone.
#[derive(Clone, Debug)]
pub struct BackboneOptions {
    pub context: ContextMode,
    /// Overrides the model's own maximum sequence length (never raises it past the
    /// position-embedding table).
    pub max_len: Option<usize>,
    /// Sequences per forward pass.
    pub batch_size: usize,
    pub device: DeviceKind,
}

impl Default for BackboneOptions {
    fn default() -> Self {
        BackboneOptions {
            context: ContextMode::Prefix,
            max_len: None,
            batch_size: 32,
            device: DeviceKind::Cpu,
        }
    }
}

/// How a backbone turns text into vectors, recorded in the cache's `meta.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Description {
    /// `mean`, `cls`, `last_token`, ...
    pub pooling: String,
    pub normalized: bool,
    pub max_len: usize,
    pub context: ContextMode,
}

/// A frozen transformer that embeds responses (reward features) and prompts (router inputs).
///
/// Implementations batch internally (`BackboneOptions::batch_size`), sort by token length to
/// limit padding, and return rows in the input order. They never panic on text: over-long input
/// is truncated (oldest prompt text first, never the response when avoidable) and counted, and
/// an empty response is embedded as such.
pub trait Backbone: Send + Sync {
    /// Name, kind (`encoder`/`decoder`), architecture and weights sha256, for `meta.json`.
    fn info(&self) -> micro_cache::Backbone;
    fn describe(&self) -> Description;
    /// Width of the reward features.
    fn dim(&self) -> usize;
    /// Width of the router inputs (equal to `dim` for our backbones).
    fn prompt_dim(&self) -> usize {
        self.dim()
    }
    /// Whether the reward features depend on the context (decoders put it in the prompt;
    /// encoders embed prompt + response only). Decides which responses count as repeats.
    fn response_uses_context(&self) -> bool {
        true
    }
    /// Whether [`Backbone::embed_responses`] returns the router inputs (decoders).
    fn router_inputs_from_responses(&self) -> bool {
        self.info().kind == "decoder"
    }
    /// h(x, a) for each item; decoders also return the router inputs and scores.
    fn embed_responses(&self, items: &[Item<'_>]) -> Result<ResponseFeatures>;
    /// e(x, c) for each prompt, without a response (encoders; decoders for serving new prompts).
    fn embed_prompts(&self, prompts: &[PromptItem<'_>]) -> Result<PromptFeatures>;
}

/// The text of the router input for text backbones: the prompt with the context prepended in
/// the paper's format (`[criteria] c\n[context] x`), or the prompt alone.
pub fn prompt_with_context(prompt: &Prompt, context: Option<&str>, mode: ContextMode) -> String {
    let text = prompt.to_text();
    match active_context(context, mode) {
        Some(c) => format!("{} {text}", criteria_head(c)),
        None => text,
    }
}

/// `context` when it is to be inserted: not blank, and a mode other than `None`.
pub(crate) fn active_context(context: Option<&str>, mode: ContextMode) -> Option<&str> {
    context.filter(|c| !c.trim().is_empty() && mode != ContextMode::None)
}

/// The paper's context prefix, `[criteria] c\n[context]`, which the prompt text follows after a
/// space.
pub(crate) fn criteria_head(context: &str) -> String {
    format!("[criteria] {context}\n[context]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_goes_before_the_prompt_in_the_papers_format() {
        let p = Prompt::Text("Explain SSO.".into());
        assert_eq!(
            prompt_with_context(&p, Some("Be brief."), ContextMode::Prefix),
            "[criteria] Be brief.\n[context] Explain SSO."
        );
        assert_eq!(
            prompt_with_context(&p, Some("Be brief."), ContextMode::None),
            "Explain SSO."
        );
        assert_eq!(
            prompt_with_context(&p, Some("  "), ContextMode::Prefix),
            "Explain SSO."
        );
        assert_eq!(
            prompt_with_context(&p, None, ContextMode::System),
            "Explain SSO."
        );
    }

    #[test]
    fn options_parse_from_flags() {
        assert_eq!("cuda:1".parse::<DeviceKind>(), Ok(DeviceKind::Cuda(1)));
        assert_eq!("CPU".parse::<DeviceKind>(), Ok(DeviceKind::Cpu));
        assert!("tpu".parse::<DeviceKind>().is_err());
        assert_eq!("system".parse::<ContextMode>(), Ok(ContextMode::System));
        assert!("after".parse::<ContextMode>().is_err());
    }
}
