//! Errors that name the file, the line and the field, so a user can fix their data.

use std::path::{Path, PathBuf};

/// Where in the input something went wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    /// 1-based line (JSONL) or row (Parquet) number.
    pub line: Option<usize>,
    pub field: Option<String>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(field) = &self.field {
            write!(f, " field `{field}`")?;
        }
        Ok(())
    }
}

/// A value that names none of a setting's choices (`hs3` as a format, `tpu` as a device): which
/// setting, the value given and what it may be. The `FromStr` error of the workspace's named
/// settings, so that clap's messages and a caller's match see the same typed error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {setting} {value:?}: use {expected}")]
pub struct UnknownValue {
    pub setting: &'static str,
    pub value: String,
    pub expected: String,
}

impl UnknownValue {
    pub fn new(setting: &'static str, value: &str, expected: impl Into<String>) -> Self {
        UnknownValue {
            setting,
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The I/O error is part of the message rather than a `source`, so that printing the
    /// whole cause chain (as the CLI does) does not repeat it.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{at}: {message}")]
    Invalid { at: Location, message: String },
    #[error("{path}: no preference pairs found ({hint})")]
    Empty { path: PathBuf, hint: String },
    #[error("{0}")]
    Other(String),
}

impl DataError {
    pub fn io(path: &Path, error: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            error,
        }
    }

    /// An invalid value at `path:line`, optionally in `field`.
    pub fn invalid(
        path: &Path,
        line: Option<usize>,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        DataError::Invalid {
            at: Location {
                path: path.to_path_buf(),
                line,
                field: field.map(str::to_string),
            },
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, DataError>;
