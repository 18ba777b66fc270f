//! [`DecoderBackbone`]: a decoder reward model as a feature extractor. Per response it gives the
//! final-norm hidden state at the last token (reward feature), at the prompt boundary (router
//! input, position `prompt_length` as in MiCRo's code), and the checkpoint's own score.

use std::path::{Path, PathBuf};

use micro_data::{Message, PrefPair};

use super::config::DecoderConfig;
use super::error::{DecoderError, Result};
use super::input::{Encoded, InputBuilder};
use super::model::{dot, row, Transformer};
use super::template::ChatTemplate;
use super::weights;
use crate::{ContextMode, DeviceKind};

/// The token budget when none is given: MiCRo's code drops pairs longer than this.
pub const DEFAULT_MAX_LENGTH: usize = 4096;

/// How to load and feed a decoder backbone.
#[derive(Clone, Debug, Default)]
pub struct DecoderOptions {
    /// Tokens per sequence (prompt + response); `None` means [`DEFAULT_MAX_LENGTH`]. Always
    /// capped at the model's `max_position_embeddings`.
    pub max_length: Option<usize>,
    /// Where a pair's context goes.
    pub context: ContextMode,
    /// A Jinja chat template to use instead of the checkpoint's own.
    pub chat_template: Option<String>,
    /// Where the forward pass runs (CUDA needs the crate's `cuda` feature).
    pub device: DeviceKind,
}

/// Features of one response.
#[derive(Clone, Debug, PartialEq)]
pub struct DecoderFeatures {
    /// Final-norm hidden state at the last token of prompt + response.
    pub reward: Vec<f32>,
    /// Final-norm hidden state at position `prompt_length`, the first position after the
    /// prompt rendered with the generation prompt (MiCRo's router input). It has seen the first
    /// response token, so it differs between the two responses of a pair.
    pub boundary: Vec<f32>,
    /// Final-norm hidden state at position `prompt_length - 1`, the last token of the generation
    /// prompt: the same for every response, and what [`DecoderBackbone::embed_prompt`] returns.
    pub prompt_last: Vec<f32>,
    /// `score.weight[0] · reward` for sequence-classification checkpoints.
    pub score: Option<f32>,
    /// Length in tokens of the sequence that was run.
    pub n_tokens: usize,
    /// Tokens of the prompt rendered with the generation prompt.
    pub prompt_length: usize,
    /// Whether text was dropped to fit the token budget.
    pub truncated: bool,
}

/// Features of both responses of a pair.
#[derive(Clone, Debug, PartialEq)]
pub struct PairFeatures {
    pub chosen: DecoderFeatures,
    pub rejected: DecoderFeatures,
}

/// A loaded Llama / Qwen2 checkpoint with its tokenizer and chat template.
pub struct DecoderBackbone {
    dir: PathBuf,
    config: DecoderConfig,
    transformer: Transformer,
    score: Option<Vec<f32>>,
    input: InputBuilder,
}

impl DecoderBackbone {
    /// Loads `config.json`, the safetensors weights, `tokenizer.json` and the chat template
    /// from the Hugging Face folder `dir`.
    pub fn load(dir: &Path, options: &DecoderOptions) -> Result<Self> {
        let config = DecoderConfig::from_dir(dir)?;
        let device = device(options.device)?;
        let loaded = weights::load(dir, &config, &device)?;
        let template = ChatTemplate::from_dir(dir, options.chat_template.as_deref())?;
        let max_length = options.max_length.unwrap_or(DEFAULT_MAX_LENGTH).max(1);
        let input = InputBuilder::new(
            dir,
            template,
            max_length,
            config.max_position_embeddings,
            options.context,
        )?;
        let rows = loaded.transformer.vocab_rows();
        if input.vocab_size() > rows {
            return Err(DecoderError::Tokenizer {
                path: input.tokenizer_path().to_path_buf(),
                message: format!(
                    "has {} tokens but the model's embedding has {rows} rows: the tokenizer does not belong \
                     to these weights",
                    input.vocab_size()
                ),
            });
        }
        Ok(DecoderBackbone {
            dir: dir.to_path_buf(),
            config,
            transformer: loaded.transformer,
            score: loaded.score,
            input,
        })
    }

