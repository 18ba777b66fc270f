//! `meta.json`: what produced the embeddings, so a model can refuse a cache it was not trained for.

use serde::{Deserialize, Serialize};

/// Storage precision of the tensors in `embeddings.safetensors`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    #[default]
    F32,
    F16,
    Bf16,
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
            Dtype::Bf16 => "bf16",
        })
    }
}

impl std::str::FromStr for Dtype {
    type Err = micro_data::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(Dtype::F32),
            "f16" | "float16" => Ok(Dtype::F16),
            "bf16" | "bfloat16" => Ok(Dtype::Bf16),
            _ => Err(micro_data::UnknownValue::new(
                "dtype",
                s,
                "f32, f16 or bf16",
            )),
        }
    }
}

/// The transformer (or generator) that made the vectors: the `backbone` object of `meta.json`
/// (the type is named for what it holds; the JSON field names are the serialized format).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BackboneInfo {
    /// A stable name, e.g. the model folder's name or `synthetic`. Models compare this.
    pub name: String,
    /// `encoder`, `decoder`, `synthetic` or `external`.
    #[serde(default)]
    pub kind: String,
    /// Architecture from config.json, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// sha256 of the weights file(s), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
}

/// Contents of `meta.json`. Only `dim` is really needed; everything else has defaults so a
/// cache made elsewhere with a minimal meta (or none) still loads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheMeta {
    /// Width of `chosen_embeddings` / `rejected_embeddings`.
    pub dim: usize,
    /// Width of `prompt_embeddings` (the router input); equals `dim` for our backbones.
    #[serde(default)]
    pub prompt_dim: usize,
    #[serde(default)]
    pub n: usize,
    #[serde(default)]
    pub dtype: Dtype,
    #[serde(default)]
    pub backbone: BackboneInfo,
    /// `mean`, `cls`, `last_token`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooling: Option<String>,
    /// How a pair's context entered the router input: `prefix` (`[criteria] c\n[context] x`),
    /// `system` (a system message), or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_insertion: Option<String>,
    /// What text the reward feature h(x, a) embeds: `transcript` (the whole conversation +
    /// response), `last-turn` (the last user turn + response), `response` (the response alone),
    /// or `chat-template` (decoders: the templated conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_text: Option<String>,
    /// What text the router inputs embed: `transcript`, `last-turn` or `chat-template`; decoders
    /// read the hidden state at the last prompt token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_text: Option<String>,
    /// sha256 of the pairs in canonical JSONL form (see [`crate::pairs_hash`]).
    #[serde(default)]
    pub pairs_hash: String,
    /// Anything else a producer wants to record (truncation counts, timings...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// How text became vectors: what a model trained on one cache needs to find again in another.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooling: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_insertion: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_text: Option<String>,
}

impl CacheMeta {
    /// The parts of the metadata that decide what the vectors mean.
    pub fn recipe(&self) -> Recipe {
        Recipe {
            pooling: self.pooling.clone(),
            context_insertion: self.context_insertion.clone(),
            response_text: self.response_text.clone(),
            prompt_text: self.prompt_text.clone(),
        }
    }
}

impl Recipe {
    /// The first field both recipes record with different values; `None` when they agree on
    /// every field both know (a cache made elsewhere may record none).
    pub fn mismatch(&self, other: &Recipe) -> Option<RecipeMismatch> {
        let fields = [
            ("pooling", &self.pooling, &other.pooling),
            (
                "context insertion",
                &self.context_insertion,
                &other.context_insertion,
            ),
            ("response text", &self.response_text, &other.response_text),
            ("prompt text", &self.prompt_text, &other.prompt_text),
        ];
        fields.into_iter().find_map(|(name, a, b)| match (a, b) {
            (Some(a), Some(b)) if a != b => Some(RecipeMismatch {
                field: name,
                ours: a.clone(),
                theirs: b.clone(),
            }),
            _ => None,
        })
    }
}

/// A recipe field two caches (or a model and a cache) record differently, `ours` first.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} `{ours}` vs `{theirs}`")]
pub struct RecipeMismatch {
    /// `pooling`, `context insertion`, `response text` or `prompt text`.
    pub field: &'static str,
    pub ours: String,
    pub theirs: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_differ_only_on_fields_both_record() {
        let a = Recipe {
            context_insertion: Some("prefix".into()),
            response_text: Some("last-turn".into()),
            ..Default::default()
        };
        let mut b = a.clone();
        b.response_text = None;
        assert_eq!(a.mismatch(&b), None);
        b.context_insertion = Some("system".into());
        let m = a.mismatch(&b).unwrap();
        assert_eq!(m.field, "context insertion");
        assert_eq!(m.to_string(), "context insertion `prefix` vs `system`");
    }
}
