//! The embedding cache: preference pairs and their frozen-backbone vectors, in the ArmoRM/MiCRo
//! key layout, so embeddings made elsewhere can be brought as they are.
//!
//! A cache is a folder with `embeddings.safetensors`, `pairs.jsonl` (row `i` is pair `i`) and
//! `meta.json` ([`CacheMeta`]). The tensors, each `[n, d]` in f32, f16 or bf16:
//! - `chosen_embeddings`, `rejected_embeddings`: the reward features h(x, a_w), h(x, a_l);
//! - `prompt_embeddings`: the router input e(x), the prompt as written (ArmoRM/MiCRo's key);
//! - `context_prompt_embeddings` (optional): the router input e(x, c), the prompt with the pair's
//!   context inserted, equal to e(x) where a pair has no context. A cache brought from elsewhere
//!   with `prompt_embeddings` alone works: e(x, c) then reads as e(x) ([`RouterInput`]);
//! - `chosen_scores`/`rejected_scores` (optional): a reward model's own scalar scores.
//!
//! The principal type is [`EmbeddingCache`].
//!
//! ```
//! use micro_cache::{EmbeddingCache, CacheMeta, Dtype, Matrix};
//! use micro_data::PrefPair;
//! let dir = tempfile::tempdir().unwrap();
//! let pairs = vec![PrefPair::new("q", "good", "bad")];
//! let m = |v: f32| Matrix::new(1, 2, vec![v, v]);
//! let cache = EmbeddingCache::new(CacheMeta::default(), pairs, m(1.0), m(0.5), m(0.0)).unwrap();
//! cache.save(dir.path(), Dtype::F16).unwrap();
//! let back = EmbeddingCache::load(dir.path()).unwrap();
//! assert_eq!(back.diff().data, vec![0.5, 0.5]);
//! assert_eq!(back.meta.dtype, Dtype::F16);
//! ```

mod cache;
mod error;
mod info;
mod matrix;
mod meta;
mod router_input;
pub mod tensors;

pub use cache::{
    pairs_hash, EmbeddingCache, TrainingArrays, CHOSEN, CHOSEN_SCORES, CONTEXT_PROMPT,
    EMBEDDINGS_FILE, META_FILE, PAIRS_FILE, PROMPT, REJECTED, REJECTED_SCORES,
};
pub use error::{CacheError, Result};
pub use info::CacheInfo;
pub use matrix::Matrix;
pub use meta::{BackboneInfo, CacheMeta, Dtype, Recipe, RecipeMismatch};
pub use router_input::RouterInput;
