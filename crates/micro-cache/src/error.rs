use std::path::PathBuf;

/// What can go wrong reading or writing an embedding cache. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(transparent)]
    Data(#[from] micro_data::DataError),
}

impl CacheError {
    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        CacheError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CacheError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, CacheError>;
