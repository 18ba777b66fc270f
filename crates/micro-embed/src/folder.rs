//! A Hugging Face model folder on disk: config.json, weights (single or sharded safetensors),
//! tokenizer files and an optional chat template. No hub access: every missing file is an
//! error that names it and where we looked.

use crate::error::{EmbedError, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

pub const CONFIG: &str = "config.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const WEIGHTS_INDEX: &str = "model.safetensors.index.json";
pub const TOKENIZER: &str = "tokenizer.json";
pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
pub const CHAT_TEMPLATE: &str = "chat_template.jinja";

/// Where `scripts/fetch-assets.sh minilm` puts all-MiniLM-L6-v2, the default backbone:
/// `$MICRO_HOME/models/all-MiniLM-L6-v2` (`None` when neither MICRO_HOME nor HOME is set).
pub fn default_minilm_dir() -> Option<PathBuf> {
    micro_data::home::micro_home().map(|h| h.join("models").join("all-MiniLM-L6-v2"))
}

/// The fetched all-MiniLM-L6-v2 folder: `MICRO_MINILM_DIR`, else [`default_minilm_dir`]; an
/// error that says how to get it when the weights are not there (the tests that need real
/// weights all locate them this way).
pub fn located_minilm_dir() -> std::result::Result<PathBuf, MiniLmNotFound> {
    let dir = std::env::var_os("MICRO_MINILM_DIR")
        .map(PathBuf::from)
        .or_else(default_minilm_dir)
        .ok_or(MiniLmNotFound::NoHome)?;
    if !dir.join(WEIGHTS).is_file() {
        return Err(MiniLmNotFound::Missing { dir });
    }
    Ok(dir)
}

/// Why [`located_minilm_dir`] found no weights.
#[derive(Debug, thiserror::Error)]
pub enum MiniLmNotFound {
    #[error("set MICRO_MINILM_DIR, MICRO_HOME or HOME to locate all-MiniLM-L6-v2")]
    NoHome,
    #[error(
        "all-MiniLM-L6-v2 not found at {}: run `scripts/fetch-assets.sh minilm` (or set MICRO_MINILM_DIR)",
        dir.display()
    )]
    Missing { dir: PathBuf },
}

/// The located files of a model folder, and its parsed `config.json`.
#[derive(Clone, Debug)]
pub struct ModelFolder {
    pub dir: PathBuf,
    pub config: Value,
    /// `architectures[0]` from config.json, else `model_type`, else empty.
    pub architecture: String,
    pub model_type: String,
    /// The safetensors files holding the weights, in shard order.
    pub weights: Vec<PathBuf>,
    pub tokenizer: PathBuf,
    /// `tokenizer_config.json`, when present.
    pub tokenizer_config: Option<Value>,
}

/// A chat template found in a model folder, and the file it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateSource {
    pub text: String,
    pub path: PathBuf,
}

