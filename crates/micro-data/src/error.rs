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
    #[error("{}: is a folder; pass the data files inside it (e.g. {}/*.parquet)", path.display(), path.display())]
    Folder { path: PathBuf },
    #[error("the test fraction must be strictly between 0 and 1 (e.g. 0.2), got {fraction}")]
    TestFraction { fraction: f64 },
    #[error("give either a split for every pair or a test fraction to split by prompt, not both")]
    SplitAndFraction,
    #[error("the minimum rating gap must be a positive number, got {gap}")]
    MinGap { gap: f64 },
    /// A ratings file whose layout names no rating columns and no ratings object: `prompt`
    /// says the prompt and response fields are unnamed too.
    #[error(
        "{}: name the {}rating columns (--attributes a,b,c) or the object holding them (--ratings-field)",
        path.display(),
        if *prompt { "ratings layout: the prompt and response fields (--prompt-field, --response-field) and the " } else { "" }
    )]
    RatingsLayout { path: PathBuf, prompt: bool },
    #[error("pairs per user must be at least 1")]
    NoPairsPerUser,
    #[error("no input pairs: pass the HH-RLHF harmless-base file")]
    NoInputPairs,
    /// The chatterbot corpus has no default place.
    #[error(
        "neither MICRO_HOME nor HOME is set, so the chatterbot corpus cannot be located; set MICRO_HOME or pass a corpus folder ({})",
        crate::builtin::corpus::FETCH_HINT
    )]
    NoCorpusHome,
    #[error(
        "chatterbot corpus not found at {}: {error}; {}",
        path.display(),
        crate::builtin::corpus::FETCH_HINT
    )]
    NoCorpus {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "no *.yml files in {}: the chatterbot corpus is missing; {}",
        path.display(),
        crate::builtin::corpus::FETCH_HINT
    )]
    EmptyCorpus { path: PathBuf },
    /// A setting of the built-in set out of its range.
    #[error("builtin {setting} must be {rule}, got {value}")]
    BuiltinSetting {
        setting: &'static str,
        rule: &'static str,
        value: f64,
    },
    #[error("{}: expected a JSON object of attribute -> sentence strings ({error})", path.display())]
    ContextsFile {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("context {given:?}: expected NAME=SENTENCE, e.g. coherence='Stay on topic.'")]
    ContextSentence { given: String },
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
