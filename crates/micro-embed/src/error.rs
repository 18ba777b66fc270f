//! Errors of model loading and embedding. Every variant says which file or which input.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A file the model folder must have is absent. `looked` lists where we looked.
    #[error("{path}: missing {what} (looked for: {looked}); there is no hub access, so the model folder must hold it")]
    MissingFile {
        path: PathBuf,
        what: String,
        looked: String,
    },
    #[error("{path}: unsupported architecture {architecture}: {hint}")]
    Unsupported {
        path: PathBuf,
        architecture: String,
        hint: String,
    },
    /// A file exists but its content is wrong (bad JSON, missing tensor, shape mismatch...).
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Cache(#[from] micro_cache::CacheError),
    #[error(transparent)]
    Data(#[from] micro_data::DataError),
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    /// The tokenizer failed on the texts (its library's message).
    #[error("tokenizer failed: {message}")]
    Tokenizer { message: String },
    /// A tensor operation of candle failed (the encoder on a GPU, or as the reference).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// A decoder backbone failed while running (a load failure names its file instead).
    #[error(transparent)]
    Decoder(Box<crate::decoder::DecoderError>),
    #[error(
        "token id {id} is outside the model's vocabulary of {vocab}: the tokenizer does not match the weights"
    )]
    Vocabulary { id: u32, vocab: usize },
    /// A forward pass panicked on another thread and left the encoder's buffers unusable.
    #[error("the encoder's workspace was poisoned by a failed forward pass")]
    Poisoned,
    /// What a backbone returned does not match what it declares.
    #[error("the backbone returned {what} of width {got} but declares {want}")]
    Width {
        what: &'static str,
        got: usize,
        want: usize,
    },
    #[error("the backbone returned {rows} rows for {texts} texts")]
    Rows { rows: usize, texts: usize },
    #[error("no pairs to embed (an empty input, or a shard with no rows: use fewer shards)")]
    NoPairs,
    #[error("nothing to merge: give at least one cache folder")]
    NothingToMerge,
}

impl EmbedError {
    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        EmbedError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EmbedError::Io {
            path: path.into(),
            source,
        }
    }
    pub fn tokenizer(e: impl std::fmt::Display) -> Self {
        EmbedError::Tokenizer {
            message: e.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, EmbedError>;