impl ModelFolder {
    /// Locates the files of the folder `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(EmbedError::MissingFile {
                path: dir.to_path_buf(),
                what: "model folder".into(),
                looked: dir.display().to_string(),
            });
        }
        let config = read_json(&require(dir, CONFIG, "the model's config.json")?)?;
        let architecture = config
            .get("architectures")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .or_else(|| config.get("model_type").and_then(Value::as_str))
            .unwrap_or_default()
            .to_string();
        let model_type = config
            .get("model_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let weights = locate_weights(dir)?;
        let tokenizer = require(
            dir,
            TOKENIZER,
            "the tokenizer (tokenizer.json, the `tokenizers` format)",
        )?;
        let tc_path = dir.join(TOKENIZER_CONFIG);
        let tokenizer_config = if tc_path.is_file() {
            Some(read_json(&tc_path)?)
        } else {
            None
        };
        Ok(ModelFolder {
            dir: dir.to_path_buf(),
            config,
            architecture,
            model_type,
            weights,
            tokenizer,
            tokenizer_config,
        })
    }

    /// A stable name for the backbone: the folder's name.
    pub fn name(&self) -> String {
        self.dir
            .canonicalize()
            .unwrap_or_else(|_| self.dir.clone())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    }

    /// sha256 over the weight files' bytes, in shard order (one file: its plain sha256).
    pub fn weights_sha256(&self) -> Result<String> {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        for path in &self.weights {
            let mut f = std::fs::File::open(path).map_err(|e| EmbedError::io(path, e))?;
            loop {
                let n = f.read(&mut buf).map_err(|e| EmbedError::io(path, e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        Ok(hex::encode(h.finalize()))
    }

    /// A config.json integer field, or an error naming it.
    pub fn config_usize(&self, key: &str) -> Result<usize> {
        self.config
            .get(key)
            .and_then(Value::as_u64)
            .map(|v| v as usize)
            .ok_or_else(|| {
                EmbedError::invalid(
                    self.dir.join(CONFIG),
                    format!("missing or non-integer field `{key}`"),
                )
            })
    }

    /// A config.json float field, with a default when absent.
    pub fn config_f64_or(&self, key: &str, default: f64) -> f64 {
        self.config
            .get(key)
            .and_then(Value::as_f64)
            .unwrap_or(default)
    }

    /// The folder's chat template: `chat_template.jinja`, else the `chat_template` of
    /// tokenizer_config.json (a string, or a list of named templates of which `default` is
    /// taken, else the first); `None` when neither exists. Read on demand: encoders never need it.
    pub fn chat_template(&self) -> Result<Option<TemplateSource>> {
        let jinja = self.dir.join(CHAT_TEMPLATE);
        if jinja.is_file() {
            let text = std::fs::read_to_string(&jinja).map_err(|e| EmbedError::io(&jinja, e))?;
            return Ok(Some(TemplateSource { text, path: jinja }));
        }
        let path = self.dir.join(TOKENIZER_CONFIG);
        match self
            .tokenizer_config
            .as_ref()
            .and_then(|tc| tc.get("chat_template"))
        {
            Some(value) => Ok(Some(TemplateSource {
                text: template_text(value, &path)?,
                path,
            })),
            None => Ok(None),
        }
    }

    /// Loads tokenizer.json.
    pub fn load_tokenizer(&self) -> Result<tokenizers::Tokenizer> {
        tokenizers::Tokenizer::from_file(&self.tokenizer).map_err(|e| {
            EmbedError::invalid(&self.tokenizer, format!("cannot load the tokenizer: {e}"))
        })
    }
}

fn require(dir: &Path, file: &str, what: &str) -> Result<PathBuf> {
    let path = dir.join(file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(EmbedError::MissingFile {
            path: dir.to_path_buf(),
            what: what.into(),
            looked: path.display().to_string(),
        })
    }
}

/// `model.safetensors`, or the shards listed by `model.safetensors.index.json`.
fn locate_weights(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join(WEIGHTS);
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join(WEIGHTS_INDEX);
    if !index.is_file() {
        return Err(EmbedError::MissingFile {
            path: dir.to_path_buf(),
            what: "the weights (safetensors; PyTorch .bin files are not read)".into(),
            looked: format!("{}, {}", single.display(), index.display()),
        });
    }
    let json = read_json(&index)?;
    let map = json
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| EmbedError::invalid(&index, "no `weight_map` object"))?;
    let mut shards: Vec<String> = map
        .values()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    shards.sort();
    shards.dedup();
    if shards.is_empty() {
        return Err(EmbedError::invalid(&index, "`weight_map` lists no files"));
    }
    shards
        .into_iter()
        .map(|s| {
            let p = dir.join(&s);
            if p.is_file() {
                Ok(p)
            } else {
                Err(EmbedError::MissingFile {
                    path: dir.to_path_buf(),
                    what: format!("weight shard {s} listed in {WEIGHTS_INDEX}"),
                    looked: p.display().to_string(),
                })
            }
        })
        .collect()
}

/// tokenizer_config.json's `chat_template` (`path` names that file in errors): a string, or a
/// list of named templates of which `default` is taken, else the first.
pub(crate) fn template_text(value: &Value, path: &Path) -> Result<String> {
    let field =
        |message: &str| EmbedError::invalid(path, format!("field `chat_template`: {message}"));
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Array(list) => list
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .or(list.first())
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| field("list without a `template` string")),
        _ => Err(field("expected a string or a list of named templates")),
    }
}

pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| EmbedError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| EmbedError::invalid(path, format!("invalid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn a_missing_file_names_itself_and_where_we_looked() {
        let dir = tempfile::tempdir().unwrap();
        let err = ModelFolder::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        write(
            dir.path(),
            CONFIG,
            r#"{"architectures": ["BertModel"], "model_type": "bert"}"#,
        );
        let err = ModelFolder::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("model.safetensors.index.json"), "{err}");
        write(dir.path(), WEIGHTS, "x");
        let err = ModelFolder::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("tokenizer.json"), "{err}");
    }

    #[test]
    fn sharded_weights_are_listed_in_order_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            CONFIG,
            r#"{"architectures": ["LlamaForSequenceClassification"], "model_type": "llama"}"#,
        );
        write(dir.path(), TOKENIZER, "{}");
        write(
            dir.path(),
            WEIGHTS_INDEX,
            r#"{"weight_map": {"a": "model-00002-of-00002.safetensors", "b": "model-00001-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}}"#,
        );
        write(dir.path(), "model-00001-of-00002.safetensors", "1");
        let err = ModelFolder::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("model-00002-of-00002.safetensors"), "{err}");
        write(dir.path(), "model-00002-of-00002.safetensors", "2");
        write(
            dir.path(),
            TOKENIZER_CONFIG,
            r#"{"chat_template": [{"name": "default", "template": "T"}]}"#,
        );
        let f = ModelFolder::open(dir.path()).unwrap();
        assert_eq!(f.architecture, "LlamaForSequenceClassification");
        assert_eq!(f.weights.len(), 2);
        assert!(f.weights[0].ends_with("model-00001-of-00002.safetensors"));
        assert_eq!(
            f.chat_template().unwrap().map(|t| t.text).as_deref(),
            Some("T")
        );
        // sha256("12"): the shards are hashed as one stream, in order.
        assert_eq!(
            f.weights_sha256().unwrap(),
            "6b51d431df5d7f141cbececcf79edf3dd861c3b4069f0b11661a3eefacbba918"
        );
    }
}
