//! Frozen transformer backbones that turn preference pairs into the embedding cache MiCRo trains
//! on: reward features h(x, a) for each response and router inputs e(x, c) for each prompt.
//!
//! The principal type is the [`Backbone`] trait, loaded from a Hugging Face model folder
//! ([`ModelFolder`], shared by both families) by [`load_backbone`]: BERT-family encoders
//! (all-MiniLM-L6-v2, BGE, E5, GTE) run on a hand-written CPU forward pass
//! ([`encoder::Encoder`]; candle's BERT is its reference in the tests and runs it on a GPU),
//! Llama/Qwen2 decoder reward models on candle as [`decoder::DecoderBackbone`].
//! What a backbone is and what its features depend on is typed ([`Backbone::capabilities`]:
//! [`Family`], [`Capabilities`]). [`embed_to_cache`] runs a backbone over pairs into a cache
//! folder (deduplicated, resumable, shardable) and [`merge_caches`] joins shards.
//!
//! ```
//! use micro_embed::{family, prompt_with_context, ContextMode, Family, Shard};
//! use micro_data::Prompt;
//! let text = prompt_with_context(&Prompt::Text("Hi".into()), Some("Be terse."), ContextMode::Prefix);
//! assert_eq!(text, "[criteria] Be terse.\n[context] Hi");
//! let shard: Shard = "1/4".parse().unwrap();
//! assert_eq!(shard.range(10), 2..5);
//! assert_eq!(family("Qwen2ForSequenceClassification", "qwen2"), Some(Family::Decoder));
//! assert_eq!(family("T5EncoderModel", "t5"), None);
//! ```

mod backbone;
#[cfg(any(test, feature = "bench"))]
pub mod bench;
pub mod decoder;
mod device;
pub mod encoder;
mod error;
mod folder;
mod load;
mod merge;
mod partial;
mod pipeline;
mod plan;
pub mod progress;

pub use backbone::{
    prompt_with_context, Backbone, BackboneOptions, Capabilities, ContextMode, Description,
    DeviceKind, Family, Item, PromptFeatures, PromptItem, PromptText, ResponseFeatures,
    ResponseText,
};
pub use device::DeviceError;
pub use error::{EmbedError, Result};
pub use folder::{
    default_minilm_dir, located_minilm_dir, MiniLmNotFound, ModelFolder, TemplateSource,
};
pub use load::{family, load_backbone};
pub use merge::{merge_caches, MergeSummary};
pub use partial::PARTIAL_DIR;
pub use pipeline::{embed_to_cache, EmbedOptions, EmbedSummary, Tick};
pub use plan::{Plan, Shard};