    /// The parsed `config.json`.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Width of the features.
    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// Whether the checkpoint has its own scalar reward head.
    pub fn has_score(&self) -> bool {
        self.score.is_some()
    }

    /// Rendering and tokenization, exposed for inspection and tests.
    pub fn input(&self) -> &InputBuilder {
        &self.input
    }

    /// Final-norm hidden states [T, hidden] of `ids` (empty or out-of-vocabulary ids are errors).
    pub fn hidden_states(&self, ids: &[u32]) -> Result<candle_core::Tensor> {
        let rows = self.transformer.vocab_rows();
        if ids.is_empty() {
            return Err(DecoderError::weights(
                &self.dir,
                "cannot run the model on an empty token sequence",
            ));
        }
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= rows) {
            return Err(DecoderError::Tokenizer {
                path: self.input.tokenizer_path().to_path_buf(),
                message: format!(
                    "token id {bad} is outside the model's vocabulary ({rows} embedding rows): \
                     the tokenizer does not belong to these weights"
                ),
            });
        }
        Ok(self.transformer.hidden_states(ids)?)
    }

    /// Features of `response` to `prompt` under an optional `context`.
    pub fn embed_response(
        &self,
        prompt: &[Message],
        context: Option<&str>,
        response: &str,
    ) -> Result<DecoderFeatures> {
        let encoded = self.input.encode(prompt, context, response)?;
        self.features(&encoded)
    }

    /// Features of an already encoded conversation.
    pub fn features(&self, encoded: &Encoded) -> Result<DecoderFeatures> {
        let hidden = self.hidden_states(&encoded.ids)?;
        let last = encoded.ids.len() - 1;
        // A template may emit nothing for an empty response: the boundary is then the last token.
        let boundary = encoded.prompt_length.min(last);
        let reward = row(&hidden, last)?;
        let score = self.score.as_ref().map(|w| dot(w, &reward));
        Ok(DecoderFeatures {
            boundary: row(&hidden, boundary)?,
            prompt_last: row(&hidden, boundary.saturating_sub(1))?,
            reward,
            score,
            n_tokens: encoded.ids.len(),
            prompt_length: encoded.prompt_length,
            truncated: encoded.truncated,
        })
    }

    /// The router input of a prompt without a response: the final-norm hidden state at the last
    /// token of the prompt rendered with the generation prompt (truncated like a response's
    /// prompt when too long). Returns the state and whether text was dropped.
    pub fn embed_prompt(
        &self,
        prompt: &[Message],
        context: Option<&str>,
    ) -> Result<(Vec<f32>, bool)> {
        let mut turns = prompt.to_vec();
        loop {
            let messages = super::insert_context(&turns, context, self.input.context_mode());
            let ids = self
                .input
                .tokenize(&self.input.template().render(&messages, true)?)?;
            if ids.len() <= self.input.max_length() {
                let hidden = self.hidden_states(&ids)?;
                return Ok((row(&hidden, ids.len() - 1)?, turns != prompt));
            }
            if !self
                .input
                .shorten_prompt(&mut turns, ids.len() - self.input.max_length())?
            {
                return Err(DecoderError::TooLong {
                    needed: ids.len(),
                    max_length: self.input.max_length(),
                    model_max: self.config.max_position_embeddings,
                });
            }
        }
    }

    /// Features of both responses of `pair`, its context inserted as configured.
    pub fn embed_pair(&self, pair: &PrefPair) -> Result<PairFeatures> {
        let prompt = pair.prompt.to_messages();
        let context = pair.context.as_deref();
        Ok(PairFeatures {
            chosen: self.embed_response(&prompt, context, &pair.chosen)?,
            rejected: self.embed_response(&prompt, context, &pair.rejected)?,
        })
    }
}

fn device(kind: DeviceKind) -> Result<candle_core::Device> {
    match kind {
        DeviceKind::Cpu => Ok(candle_core::Device::Cpu),
        DeviceKind::Cuda(i) => candle_core::Device::new_cuda(i).map_err(DecoderError::Forward),
    }
}
