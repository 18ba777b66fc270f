//! `config.json` of a Hugging Face Llama / Qwen2 checkpoint, in both the older layout
//! (`rope_theta`, `rope_scaling` at the top) and the newer one (`rope_parameters`).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::{DecoderError, Result};
use crate::folder::{ModelFolder, CONFIG};

/// Which transformer block layout the checkpoint uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    /// Llama 2 / 3.x: optional attention and MLP biases (`attention_bias`, `mlp_bias`).
    Llama,
    /// Qwen2 / 2.5: biases on the q, k, v projections, none on o.
    Qwen2,
}

/// Which head sits on top of the final norm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// `*ForSequenceClassification`: a `score.weight` [num_labels, hidden], as reward models use.
    SequenceClassification,
    /// `*ForCausalLM` or the bare `*Model`: no scalar score; only hidden states are used.
    None,
}

/// Rotary position embedding frequency scaling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RopeScaling {
    /// Plain `theta^(-2i/d)` frequencies.
    None,
    /// Positions divided by `factor` (equivalently frequencies).
    Linear { factor: f64 },
    /// Llama 3.1+ band-wise scaling (long wavelengths divided by `factor`, smooth in between).
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

/// The parts of `config.json` the forward pass needs.
#[derive(Clone, Debug)]
pub struct DecoderConfig {
    pub architecture: Architecture,
    pub head: Head,
    /// The `architectures[0]` string as written (e.g. `LlamaForSequenceClassification`).
    pub architecture_name: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    /// Longest sequence the model accepts (capped by Qwen2's sliding window when it is on,
    /// so that full attention stays exact).
    pub max_position_embeddings: usize,
    pub qkv_bias: bool,
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub tie_word_embeddings: bool,
    pub pad_token_id: Option<u32>,
}

const SUPPORTED: &str = "LlamaForSequenceClassification, LlamaForCausalLM, LlamaModel, \
                         Qwen2ForSequenceClassification, Qwen2ForCausalLM, Qwen2Model";

impl DecoderConfig {
    /// Validates the `config.json` of `folder` (read once, by [`ModelFolder::open`]).
    pub fn from_folder(folder: &ModelFolder) -> Result<Self> {
        Self::from_value(&folder.config, &folder.dir.join(CONFIG))
    }

    /// Parses the text of a `config.json`; `path` only names the file in errors.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| DecoderError::config(path, "(file)", format!("not valid JSON: {e}")))?;
        Self::from_value(&value, path)
    }

    /// Validates a parsed `config.json`; `path` only names the file in errors.
    pub fn from_value(value: &Value, path: &Path) -> Result<Self> {
        let obj = value
            .as_object()
            .ok_or_else(|| DecoderError::config(path, "(file)", "expected a JSON object"))?;
        Fields {
            obj,
            path: path.to_path_buf(),
        }
        .parse()
    }
}

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    path: PathBuf,
}

