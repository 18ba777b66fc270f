//! [`DecoderBackbone`], the decoder as a crate-wide [`Backbone`] (a [`DecoderModel`] plus the
//! identity `meta.json` records): the `load` hook `load_backbone` dispatches to, and the mapping
//! of decoder errors onto [`EmbedError`].

use micro_cache::Matrix;
use micro_data::Message;

use super::error::DecoderError;
use super::extractor::{DecoderModel, DecoderOptions};
use crate::device::Precision;
use crate::{
    Backbone, BackboneOptions, Capabilities, ContextMode, Description, EmbedError, Family, Item,
    ModelFolder, PromptFeatures, PromptItem, ResponseFeatures, Result,
};

/// A loaded decoder with the identity `meta.json` records.
///
/// Its router input is the final hidden state at the last token of the prompt rendered with the
/// generation prompt, from a pass over the prompt alone ([`Backbone::embed_prompts`]). MiCRo's
/// code reads position `prompt_length` of the chosen response's pass instead: that state has
/// seen the response's first token, so the label would leak into f(x), and a server, which has
/// no response when it routes, could not compute it.
pub struct DecoderBackbone {
    model: DecoderModel,
    info: micro_cache::BackboneInfo,
    context: ContextMode,
}

/// Loads the Llama / Qwen2 checkpoint of `folder` as a [`Backbone`].
pub fn load(folder: &ModelFolder, opts: &BackboneOptions) -> Result<Box<dyn Backbone>> {
    Ok(Box::new(DecoderBackbone::load(folder, opts)?))
}

impl DecoderBackbone {
    /// Loads `folder` with the crate-wide options.
    pub fn load(folder: &ModelFolder, opts: &BackboneOptions) -> Result<Self> {
        let options = DecoderOptions {
            max_length: opts.max_len,
            context: opts.context,
            chat_template: None,
            device: opts.device,
            precision: Precision::Auto,
            batch_size: opts.batch_size,
        };
        let model = DecoderModel::from_folder(folder, &options)?;
        let info = micro_cache::BackboneInfo {
            name: folder.name(),
            kind: Family::Decoder.as_str().into(),
            architecture: Some(model.config().architecture_name.clone()),
            weights_sha256: Some(folder.weights_sha256()?),
        };
        Ok(DecoderBackbone {
            model,
            info,
            context: opts.context,
        })
    }
}

impl Backbone for DecoderBackbone {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            family: Family::Decoder,
            response_uses_context: true,
            scores: self.model.has_score(),
        }
    }

    fn info(&self) -> micro_cache::BackboneInfo {
        self.info.clone()
    }

    fn describe(&self) -> Description {
        Description {
            pooling: "last_token".into(),
            normalized: false,
            max_len: self.model.input().max_length(),
            context: self.context,
            response_text: "chat-template".into(),
            prompt_text: "chat-template".into(),
        }
    }

    fn dim(&self) -> usize {
        self.model.hidden_size()
    }

    /// All items in length-sorted batches of `batch_size` sequences.
    fn embed_responses(&self, items: &[Item<'_>]) -> Result<ResponseFeatures> {
        let prompts: Vec<Vec<Message>> = items.iter().map(|it| it.prompt.to_messages()).collect();
        let inputs: Vec<(&[Message], Option<&str>, &str)> = items
            .iter()
            .zip(&prompts)
            .map(|(it, p)| (p.as_slice(), it.context, it.response))
            .collect();
        let features = self.model.embed_responses(&inputs)?;
        let scores = self.model.has_score().then(|| {
            features
                .iter()
                .map(|f| f.score.unwrap_or(f32::NAN))
                .collect()
        });
        let rewards: Vec<Vec<f32>> = features.iter().map(|f| f.reward.clone()).collect();
        Ok(ResponseFeatures {
            features: matrix(&rewards, self.dim()),
            scores,
            truncated: features.iter().filter(|f| f.truncated).count(),
        })
    }

    fn embed_prompts(&self, prompts: &[PromptItem<'_>]) -> Result<PromptFeatures> {
        let turns: Vec<Vec<Message>> = prompts.iter().map(|p| p.prompt.to_messages()).collect();
        let inputs: Vec<(&[Message], Option<&str>)> = prompts
            .iter()
            .zip(&turns)
            .map(|(p, t)| (t.as_slice(), p.context))
            .collect();
        let rows = self.model.embed_prompts(&inputs)?;
        let truncated = rows.iter().filter(|r| r.1).count();
        let states: Vec<Vec<f32>> = rows.into_iter().map(|r| r.0).collect();
        Ok(PromptFeatures {
            features: matrix(&states, self.dim()),
            truncated,
        })
    }
}

/// Rows as a matrix that keeps the model's width even with no rows.
fn matrix(rows: &[Vec<f32>], dim: usize) -> Matrix {
    if rows.is_empty() {
        Matrix::zeros(0, dim)
    } else {
        Matrix::from_rows(rows)
    }
}

impl From<DecoderError> for EmbedError {
    fn from(e: DecoderError) -> Self {
        match e {
            DecoderError::Io { path, source } => EmbedError::Io { path, source },
            DecoderError::Config {
                path,
                field,
                message,
            } => EmbedError::Invalid {
                path,
                message: format!("field `{field}`: {message}"),
            },
            DecoderError::Weights { path, message } | DecoderError::Tokenizer { path, message } => {
                EmbedError::Invalid { path, message }
            }
            DecoderError::Folder(e) => e,
            other => EmbedError::Decoder(Box::new(other)),
        }
    }
}
