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

impl std::str::FromStr for Dtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(Dtype::F32),
            "f16" | "float16" => Ok(Dtype::F16),
            "bf16" | "bfloat16" => Ok(Dtype::Bf16),
            _ => Err(format!("unknown dtype {s:?}: use f32, f16 or bf16")),
        }
    }
}

/// The transformer (or generator) that made the vectors.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Backbone {
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
    pub backbone: Backbone,
    /// `mean`, `cls`, `last_token`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooling: Option<String>,
    /// How a pair's context entered the router input: `prefix` (`[criteria] c\n[context] x`),
    /// `system` (a system message), or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_insertion: Option<String>,
    /// sha256 of the pairs in canonical JSONL form (see [`crate::pairs_hash`]).
    #[serde(default)]
    pub pairs_hash: String,
    /// Anything else a producer wants to record (truncation counts, timings...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}
