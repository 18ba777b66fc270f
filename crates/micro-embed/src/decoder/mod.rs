//! Decoder reward-model backbones (Llama and Qwen2, `*ForSequenceClassification` and
//! `*ForCausalLM` layouts) as frozen feature extractors for MiCRo.
//!
//! The principal type is [`DecoderModel`]: it renders the checkpoint's chat template,
//! tokenizes, runs a thin transformer in length-sorted padded batches (f32 on the CPU, bf16 on a
//! GPU), and returns per response the final-norm hidden state at the last token (reward
//! feature), at the prompt boundary (router input) and the checkpoint's own score.
//! [`DecoderBackbone`] wraps it as the crate's [`crate::Backbone`] (what [`load`] returns).
//!
//! ```
//! use micro_embed::decoder::{DecoderModel, DecoderOptions};
//! use micro_data::Message;
//!
//! let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/golden/tiny-llama-rm"));
//! let model = DecoderModel::load(dir, &DecoderOptions::default()).unwrap();
//! let prompt = [Message::new("user", "Tell me a joke.")];
//! let f = model.embed_response(&prompt, None, "Why did the fox jump? It saw the lazy dog.").unwrap();
//! assert_eq!(f.reward.len(), model.hidden_size());
//! assert_eq!(f.prompt_length, 26);
//! assert!(f.score.is_some());
//! ```

mod backbone;
pub mod batch;
pub mod config;
mod context;
mod error;
mod extractor;
mod input;
mod model;
pub mod rope;
mod template;
mod weights;

pub use crate::device::Precision;
pub use backbone::{load, DecoderBackbone};
pub use config::{Architecture, DecoderConfig, Head, RopeScaling};
pub use context::insert_context;
pub use error::{DecoderError, Result};
pub use extractor::{
    DecoderFeatures, DecoderModel, DecoderOptions, PairFeatures, PromptInput, ResponseInput,
    DEFAULT_BATCH_SIZE, DEFAULT_MAX_LENGTH,
};
pub use input::{Encoded, InputBuilder};
pub use template::{ChatTemplate, SpecialTokens};
