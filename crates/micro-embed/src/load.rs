//! Picks the backbone implementation from config.json's `architectures` / `model_type`.

use crate::backbone::{Backbone, BackboneOptions, Family};
use crate::error::{EmbedError, Result};
use crate::folder::ModelFolder;
use std::path::Path;

/// The family of an architecture name or model type, if supported.
pub fn family(architecture: &str, model_type: &str) -> Option<Family> {
    let a = architecture.to_ascii_lowercase();
    let t = model_type.to_ascii_lowercase();
    if a.starts_with("bert") || t == "bert" {
        Some(Family::Encoder)
    } else if a.starts_with("llama") || a.starts_with("qwen2") || t == "llama" || t == "qwen2" {
        Some(Family::Decoder)
    } else {
        None
    }
}

/// Opens the model folder `dir` and loads its backbone.
pub fn load_backbone(dir: &Path, opts: &BackboneOptions) -> Result<Box<dyn Backbone>> {
    let folder = ModelFolder::open(dir)?;
    match family(&folder.architecture, &folder.model_type) {
        Some(Family::Encoder) => Ok(Box::new(crate::encoder::Encoder::load(&folder, opts)?)),
        Some(Family::Decoder) => crate::decoder::load(&folder, opts),
        None => Err(EmbedError::Unsupported {
            path: folder.dir.join(crate::folder::CONFIG),
            architecture: if folder.architecture.is_empty() { "(none given)".into() } else { folder.architecture.clone() },
            hint: "supported: BERT-family encoders (BertModel: MiniLM, BGE, E5, GTE) and Llama/Qwen2 decoders \
                   (LlamaFor*, Qwen2For*)"
                .into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_map_to_families() {
        assert_eq!(family("BertModel", "bert"), Some(Family::Encoder));
        assert_eq!(family("", "bert"), Some(Family::Encoder));
        assert_eq!(
            family("LlamaForSequenceClassification", "llama"),
            Some(Family::Decoder)
        );
        assert_eq!(family("Qwen2ForCausalLM", "qwen2"), Some(Family::Decoder));
        assert_eq!(family("T5EncoderModel", "t5"), None);
    }

    #[test]
    fn an_unsupported_architecture_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"architectures": ["T5EncoderModel"], "model_type": "t5"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("model.safetensors"), "x").unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        let err = load_backbone(dir.path(), &BackboneOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("unsupported architecture T5EncoderModel"),
            "{err}"
        );
    }
}
