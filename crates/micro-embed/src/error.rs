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
    /// A failure during embedding that is not tied to a file (tokenizer, tensor library).
    #[error("{0}")]
    Other(String),
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
    pub fn other(message: impl Into<String>) -> Self {
        EmbedError::Other(message.into())
    }
}

pub type Result<T> = std::result::Result<T, EmbedError>;
