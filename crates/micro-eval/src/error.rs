use std::path::PathBuf;

/// What can go wrong evaluating, sweeping or reporting. Every variant says what to do.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The model was trained on embeddings of another width, backbone or recipe.
    #[error("model `{model}` does not fit this cache: {cause}")]
    Mismatch {
        model: String,
        cause: micro_model::CacheMismatch,
    },
    #[error("loading model `{label}` ({}): {cause}", path.display())]
    LoadModel {
        label: String,
        path: PathBuf,
        cause: Box<micro_model::ModelError>,
    },
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
    /// Stage 2 (choosing the pairs to label, adaptation or HyRe weights) failed inside a sweep.
    #[error("stage 2 failed for {model} (budget {budget}, run {run}): {cause}")]
    Stage2 {
        model: String,
        budget: usize,
        run: usize,
        cause: Box<micro_route::RouteError>,
    },
    #[error(
        "user `{user}` has weights over {state} experts, the model has {experts} (its heads and the gate): adapt the users with this model"
    )]
    UserStateExperts {
        user: String,
        state: usize,
        experts: usize,
    },
    #[error("weights for `{attribute}` have {weights} entries, the model has {k} heads")]
    GateWeights {
        attribute: String,
        weights: usize,
        k: usize,
    },
    #[error("weights for `{attribute}` must be non-negative with a positive sum, got {weights:?}")]
    GateValues {
        attribute: String,
        weights: Vec<f32>,
    },
    #[error("no seeds to summarise")]
    NoSeeds,
    #[error("{seeds} seeds but {runs} runs")]
    SeedsAndRuns { seeds: usize, runs: usize },
    #[error("method `{method}` is not in every seed's reports at position {position}")]
    SeedMethods { method: String, position: usize },
    #[error("{}: no sub-folder holds a model (config.json + model.safetensors)", path.display())]
    NoModelIn { path: PathBuf },
    /// `model_specs` was given no model folder and no folder of them.
    #[error("no model given: name a model folder (LABEL=DIR or DIR) or a folder of model folders")]
    NoModel,
    #[error("two models are labelled `{label}`: give each its own label (LABEL=DIR)")]
    SameLabel { label: String },
    #[error("the results hold no evaluation and no budget sweep: nothing to report")]
    NothingToReport,
    #[error("no budget studies to pool")]
    NoStudies,
    #[error("budget studies with different budgets, attributes or rows cannot be pooled")]
    StudiesDiffer,
    #[error("row `{row}` does not match `{other}` in another study")]
    StudyRows { row: String, other: String },
    #[error(
        "a budget sweep needs at least one budget, one run and one selection (got {budgets} budgets, {runs} runs, {selections} selections)"
    )]
    EmptySweep {
        budgets: usize,
        runs: usize,
        selections: usize,
    },
    #[error(
        "HyRe needs more than {shots} test pairs in some attribute; lower the HyRe shots or use 0"
    )]
    HyreShots { shots: usize },
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
