//! [`DecoderModel`]: a decoder reward model as a feature extractor. Per response it gives the
//! final-norm hidden state at the last token (reward feature), at the prompt boundary (router
//! input, position `prompt_length` as in MiCRo's code), and the checkpoint's own score. Many
//! responses or prompts at once run in length-sorted, padded batches ([`super::batch`]).

use std::path::{Path, PathBuf};

use micro_data::{Message, PrefPair};
use rayon::prelude::*;

use super::config::DecoderConfig;
use super::error::{DecoderError, Result};
use super::input::{Encoded, InputBuilder};
use super::model::{dot, Transformer};
use super::template::ChatTemplate;
use super::{batch, weights};
use crate::device::{self, Precision};
use crate::{ContextMode, DeviceKind, ModelFolder};

/// The token budget when none is given: MiCRo's code drops pairs longer than this.
pub const DEFAULT_MAX_LENGTH: usize = 4096;

/// Sequences per forward pass when none is given.
pub const DEFAULT_BATCH_SIZE: usize = 8;

/// How to load and feed a decoder backbone.
#[derive(Clone, Debug)]
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
    /// The dtype of weights and activations (f32 on the CPU, bf16 on a GPU by default).
    pub precision: Precision,
    /// Sequences per forward pass (fewer when they are long: see [`super::batch`]).
    pub batch_size: usize,
}

impl Default for DecoderOptions {
    fn default() -> Self {
        DecoderOptions {
            max_length: None,
            context: ContextMode::default(),
            chat_template: None,
            device: DeviceKind::Cpu,
            precision: Precision::Auto,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }
}

/// One response to embed: the prompt's turns, the context, and the response text.
pub type ResponseInput<'a> = (&'a [Message], Option<&'a str>, &'a str);

/// One prompt to embed: its turns and the context.
pub type PromptInput<'a> = (&'a [Message], Option<&'a str>);

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
    /// prompt: the same for every response, and what [`DecoderModel::embed_prompt`] returns.
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
pub struct DecoderModel {
    dir: PathBuf,
    config: DecoderConfig,
    transformer: Transformer,
    score: Option<Vec<f32>>,
    input: InputBuilder,
    batch_size: usize,
}

impl DecoderModel {
    /// Loads `config.json`, the safetensors weights, `tokenizer.json` and the chat template
    /// from the Hugging Face folder `dir`.
    pub fn load(dir: &Path, options: &DecoderOptions) -> Result<Self> {
        Self::from_folder(&ModelFolder::open(dir)?, options)
    }

