//! What a call into micro fails with, and the Python exception each failure becomes: the
//! library's typed errors keep their messages (the one-line causes `micro` prints), the
//! arguments this module refuses itself say which argument and why.
//!
//! Files that cannot be read or written raise `OSError` (`FileNotFoundError` for a missing
//! one), a stopped training `KeyboardInterrupt`, anything else about the input `ValueError`.

use pyo3::exceptions::{PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyValueError};
use pyo3::PyErr;
use std::io::ErrorKind;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Cache(#[from] micro_cache::CacheError),
    #[error(transparent)]
    Model(#[from] micro_model::ModelError),
    #[error(transparent)]
    Train(#[from] micro_model::TrainError),
    #[error(transparent)]
    Route(#[from] micro_route::RouteError),
    #[error(transparent)]
    Eval(#[from] micro_eval::EvalError),
    #[error(transparent)]
    Embed(#[from] micro_embed::EmbedError),
    /// A setting given as a string that names no value (`method="mixture"`).
    #[error(transparent)]
    Setting(#[from] micro_data::UnknownValue),
    /// An array of the wrong rank or width.
    #[error("`{name}` has shape {got:?}; expected {expected}")]
    Shape {
        name: &'static str,
        got: Vec<usize>,
        expected: String,
    },
    /// A per-pair list or array whose length is not the number of pairs.
    #[error("`{name}` has {got} entries for {pairs} pairs: give one per pair")]
    Length {
        name: &'static str,
        got: usize,
        pairs: usize,
    },
    /// The words of the cache loader's refusal, for arrays that never were a file.
    #[error("`{name}` row {row} column {column} is {value} (NaN/Inf are not allowed)")]
    NotFinite {
        name: &'static str,
        row: usize,
        column: usize,
        value: f32,
    },
    /// A JSON-shaped argument (pairs, prompts, a user state) that does not read as the
    /// library's type.
    #[error("`{name}`: {message}")]
    Json { name: &'static str, message: String },
    /// Weights asked of a model with a router, with nothing to route on.
    #[error("the model routes by its router input: give `prompt` (e(x), or e(x, c) with the context) to weight the heads")]
    NoRouterInput,
}

impl Error {
    /// The kind of the I/O error underneath, when a file is what failed.
    fn io_kind(&self) -> Option<ErrorKind> {
        use micro_cache::CacheError as C;
        use micro_data::DataError as D;
        use micro_embed::EmbedError as E;
        use micro_eval::EvalError as V;
        use micro_model::ModelError as M;
        use micro_route::RouteError as R;
        fn cache(e: &C) -> Option<ErrorKind> {
            match e {
                C::Io { source, .. } => Some(source.kind()),
                C::Data(D::Io { error, .. }) => Some(error.kind()),
                _ => None,
            }
        }
        fn model(e: &M) -> Option<ErrorKind> {
            match e {
                M::Cache(c) => cache(c),
                _ => None,
            }
        }
        match self {
            Error::Cache(c) => cache(c),
            Error::Model(m) => model(m),
            Error::Route(R::UserStates { .. }) => Some(ErrorKind::Other),
            Error::Route(R::Cache(c)) => cache(c),
            Error::Route(R::Model(m)) => model(m),
            Error::Eval(V::Io { source, .. }) => Some(source.kind()),
            Error::Eval(V::LoadModel { cause, .. }) => model(cause),
            Error::Embed(E::Io { source, .. }) => Some(source.kind()),
            Error::Embed(E::MissingFile { .. }) => Some(ErrorKind::NotFound),
            Error::Embed(E::Cache(c)) => cache(c),
            Error::Embed(E::Data(D::Io { error, .. })) => Some(error.kind()),
            _ => None,
        }
    }
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        let message = e.to_string();
        match (&e, e.io_kind()) {
            (Error::Train(micro_model::TrainError::Cancelled), _) => {
                PyKeyboardInterrupt::new_err(message)
            }
            (_, Some(ErrorKind::NotFound)) => PyFileNotFoundError::new_err(message),
            (_, Some(_)) => PyOSError::new_err(message),
            (_, None) => PyValueError::new_err(message),
        }
    }
}

/// `result` of opening `path` as a Python result: the library's message, raised as
/// `FileNotFoundError` when `path` is not there at all (the library reports a folder that is
/// not a cache or a model the same way whether it exists or not).
pub fn opened<T, E: Into<Error>>(
    path: &Path,
    result: std::result::Result<T, E>,
) -> pyo3::PyResult<T> {
    result.map_err(|e| {
        let e = e.into();
        if path.exists() {
            e.into()
        } else {
            PyFileNotFoundError::new_err(e.to_string())
        }
    })
}

/// `?` for the library's results in functions that return `PyResult`.
pub trait OrRaise<T> {
    fn or_raise(self) -> pyo3::PyResult<T>;
}

impl<T, E: Into<Error>> OrRaise<T> for std::result::Result<T, E> {
    fn or_raise(self) -> pyo3::PyResult<T> {
        self.map_err(|e| e.into().into())
    }
}
