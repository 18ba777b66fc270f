/// What can go wrong in Stage 2 and the head tools, with the facts a caller can act on. Every
/// message says what to change; settings are named as [`crate::AdaptConfig`] and the functions'
/// arguments name them (`tau`, `budget`, `threshold`...).
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("tau must be > 0 (the paper uses 1e-3 or 1e-4), got {tau}")]
    Tau { tau: f64 },
    #[error("HyRe's eta must be a finite number >= 0, got {eta}")]
    Eta { eta: f64 },
    #[error("the merge threshold is a correlation, in [-1, 1]; got {threshold}")]
    Threshold { threshold: f64 },
    #[error("epochs ({epochs}) and batch size ({batch_size}) must be at least 1")]
    NoSteps { epochs: usize, batch_size: usize },
    #[error("the learning rate must be a positive number, got {lr}")]
    LearningRate { lr: f32 },
    #[error(
        "weight decay must be >= 0 and the warm-up ratio in [0, 1); got {weight_decay} and {warmup_ratio}"
    )]
    DecayOrWarmup {
        weight_decay: f32,
        warmup_ratio: f32,
    },
    #[error(
        "simulated users ({users}) and answers per user ({max_answers}) must be at least 1 and the noise ({noise}) in [0, 0.5)"
    )]
    Simulation {
        users: usize,
        max_answers: usize,
        noise: f64,
    },
    #[error(
        "the cache has no training pairs (every pair has split = test): Stage 2 samples its budget from the train split"
    )]
    NoTrainPairs,
    #[error(
        "none of the {pairs} training pairs carries a `context`: Stage 2 routes by context, so give each attribute's pairs its criterion or the user's instruction as `context`"
    )]
    NoContext { pairs: usize },
    #[error(
        "attribute `{attribute}` has {pairs} pairs: holding out {held_out} labelled ones would leave none to evaluate; lower the number held out"
    )]
    HoldsOutAll {
        attribute: String,
        pairs: usize,
        held_out: usize,
    },
    #[error(
        "none of the {pairs} training pairs belongs to a user known only by id (a `user_id` and no `context`): nothing to adapt per user"
    )]
    NoUserIds { pairs: usize },
    #[error(
        "none of the {pairs} training pairs carries a `context` or a `user_id`: Stage 2 adapts to contexts (give each attribute's pairs its criterion or the user's instruction as `context`) or to users (give each pair its annotator's `user_id`)"
    )]
    NothingToAdapt { pairs: usize },
    #[error("{path}: cannot read or write the user states ({message})")]
    UserStates { path: String, message: String },
    #[error("pair index {index} is out of range: the cache has {pairs} pairs")]
    PairIndex { index: usize, pairs: usize },
    #[error("{pairs} held-out pairs: correlations need at least 3")]
    TooFewToCorrelate { pairs: usize },
    #[error("the safety set has no pairs to audit the heads on")]
    NoAuditPairs,
    #[error(
        "every head scores below {threshold} on the safety set: masking would leave no head; retrain with safety data in Stage 1"
    )]
    EveryHeadFlagged { threshold: f64 },
    #[error("candidates need at least one head")]
    NoHeads,
    #[error("{values} margins do not make rows of {k} (one margin per head per candidate pair)")]
    MarginRows { values: usize, k: usize },
    #[error("candidate {candidate} has margin {margin} for head {head}: margins must be finite")]
    CandidateMargin {
        candidate: usize,
        head: usize,
        margin: f32,
    },
    #[error("no candidate pairs to choose from: send at least one")]
    NoCandidates,
    #[error("candidate {index} does not exist: the session has {candidates}")]
    NoSuchCandidate { index: usize, candidates: usize },
    #[error("candidate {index} was already answered")]
    AlreadyAnswered { index: usize },
    #[error(
        "candidate embeddings must be two [n, {dim}] arrays of the same shape (got {first} and {second} values)"
    )]
    CandidateShape {
        dim: usize,
        first: usize,
        second: usize,
    },
    #[error("the prior has {weights} weights but the candidates have {k} heads")]
    PriorLength { weights: usize, k: usize },
    #[error("prior weights must be finite, non-negative and not all zero")]
    PriorWeights,
    #[error("the simulation needs candidate pairs and held-out pairs")]
    NoSimulationPairs,
    #[error("feedback has {margins} margins but the user state has {k} heads")]
    FeedbackLength { margins: usize, k: usize },
    #[error("margin of head {head} is {margin}: margins must be finite")]
    FeedbackMargin { head: usize, margin: f32 },
    #[error("cannot merge user states with different numbers of heads or rates")]
    StatesDiffer,
    #[error("cannot merge user states that started from different priors")]
    PriorsDiffer,
    /// The model cannot read the cache's vectors (another backbone, width or recipe).
    #[error(transparent)]
    Mismatch(#[from] micro_model::CacheMismatch),
    #[error(transparent)]
    Model(#[from] micro_model::ModelError),
    #[error(transparent)]
    Cache(#[from] micro_cache::CacheError),
}

pub type Result<T> = std::result::Result<T, RouteError>;
