use std::path::PathBuf;

/// What can go wrong evaluating, sweeping or reporting. Every variant says what to do.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The model was trained on embeddings of another width or backbone.
    #[error("the model does not fit this cache: {0}")]
    Mismatch(String),
    /// The chosen split selects nothing.
    #[error("the cache has no {split} pairs to evaluate: {hint}")]
    NoPairs { split: String, hint: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// Stage 2 (adaptation or HyRe weights) failed inside a sweep.
    #[error("stage 2 failed for {model} (budget {budget}, run {run}): {message}")]
    Stage2 {
        model: String,
        budget: usize,
        run: usize,
        message: String,
    },
    #[error("{0}")]
    Options(String),
    #[error("drawing {figure}: {message}")]
    Plot { figure: String, message: String },
}

impl EvalError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.into(),
            source,
        }
    }
    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        EvalError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, EvalError>;
