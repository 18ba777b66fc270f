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

/// One router input to embed: e(x, c), or e(x) when `context` is `None`. Router inputs never
/// come from a response's pass: a decoder's hidden state after a response token has seen the
/// response, and would leak the label into f(x).
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

impl std::fmt::Display for ContextMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for ResponseText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for PromptText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceKind::Cpu => f.write_str("cpu"),
            DeviceKind::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl std::str::FromStr for ContextMode {
    type Err = micro_data::UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "prefix" => Ok(ContextMode::Prefix),
            "system" => Ok(ContextMode::System),
            "none" => Ok(ContextMode::None),
            _ => Err(micro_data::UnknownValue::new(
                "context mode",
                s,
                "prefix, system or none",
            )),
        }
    }
}

/// What text an encoder embeds as the reward feature h(x, a) of a response.
///
/// Measured on real multi-turn text (see the README's feature table): an encoder with a short
/// window (all-MiniLM-L6-v2: 256 tokens) that embeds the whole transcript spends most of its
/// window on old turns, and its mean pooling dilutes the response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResponseText {
    /// Every turn of the conversation, then the response (oldest text dropped first).
    Transcript,
    /// The last user turn, then the response.
    #[default]
    LastTurn,
    /// The response alone.
    Response,
}

/// What text an encoder embeds as the router input e(x) (the context goes before it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptText {
    /// Every turn of the conversation (oldest text dropped first).
    Transcript,
    /// The last user turn.
    #[default]
    LastTurn,
}

impl ResponseText {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseText::Transcript => "transcript",
            ResponseText::LastTurn => "last-turn",
            ResponseText::Response => "response",
        }
    }

    /// The prompt part of the text embedded with a response.
    pub fn prompt_part(self, prompt: &Prompt) -> String {
        match self {
            ResponseText::Transcript => prompt.to_text(),
            ResponseText::LastTurn => prompt.last_user_text().to_string(),
            ResponseText::Response => String::new(),
        }
    }
}

impl PromptText {
    pub fn as_str(self) -> &'static str {
        match self {
            PromptText::Transcript => "transcript",
            PromptText::LastTurn => "last-turn",
        }
    }

    /// The prompt's text as the router input embeds it.
    pub fn text(self, prompt: &Prompt) -> String {
        match self {
            PromptText::Transcript => prompt.to_text(),
            PromptText::LastTurn => prompt.last_user_text().to_string(),
        }
    }
}

impl std::str::FromStr for ResponseText {
    type Err = micro_data::UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "transcript" | "full" => Ok(ResponseText::Transcript),
            "last-turn" | "last" => Ok(ResponseText::LastTurn),
            "response" => Ok(ResponseText::Response),
            _ => Err(micro_data::UnknownValue::new(
                "response text",
                s,
                "transcript, last-turn or response",
            )),
        }
    }
}

impl std::str::FromStr for PromptText {
    type Err = micro_data::UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "transcript" | "full" => Ok(PromptText::Transcript),
            "last-turn" | "last" => Ok(PromptText::LastTurn),
            _ => Err(micro_data::UnknownValue::new(
                "prompt text",
                s,
                "transcript or last-turn",
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
    type Err = micro_data::UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let s = s.to_ascii_lowercase();
        match s.as_str() {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" | "gpu" => Ok(DeviceKind::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceKind::Cuda)
                .ok_or_else(|| micro_data::UnknownValue::new("device", &s, "cpu, cuda or cuda:N")),
        }
    }
}

/// How to load and run a backbone (with the `clap` feature: `micro embed`'s flags). `max_len`
/// overrides the model's own maximum sequence length but never raises it past the
/// position-embedding table.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct BackboneOptions {
    /// Where a pair's context goes: prefix (`[criteria] c\n[context] prompt`), system, none.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = BackboneOptions::default().context))]
    pub context: ContextMode,
    /// Encoders: the text of a response's reward feature: last-turn (the last user turn, then
    /// the response), transcript (every turn, then the response) or response (alone). Decoders
    /// always embed the chat-templated conversation. See the README's feature table.
    #[cfg_attr(
        feature = "clap",
        arg(long, default_value_t = BackboneOptions::default().response_text)
    )]
    pub response_text: ResponseText,
    /// Encoders: the text of a router input: last-turn or transcript (the context goes before it).
    #[cfg_attr(
        feature = "clap",
        arg(long, default_value_t = BackboneOptions::default().prompt_text)
    )]
    pub prompt_text: PromptText,
    /// Sequences per forward pass.
    #[cfg_attr(
        feature = "clap",
        arg(long, default_value_t = BackboneOptions::default().batch_size)
    )]
    pub batch_size: usize,
    /// Maximum tokens per sequence (default: the model's, e.g. max_seq_length 256 for MiniLM).
    #[cfg_attr(feature = "clap", arg(long))]
    pub max_len: Option<usize>,
    /// cpu, or cuda[:N] for a GPU (a build from scripts/build-cuda.sh; decoders run in bf16
    /// there).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = BackboneOptions::default().device))]
    pub device: DeviceKind,
}

impl Default for BackboneOptions {
    fn default() -> Self {
        BackboneOptions {
            context: ContextMode::Prefix,
            max_len: None,
            batch_size: 32,
            device: DeviceKind::Cpu,
            response_text: ResponseText::default(),
            prompt_text: PromptText::default(),
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
    /// `transcript`, `last-turn`, `response` (encoders) or `chat-template` (decoders).
    pub response_text: String,
    /// `transcript`, `last-turn` (encoders) or `chat-template` (decoders).
    pub prompt_text: String,
}

/// Which implementation a model folder's architecture maps to, and what a backbone is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// BERT-style encoders: BERT, MiniLM, BGE, E5, GTE (all `BertModel`-shaped).
    Encoder,
    /// Llama / Qwen2 decoders (reward models or plain LMs).
    Decoder,
}

impl Family {
    /// The `kind` a cache's `meta.json` records for this family.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Encoder => "encoder",
            Family::Decoder => "decoder",
        }
    }
}

/// What a backbone is and does, as types: callers branch on these, never on names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub family: Family,
    /// Whether the reward features depend on the context (decoders put it in the prompt;
    /// encoders embed prompt + response only). Decides which responses count as repeats.
    pub response_uses_context: bool,
    /// Whether [`Backbone::embed_responses`] can return the checkpoint's own scores.
    pub scores: bool,
}

/// A frozen transformer that embeds responses (reward features) and prompts (router inputs).
///
/// Implementations batch internally (`BackboneOptions::batch_size`), sort by token length to
/// limit padding, and return rows in the input order. They never panic on text: over-long input
/// is truncated (oldest prompt text first, never the response when avoidable) and counted, and
/// an empty response is embedded as such.
pub trait Backbone: Send + Sync {
    /// What the backbone is (its [`Family`]) and what its features depend on.
    fn capabilities(&self) -> Capabilities;
    /// Name, kind ([`Family::as_str`]), architecture and weights sha256, for `meta.json`.
    fn info(&self) -> micro_cache::BackboneInfo;
    fn describe(&self) -> Description;
    /// Width of the reward features.
    fn dim(&self) -> usize;
    /// Width of the router inputs (equal to `dim` for our backbones).
    fn prompt_dim(&self) -> usize {
        self.dim()
    }
    /// h(x, a) for each item; decoder reward models also return their scores.
    fn embed_responses(&self, items: &[Item<'_>]) -> Result<ResponseFeatures>;
    /// The router input e(x, c) of each prompt, computed from the prompt (and context) alone:
    /// the same vector for training, evaluation and serving.
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