impl Fields<'_> {
    fn parse(&self) -> Result<DecoderConfig> {
        let (architecture, head, architecture_name) = self.architecture()?;
        self.check_activation()?;
        let hidden_size = self.req_usize("hidden_size")?;
        let num_attention_heads = self.req_usize("num_attention_heads")?;
        let num_key_value_heads = self
            .opt_usize("num_key_value_heads")?
            .unwrap_or(num_attention_heads);
        if num_attention_heads == 0
            || num_key_value_heads == 0
            || num_attention_heads % num_key_value_heads != 0
        {
            return Err(self.err(
                "num_key_value_heads",
                format!(
                    "{num_key_value_heads} must divide num_attention_heads = {num_attention_heads}"
                ),
            ));
        }
        let head_dim = self
            .opt_usize("head_dim")?
            .unwrap_or(hidden_size / num_attention_heads);
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(self.err(
                "head_dim",
                format!("{head_dim} must be even and positive for rotary embeddings"),
            ));
        }
        let (qkv_bias, o_bias) = match architecture {
            Architecture::Qwen2 => (true, false),
            Architecture::Llama => {
                let b = self.opt_bool("attention_bias")?.unwrap_or(false);
                (b, b)
            }
        };
        let (rope_theta, rope_scaling) = self.rope()?;
        Ok(DecoderConfig {
            architecture,
            head,
            architecture_name,
            vocab_size: self.req_usize("vocab_size")?,
            hidden_size,
            intermediate_size: self.req_usize("intermediate_size")?,
            num_hidden_layers: self.req_usize("num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: self.opt_f64("rms_norm_eps")?.unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            max_position_embeddings: self.max_positions(architecture)?,
            qkv_bias,
            o_bias,
            mlp_bias: architecture == Architecture::Llama
                && self.opt_bool("mlp_bias")?.unwrap_or(false),
            tie_word_embeddings: self.opt_bool("tie_word_embeddings")?.unwrap_or(false),
            pad_token_id: self.opt_usize("pad_token_id")?.map(|p| p as u32),
        })
    }

    fn architecture(&self) -> Result<(Architecture, Head, String)> {
        let name = match self.obj.get("architectures") {
            Some(Value::Array(a)) if !a.is_empty() => a[0]
                .as_str()
                .ok_or_else(|| self.err("architectures", "expected a list of strings"))?
                .to_string(),
            _ => {
                return Err(self.err(
                    "architectures",
                    format!("missing; expected one of {SUPPORTED}"),
                ))
            }
        };
        let (arch, rest) = if let Some(rest) = name.strip_prefix("Llama") {
            (Architecture::Llama, rest)
        } else if let Some(rest) = name.strip_prefix("Qwen2") {
            (Architecture::Qwen2, rest)
        } else {
            return Err(self.err(
                "architectures",
                format!("unsupported architecture `{name}`; supported: {SUPPORTED}"),
            ));
        };
        let head = match rest {
            "ForSequenceClassification" => Head::SequenceClassification,
            "ForCausalLM" | "Model" => Head::None,
            _ => {
                return Err(self.err(
                    "architectures",
                    format!("unsupported architecture `{name}`; supported: {SUPPORTED}"),
                ))
            }
        };
        Ok((arch, head, name))
    }

    fn check_activation(&self) -> Result<()> {
        match self.obj.get("hidden_act").and_then(Value::as_str) {
            None | Some("silu") | Some("swish") => Ok(()),
            Some(other) => Err(self.err(
                "hidden_act",
                format!("`{other}` is not supported (only silu)"),
            )),
        }
    }

    fn max_positions(&self, arch: Architecture) -> Result<usize> {
        let max = self
            .opt_usize("max_position_embeddings")?
            .unwrap_or(usize::MAX);
        let sliding =
            arch == Architecture::Qwen2 && self.opt_bool("use_sliding_window")?.unwrap_or(false);
        match (sliding, self.opt_usize("sliding_window")?) {
            (true, Some(w)) => Ok(max.min(w)),
            _ => Ok(max),
        }
    }

    /// Theta and scaling from `rope_parameters` (newer layout) or the top level (older).
    fn rope(&self) -> Result<(f64, RopeScaling)> {
        let params = match self.obj.get("rope_parameters") {
            Some(Value::Object(p)) => Some(p),
            Some(Value::Null) | None => None,
            Some(_) => return Err(self.err("rope_parameters", "expected an object")),
        };
        let theta = match params.and_then(|p| p.get("rope_theta")) {
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.err("rope_parameters.rope_theta", "expected a number"))?,
            None => self.opt_f64("rope_theta")?.unwrap_or(10_000.0),
        };
        let (scaling, field) = match (params, self.obj.get("rope_scaling")) {
            (Some(p), _) => (Some(p), "rope_parameters"),
            (None, Some(Value::Object(s))) => (Some(s), "rope_scaling"),
            (None, None | Some(Value::Null)) => (None, "rope_scaling"),
            (None, Some(_)) => return Err(self.err("rope_scaling", "expected an object or null")),
        };
        let scaling = match scaling {
            Some(s) => self.rope_scaling(s, field)?,
            None => RopeScaling::None,
        };
        Ok((theta, scaling))
    }

    fn rope_scaling(&self, s: &Map<String, Value>, field: &str) -> Result<RopeScaling> {
        let kind = s
            .get("rope_type")
            .or_else(|| s.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        let num = |name: &str| -> Result<f64> {
            s.get(name).and_then(Value::as_f64).ok_or_else(|| {
                self.err(
                    &format!("{field}.{name}"),
                    format!("required for rope type `{kind}`"),
                )
            })
        };
        match kind {
            "default" => Ok(RopeScaling::None),
            "linear" => Ok(RopeScaling::Linear {
                factor: num("factor")?,
            }),
            "llama3" => Ok(RopeScaling::Llama3 {
                factor: num("factor")?,
                low_freq_factor: num("low_freq_factor")?,
                high_freq_factor: num("high_freq_factor")?,
                original_max_position_embeddings: num("original_max_position_embeddings")?,
            }),
            other => Err(self.err(
                &format!("{field}.rope_type"),
                format!("rope type `{other}` is not supported (default, linear, llama3)"),
            )),
        }
    }

    fn err(&self, field: &str, message: impl Into<String>) -> DecoderError {
        DecoderError::config(&self.path, field, message)
    }

    fn req_usize(&self, name: &str) -> Result<usize> {
        self.opt_usize(name)?
            .ok_or_else(|| self.err(name, "missing (expected a positive integer)"))
    }

    fn opt_usize(&self, name: &str) -> Result<Option<usize>> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                self.err(name, format!("expected a non-negative integer, found {v}"))
            }),
        }
    }

    fn opt_f64(&self, name: &str) -> Result<Option<f64>> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.err(name, format!("expected a number, found {v}"))),
        }
    }

    fn opt_bool(&self, name: &str) -> Result<Option<bool>> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.err(name, format!("expected true or false, found {v}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DecoderConfig> {
        DecoderConfig::from_json_str(text, Path::new("config.json"))
    }

    const BASE: &str = r#""hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "vocab_size": 400"#;

    #[test]
    fn old_layout_reads_top_level_theta_and_llama3_scaling() {
        let c = parse(&format!(
            r#"{{"architectures": ["LlamaForCausalLM"], {BASE}, "rope_theta": 500000.0,
            "rope_scaling": {{"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192, "rope_type": "llama3"}}}}"#
        ))
        .unwrap();
        assert_eq!(c.rope_theta, 500000.0);
        assert_eq!(c.head, Head::None);
        assert_eq!(c.num_key_value_heads, 4);
        assert_eq!(c.head_dim, 16);
        assert!(matches!(c.rope_scaling, RopeScaling::Llama3 { factor, .. } if factor == 32.0));
    }

    #[test]
    fn new_layout_reads_rope_parameters() {
        let c = parse(&format!(
            r#"{{"architectures": ["Qwen2ForSequenceClassification"], {BASE}, "rope_theta": 1.0,
            "rope_parameters": {{"rope_theta": 1000000.0, "rope_type": "default"}}}}"#
        ))
        .unwrap();
        assert_eq!(c.rope_theta, 1_000_000.0);
        assert_eq!(c.rope_scaling, RopeScaling::None);
        assert!(c.qkv_bias && !c.o_bias);
    }

    #[test]
    fn unsupported_architecture_and_rope_name_the_field() {
        let e = parse(&format!(
            r#"{{"architectures": ["GPT2LMHeadModel"], {BASE}}}"#
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("architectures") && e.contains("GPT2LMHeadModel"),
            "{e}"
        );
        let e = parse(&format!(
            r#"{{"architectures": ["LlamaForCausalLM"], {BASE}, "rope_scaling": {{"type": "yarn", "factor": 4.0}}}}"#
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("rope_scaling.rope_type") && e.contains("yarn"),
            "{e}"
        );
        let e = parse(r#"{"architectures": ["LlamaForCausalLM"], "hidden_size": 64}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("intermediate_size") || e.contains("num_attention_heads"),
            "{e}"
        );
    }
}
