//! Errors of the decoder backbone: each names the file or field at fault and what to do.

use std::path::PathBuf;

/// Why a decoder reward model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum DecoderError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A configuration file is malformed or holds an unsupported value.
    #[error("{path}: field `{field}`: {message}")]
    Config {
        path: PathBuf,
        field: String,
        message: String,
    },
    /// The weights are missing, malformed, or do not fit the configuration.
    #[error("{path}: {message}")]
    Weights { path: PathBuf, message: String },
    /// The tokenizer failed or does not fit the weights.
    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    /// The chat template failed to parse or to render (including `raise_exception`).
    #[error("chat template ({source_name}): {message}")]
    Template {
        source_name: String,
        message: String,
    },
    /// Even an empty prompt and response do not fit the token budget (the template's own
    /// tokens plus the context exceed it).
    #[error(
        "the chat template and context alone need {needed} tokens but max_length is {max_length}: \
         raise max_length (the model allows {model_max})"
    )]
    TooLong {
        needed: usize,
        max_length: usize,
        model_max: usize,
    },
    /// The model folder lacks a file or holds a malformed one (found by [`crate::ModelFolder`],
    /// which encoders share).
    #[error(transparent)]
    Folder(#[from] crate::EmbedError),
    /// The device could not be opened.
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    /// A tensor operation failed while running the model.
    #[error("model forward pass: {0}")]
    Forward(#[from] candle_core::Error),
}

/// Result alias for the decoder backbone.
pub type Result<T> = std::result::Result<T, DecoderError>;

impl DecoderError {
    pub(crate) fn config(path: &std::path::Path, field: &str, message: impl Into<String>) -> Self {
        DecoderError::Config {
            path: path.to_path_buf(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn weights(path: &std::path::Path, message: impl Into<String>) -> Self {
        DecoderError::Weights {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
