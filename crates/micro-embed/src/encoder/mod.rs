//! BERT-family sentence encoders (all-MiniLM-L6-v2, BGE, E5, GTE) as a [`Backbone`].
//!
//! Pooling, normalisation and the maximum length follow the folder's sentence-transformers
//! files. The reward feature of a response embeds its prompt part ([`ResponseText`]: by
//! default the last user turn) followed by the response, oldest prompt text dropped first when
//! too long; the router input embeds the prompt ([`PromptText`]) with the context before it.

#[cfg(any(test, feature = "bench"))]
mod bench_texts;
mod bert;
mod candle_bert;
pub mod kernels;
mod pooling;
mod st_config;
mod tokens;
mod weights;

#[cfg(any(test, feature = "bench"))]
pub use bench_texts::bench_texts;
pub use st_config::{Pooling, StConfig};
pub use tokens::Segments;

use crate::backbone::{
    active_context, criteria_head, Backbone, BackboneOptions, Capabilities, ContextMode,
    Description, DeviceKind, Family, Item, PromptFeatures, PromptItem, PromptText,
    ResponseFeatures, ResponseText,
};
use crate::error::{EmbedError, Result};
use crate::folder::{ModelFolder, TOKENIZER_CONFIG};
use bert::{Bert, BertConfig, Workspace};
use candle_bert::CandleBert;
use micro_cache::Matrix;
use std::sync::Mutex;

/// Which implementation runs the forward pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Engine {
    /// The hand-written packed CPU forward (the default on CPU).
    #[default]
    Native,
    /// candle's `BertModel` (on CUDA, or on CPU for comparison).
    Candle,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Native => "native",
            Engine::Candle => "candle",
        })
    }
}

enum Runner {
    Native {
        bert: Bert,
        workspaces: Mutex<Vec<Workspace>>,
    },
    Candle(CandleBert),
}

/// A loaded sentence encoder.
pub struct Encoder {
    info: micro_cache::BackboneInfo,
    st: StConfig,
    tokenizer: tokens::TextTokenizer,
    runner: Runner,
    dim: usize,
    vocab: usize,
    batch_size: usize,
    context: ContextMode,
    response_text: ResponseText,
    prompt_text: PromptText,
}

impl Encoder {
    /// Loads the encoder of `folder`: the native CPU engine, or candle on a GPU.
    pub fn load(folder: &ModelFolder, opts: &BackboneOptions) -> Result<Self> {
        let engine = if opts.device == DeviceKind::Cpu {
            Engine::Native
        } else {
            Engine::Candle
        };
        Self::load_with(folder, opts, engine)
    }

    pub fn load_with(folder: &ModelFolder, opts: &BackboneOptions, engine: Engine) -> Result<Self> {
        let cfg = BertConfig::from_folder(folder)?;
        let st = StConfig::read(&folder.dir)?;
        let max_len = max_len(folder, &st, opts, cfg.max_positions);
        let tokenizer =
            tokens::TextTokenizer::new(folder.load_tokenizer()?, max_len, &folder.tokenizer)?;
        check_tokenizer(folder, &tokenizer, &cfg)?;
        let (dim, vocab) = (cfg.hidden, cfg.vocab);
        let runner = match engine {
            Engine::Native => {
                let mut store = weights::WeightStore::open(&folder.weights)?;
                Runner::Native {
                    bert: Bert::load(&mut store, cfg)?,
                    workspaces: Mutex::new(Vec::new()),
                }
            }
            Engine::Candle => {
                let device = crate::device::open(opts.device)?;
                Runner::Candle(CandleBert::load(folder, device)?)
            }
        };
        let info = micro_cache::BackboneInfo {
            name: folder.name(),
            kind: Family::Encoder.as_str().into(),
            architecture: Some(folder.architecture.clone()),
            weights_sha256: Some(folder.weights_sha256()?),
        };
        Ok(Encoder {
            info,
            st,
            tokenizer,
            runner,
            dim,
            vocab,
            batch_size: opts.batch_size.max(1),
            context: opts.context,
            response_text: opts.response_text,
            prompt_text: opts.prompt_text,
        })
    }

    /// Embeds plain texts (no prompt/response structure): sentence-transformers' `encode`.
    pub fn embed_texts(&self, texts: &[&str]) -> Result<(Matrix, usize)> {
        let segs: Vec<Segments> = texts
            .iter()
            .map(|t| Segments {
                body: t,
                ..Default::default()
            })
            .collect();
        self.embed_segments(&segs)
    }