    /// Loads the checkpoint of an opened model folder.
    pub fn from_folder(folder: &ModelFolder, options: &DecoderOptions) -> Result<Self> {
        let dir = folder.dir.as_path();
        let config = DecoderConfig::from_folder(folder)?;
        let device = device::open(options.device).map_err(DecoderError::Device)?;
        let dtype = options.precision.dtype(&device);
        let loaded = weights::load(dir, &folder.weights, &config, &device, dtype)?;
        let template = ChatTemplate::from_folder(folder, options.chat_template.as_deref())?;
        let max_length = options.max_length.unwrap_or(DEFAULT_MAX_LENGTH).max(1);
        let input = InputBuilder::new(
            &folder.tokenizer,
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
        Ok(DecoderModel {
            dir: dir.to_path_buf(),
            config,
            transformer: loaded.transformer,
            score: loaded.score,
            input,
            batch_size: options.batch_size.max(1),
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

    /// Final-norm hidden states [T, hidden] (f32) of `ids` (empty or out-of-vocabulary ids are
    /// errors).
    pub fn hidden_states(&self, ids: &[u32]) -> Result<candle_core::Tensor> {
        self.check_ids(ids)?;
        Ok(self.transformer.hidden_states(ids)?)
    }

    /// Final-norm hidden states of many sequences at chosen positions, run in length-sorted
    /// batches: `out[i][j]` is the state of `requests[i].0` at position `requests[i].1[j]`.
    pub fn states_at(&self, requests: &[(&[u32], Vec<usize>)]) -> Result<Vec<Vec<Vec<f32>>>> {
        for (ids, positions) in requests {
            self.check_ids(ids)?;
            if let Some(&p) = positions.iter().find(|&&p| p >= ids.len()) {
                return Err(DecoderError::weights(
                    &self.dir,
                    format!("position {p} is outside a sequence of {} tokens", ids.len()),
                ));
            }
        }
        let lengths: Vec<usize> = requests.iter().map(|r| r.0.len()).collect();
        let batches = batch::plan(&lengths, self.batch_size);
        // One batch after another: the matrix products already use every core (on the CPU,
        // two batches side by side cost 8% more CPU time for the same wall time).
        let results: Vec<Vec<Vec<Vec<f32>>>> = batches
            .iter()
            .map(|members| self.run_batch(requests, members))
            .collect::<Result<_>>()?;
        let mut out = vec![Vec::new(); requests.len()];
        for (members, states) in batches.iter().zip(results) {
            for (&i, s) in members.iter().zip(states) {
                out[i] = s;
            }
        }
        Ok(out)
    }

    /// One forward pass over the requests `members`; their states in that order.
    fn run_batch(
        &self,
        requests: &[(&[u32], Vec<usize>)],
        members: &[usize],
    ) -> Result<Vec<Vec<Vec<f32>>>> {
        let seqs: Vec<&[u32]> = members.iter().map(|&i| requests[i].0).collect();
        let picks: Vec<(usize, usize)> = members
            .iter()
            .enumerate()
            .flat_map(|(k, &i)| requests[i].1.iter().map(move |&p| (k, p)))
            .collect();
        let mut rows = self
            .transformer
            .hidden_at(&seqs, &picks)?
            .to_vec2::<f32>()?
            .into_iter();
        Ok(members
            .iter()
            .map(|&i| rows.by_ref().take(requests[i].1.len()).collect())
            .collect())
    }

    fn check_ids(&self, ids: &[u32]) -> Result<()> {
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
        Ok(())
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

    /// Features of many responses, in their order, run in batches.
    pub fn embed_responses(&self, items: &[ResponseInput<'_>]) -> Result<Vec<DecoderFeatures>> {
        let encoded: Vec<Encoded> = items
            .par_iter()
            .map(|(prompt, context, response)| self.input.encode(prompt, *context, response))
            .collect::<Result<_>>()?;
        self.features_batch(&encoded)
    }

    /// Features of an already encoded conversation.
    pub fn features(&self, encoded: &Encoded) -> Result<DecoderFeatures> {
        let mut f = self.features_batch(std::slice::from_ref(encoded))?;
        Ok(f.remove(0))
    }

    fn features_batch(&self, encoded: &[Encoded]) -> Result<Vec<DecoderFeatures>> {
        // Per sequence: the last token, the boundary, and the token before it.
        let requests: Vec<(&[u32], Vec<usize>)> = encoded
            .iter()
            .map(|e| {
                let last = e.ids.len().saturating_sub(1);
                // A template may emit nothing for an empty response: the boundary is then the
                // last token.
                let boundary = e.prompt_length.min(last);
                (
                    e.ids.as_slice(),
                    vec![last, boundary, boundary.saturating_sub(1)],
                )
            })
            .collect();
        let states = self.states_at(&requests)?;
        Ok(encoded
            .iter()
            .zip(states)
            .map(|(e, s)| {
                let [reward, boundary, prompt_last] =
                    <[Vec<f32>; 3]>::try_from(s).expect("three positions asked, three states");
                DecoderFeatures {
                    score: self.score.as_ref().map(|w| dot(w, &reward)),
                    reward,
                    boundary,
                    prompt_last,
                    n_tokens: e.ids.len(),
                    prompt_length: e.prompt_length,
                    truncated: e.truncated,
                }
            })
            .collect())
    }

    /// The router input of a prompt without a response: the final-norm hidden state at the last
    /// token of the prompt rendered with the generation prompt (truncated like a response's
    /// prompt when too long). Returns the state and whether text was dropped.
    pub fn embed_prompt(
        &self,
        prompt: &[Message],
        context: Option<&str>,
    ) -> Result<(Vec<f32>, bool)> {
        let mut rows = self.embed_prompts(&[(prompt, context)])?;
        Ok(rows.remove(0))
    }

    /// [`DecoderModel::embed_prompt`] for many prompts, in their order, run in batches.
    pub fn embed_prompts(&self, prompts: &[PromptInput<'_>]) -> Result<Vec<(Vec<f32>, bool)>> {
        let encoded: Vec<(Vec<u32>, bool)> = prompts
            .par_iter()
            .map(|(prompt, context)| self.encode_prompt(prompt, *context))
            .collect::<Result<_>>()?;
        let requests: Vec<(&[u32], Vec<usize>)> = encoded
            .iter()
            .map(|(ids, _)| (ids.as_slice(), vec![ids.len().saturating_sub(1)]))
            .collect();
        let states = self.states_at(&requests)?;
        Ok(states
            .into_iter()
            .zip(&encoded)
            .map(|(mut s, (_, truncated))| (s.remove(0), *truncated))
            .collect())
    }

    /// Tokens of `prompt` (+ `context`) rendered with the generation prompt, within the token
    /// budget, and whether text had to go.
    pub fn encode_prompt(
        &self,
        prompt: &[Message],
        context: Option<&str>,
    ) -> Result<(Vec<u32>, bool)> {
        let mut turns = prompt.to_vec();
        loop {
            let messages = super::insert_context(&turns, context, self.input.context_mode());
            let ids = self
                .input
                .tokenize(&self.input.template().render(&messages, true)?)?;
            if ids.len() <= self.input.max_length() {
                return Ok((ids, turns != prompt));
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
        let both = self.embed_responses(&[
            (&prompt, context, &pair.chosen),
            (&prompt, context, &pair.rejected),
        ])?;
        let [chosen, rejected] =
            <[DecoderFeatures; 2]>::try_from(both).expect("two responses in, two features out");
        Ok(PairFeatures { chosen, rejected })
    }
}
