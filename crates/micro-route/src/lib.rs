//! Stage 2 of MiCRo and the tools around the heads: context-aware router learning
//! (Algorithm 1, [`adapt()`] with [`AdaptConfig`]), the labelling budget ([`sample_budget`], or
//! chosen by the information of each answer: [`query`]),
//! per-user online adaptation ([`UserState`], the principal type for deployment), HyRe
//! test-time reweighting ([`hyre_weights`]), safety audits and masking ([`audit_heads`]), and
//! merging of redundant heads ([`merge_correlated`]).
//!
//! ```
//! use micro_route::{hedge_targets, Rate, UserState};
//! // Algorithm 1's soft labels: with tau = 1e-4 they are the one-hot argmax of p_k.
//! let log_prior = [0.7f64.ln(), 0.3f64.ln()];
//! let log_p = [0.6f64.ln(), 0.62f64.ln()];
//! assert_eq!(hedge_targets(&log_prior, &log_p, 2, 1e-4).unwrap(), vec![0.0, 1.0]);
//!
//! // A user who keeps agreeing with head 1 moves their weight onto it.
//! let mut user = UserState::with_rate(&[0.5, 0.5], Rate::Anytime);
//! for _ in 0..50 {
//!     user.update(&[-2.0, 3.0]); // margins r_k(chosen) - r_k(rejected) of the two heads
//! }
//! assert!(user.weights()[1] > 0.95);
//! let stored = serde_json::to_string(&user).unwrap();
//! let back: UserState = serde_json::from_str(&stored).unwrap();
//! assert_eq!(back.updates, 50);
//! assert!((back.weights()[1] - user.weights()[1]).abs() < 1e-6);
//! ```

pub mod accuracy;
pub mod adapt;
pub mod audit;
#[cfg(any(test, feature = "bench"))]
pub mod bench;
pub mod budget;
pub mod error;
pub mod evidence;
pub mod experts;
#[cfg(any(test, feature = "bench"))]
pub mod fixture;
pub mod hyre;
pub mod likelihood;
pub mod merge;
pub mod online;
pub mod query;
pub mod recipe;
pub mod report;
pub mod select;
pub mod targets;
pub mod users;

pub use accuracy::Accuracy;
pub use adapt::{adapt, AdaptConfig, AdaptReport, EpochStats, EvidenceScope};
pub use audit::{audit_heads, mask_flagged, AuditReport, HeadAudit};
pub use budget::{
    draw_budget, hold_out_per_attribute, sample_budget, sample_budget_groups, Budget,
};
pub use error::{Result, RouteError};
pub use evidence::ExpertView;
pub use experts::{Experts, Fit};
pub use hyre::{hyre_accuracy, hyre_per_attribute, hyre_weights, HyreSplit, HYRE_PAIRS};
pub use merge::{auto_heads, merge_correlated, MergeReport, DEFAULT_MERGE_THRESHOLD};
pub use online::{Rate, UserState, BAYES, LOSS_CLIP};
pub use query::{choose_budget, next_question, Question, Selection};
pub use select::select_heads;
pub use targets::{hedge_target, hedge_targets};
pub use users::{adapt_users, UserJob, UserRecord, UserStates};