    /// Embeds segment texts: tokenise, sort by length, run in batches, pool, restore order.
    pub fn embed_segments(&self, segs: &[Segments<'_>]) -> Result<(Matrix, usize)> {
        let (mut ids, truncated) = self.tokenizer.encode(segs)?;
        if let Some(bad) = ids.iter().flatten().find(|&&id| id as usize >= self.vocab) {
            return Err(EmbedError::Vocabulary {
                id: *bad,
                vocab: self.vocab,
            });
        }
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out = Matrix::zeros(ids.len(), self.dim);
        let mut pooled = Vec::new();
        for batch in order.chunks(self.batch_size) {
            let seqs: Vec<Vec<u32>> = batch.iter().map(|&i| std::mem::take(&mut ids[i])).collect();
            let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
            pooled.resize(batch.len() * self.dim, 0.0);
            self.forward_pooled(&seqs, &lens, &mut pooled)?;
            for (row, &i) in pooled.chunks_exact(self.dim).zip(batch) {
                out.row_mut(i).copy_from_slice(row);
            }
        }
        Ok((out, truncated))
    }

    fn forward_pooled(&self, seqs: &[Vec<u32>], lens: &[usize], pooled: &mut [f32]) -> Result<()> {
        let (pooling, norm) = (self.st.pooling, self.st.normalize);
        match &self.runner {
            Runner::Native { bert, workspaces } => {
                let mut ws = workspaces
                    .lock()
                    .map_err(|_| EmbedError::Poisoned)?
                    .pop()
                    .unwrap_or_default();
                let states = bert.forward(seqs, &mut ws);
                pooling::pool(states, lens, self.dim, pooling, norm, pooled);
                if let Ok(mut pool) = workspaces.lock() {
                    pool.push(ws);
                }
            }
            Runner::Candle(model) => {
                let states = model.forward(seqs)?;
                pooling::pool(&states, lens, self.dim, pooling, norm, pooled);
            }
        }
        Ok(())
    }
}

impl Backbone for Encoder {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            family: Family::Encoder,
            response_uses_context: false,
            scores: false,
        }
    }

    fn info(&self) -> micro_cache::BackboneInfo {
        self.info.clone()
    }

    fn describe(&self) -> Description {
        Description {
            pooling: self.st.pooling.as_str().into(),
            normalized: self.st.normalize,
            max_len: self.tokenizer.max_len,
            context: self.context,
            response_text: self.response_text.as_str().into(),
            prompt_text: self.prompt_text.as_str().into(),
        }
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed_responses(&self, items: &[Item<'_>]) -> Result<ResponseFeatures> {
        let prompts: Vec<String> = items
            .iter()
            .map(|it| self.response_text.prompt_part(it.prompt))
            .collect();
        let segs: Vec<Segments> = items
            .iter()
            .zip(&prompts)
            .map(|(it, p)| Segments {
                head: "",
                body: p,
                tail: it.response,
            })
            .collect();
        let (features, truncated) = self.embed_segments(&segs)?;
        Ok(ResponseFeatures {
            features,
            scores: None,
            truncated,
        })
    }

    fn embed_prompts(&self, prompts: &[PromptItem<'_>]) -> Result<PromptFeatures> {
        let texts: Vec<(String, String)> = prompts
            .iter()
            .map(|p| {
                let head = active_context(p.context, self.context)
                    .map(criteria_head)
                    .unwrap_or_default();
                (head, self.prompt_text.text(p.prompt))
            })
            .collect();
        let segs: Vec<Segments> = texts
            .iter()
            .map(|(h, b)| Segments {
                head: h,
                body: b,
                tail: "",
            })
            .collect();
        let (features, truncated) = self.embed_segments(&segs)?;
        Ok(PromptFeatures {
            features,
            truncated,
        })
    }
}

/// The sequence length: the option, else sentence-transformers' `max_seq_length`, else the
/// tokenizer's `model_max_length`, never past the position table.
fn max_len(folder: &ModelFolder, st: &StConfig, opts: &BackboneOptions, positions: usize) -> usize {
    let tokenizer_max = folder
        .tokenizer_config
        .as_ref()
        .and_then(|tc| tc.get("model_max_length"))
        .and_then(|v| v.as_f64())
        .filter(|v| (1.0..1e9).contains(v))
        .map(|v| v as usize);
    opts.max_len
        .or(st.max_seq_length)
        .or(tokenizer_max)
        .unwrap_or(positions)
        .min(positions)
}

/// Refuses a tokenizer that cannot belong to the weights: ids past the embedding table, a
/// vocabulary far smaller than the table, or a padding token other than config.json's
/// `pad_token_id`.
fn check_tokenizer(
    folder: &ModelFolder,
    tok: &tokens::TextTokenizer,
    cfg: &BertConfig,
) -> Result<()> {
    if tok.vocab_size() > cfg.vocab {
        return Err(EmbedError::invalid(
            &folder.tokenizer,
            format!(
                "the tokenizer has {} tokens but the model's embedding table has {} rows: tokenizer.json does not match the weights",
                tok.vocab_size(),
                cfg.vocab
            ),
        ));
    }
    // BERT-family checkpoints size the embedding table to the vocabulary; a much smaller
    // tokenizer is another model's.
    if tok.vocab_size() * 10 < cfg.vocab * 9 {
        return Err(EmbedError::invalid(
            &folder.tokenizer,
            format!(
                "the tokenizer has {} tokens but the model's embedding table has {} rows: tokenizer.json does not match the weights",
                tok.vocab_size(),
                cfg.vocab
            ),
        ));
    }
    let pad_name = folder
        .tokenizer_config
        .as_ref()
        .and_then(|tc| tc.get("pad_token"))
        .and_then(|v| {
            v.as_str()
                .or_else(|| v.get("content").and_then(|c| c.as_str()))
        })
        .map(str::to_string);
    let pad_cfg = folder.config.get("pad_token_id").and_then(|v| v.as_u64());
    if let (Some(name), Some(want)) = (pad_name, pad_cfg) {
        if let Some(got) = tok.token_to_id(&name) {
            if u64::from(got) != want {
                return Err(EmbedError::invalid(
                    folder.dir.join(TOKENIZER_CONFIG),
                    format!("pad token {name:?} has id {got} in tokenizer.json but config.json says pad_token_id {want}: the tokenizer does not match the weights"),
                ));
            }
        }
    }
    Ok(())
}
