/// What can go wrong in Stage 2 and the head tools. Every message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A setting out of range (temperature, budget, threshold...).
    #[error("{0}")]
    Config(String),
    /// The cache cannot serve the request (too few pairs, no context, widths differ...).
    #[error("{0}")]
    Data(String),
    #[error(transparent)]
    Model(#[from] micro_model::ModelError),
}

pub type Result<T> = std::result::Result<T, RouteError>;

pub(crate) fn config(msg: impl Into<String>) -> RouteError {
    RouteError::Config(msg.into())
}

pub(crate) fn data(msg: impl Into<String>) -> RouteError {
    RouteError::Data(msg.into())
}
