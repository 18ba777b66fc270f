//! How a sentence-transformers folder says to pool: `modules.json` (is there a `Pooling` and a
//! `Normalize` module?), the pooling module's `config.json`, and `sentence_bert_config.json`
//! (`max_seq_length`). A plain BERT folder without them gets mean pooling and no normalisation.

use crate::error::{EmbedError, Result};
use crate::folder::read_json;
use serde_json::Value;
use std::path::Path;

/// How token states become one vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Average over the sequence's tokens (special tokens included, as sentence-transformers).
    Mean,
    /// The first token's state.
    Cls,
    /// Element-wise maximum over the tokens.
    Max,
    /// The sum over tokens divided by sqrt(length).
    MeanSqrtLen,
}

impl Pooling {
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Max => "max",
            Pooling::MeanSqrtLen => "mean_sqrt_len",
        }
    }
}

/// The sentence-transformers settings of a folder.
#[derive(Clone, Debug, PartialEq)]
pub struct StConfig {
    pub pooling: Pooling,
    pub normalize: bool,
    /// `max_seq_length` of sentence_bert_config.json, when given.
    pub max_seq_length: Option<usize>,
}

impl StConfig {
    pub fn read(dir: &Path) -> Result<StConfig> {
        let modules_path = dir.join("modules.json");
        let (pooling_dir, normalize) = if modules_path.is_file() {
            let modules = read_json(&modules_path)?;
            let list = modules
                .as_array()
                .ok_or_else(|| EmbedError::invalid(&modules_path, "expected a list of modules"))?;
            let kind = |m: &Value| {
                m.get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let pooling = list
                .iter()
                .find(|m| kind(m).ends_with(".Pooling"))
                .map(|m| {
                    m.get("path")
                        .and_then(Value::as_str)
                        .unwrap_or("1_Pooling")
                        .to_string()
                });
            let normalize = list.iter().any(|m| kind(m).ends_with(".Normalize"));
            (pooling, normalize)
        } else {
            (None, false)
        };
        let pooling = match pooling_dir
            .map(|p| dir.join(p).join("config.json"))
            .filter(|p| p.is_file())
        {
            Some(path) => pooling_mode(&read_json(&path)?, &path)?,
            None => Pooling::Mean,
        };
        let sb_path = dir.join("sentence_bert_config.json");
        let max_seq_length = if sb_path.is_file() {
            read_json(&sb_path)?
                .get("max_seq_length")
                .and_then(Value::as_u64)
                .map(|v| v as usize)
        } else {
            None
        };
        Ok(StConfig {
            pooling,
            normalize,
            max_seq_length,
        })
    }
}

fn pooling_mode(cfg: &Value, path: &Path) -> Result<Pooling> {
    if let Some(mode) = cfg.get("pooling_mode").and_then(Value::as_str) {
        return match mode {
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            "max" => Ok(Pooling::Max),
            "mean_sqrt_len_tokens" => Ok(Pooling::MeanSqrtLen),
            other => Err(EmbedError::invalid(path, format!("pooling_mode {other:?} is not supported (mean, cls, max, mean_sqrt_len_tokens)"))),
        };
    }
    let flag = |k: &str| cfg.get(k).and_then(Value::as_bool).unwrap_or(false);
    let modes = [
        ("pooling_mode_cls_token", Pooling::Cls),
        ("pooling_mode_mean_tokens", Pooling::Mean),
        ("pooling_mode_max_tokens", Pooling::Max),
        ("pooling_mode_mean_sqrt_len_tokens", Pooling::MeanSqrtLen),
    ];
    let on: Vec<Pooling> = modes
        .iter()
        .filter(|(k, _)| flag(k))
        .map(|(_, p)| *p)
        .collect();
    match on.as_slice() {
        [] => Ok(Pooling::Mean),
        [one] => Ok(*one),
        _ => Err(EmbedError::invalid(
            path,
            "several pooling modes at once (concatenated pooling) is not supported",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cls_pooling_and_normalize_like_bge() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("modules.json"),
            r#"[{"idx":0,"path":"","type":"sentence_transformers.models.Transformer"},
                {"idx":1,"path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
                {"idx":2,"path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#,
        )
        .unwrap();
        std::fs::create_dir(d.join("1_Pooling")).unwrap();
        std::fs::write(
            d.join("1_Pooling/config.json"),
            r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
        )
        .unwrap();
        std::fs::write(
            d.join("sentence_bert_config.json"),
            r#"{"max_seq_length": 512}"#,
        )
        .unwrap();
        let c = StConfig::read(d).unwrap();
        assert_eq!(
            c,
            StConfig {
                pooling: Pooling::Cls,
                normalize: true,
                max_seq_length: Some(512)
            }
        );
    }

    #[test]
    fn a_plain_bert_folder_means_mean_pooling_without_normalisation() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            StConfig::read(dir.path()).unwrap(),
            StConfig {
                pooling: Pooling::Mean,
                normalize: false,
                max_seq_length: None
            }
        );
    }
}
