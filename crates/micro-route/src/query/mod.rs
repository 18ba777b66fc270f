//! Asking fewer questions: which comparisons a new context or user should label.
//!
//! MiCRo's Stage 2 labels B pairs per context drawn at random; a pair on which every head
//! prefers the same response cannot tell the heads apart, whatever its label. Here each next
//! pair is the one whose answer is expected to tell the most about which head the context or
//! user follows: the mutual information between the answer and the head under the current
//! weights, I = H(sum_k w_k p_k) - sum_k w_k H(p_k) with p_k = sigma(r_k(a) - r_k(b))
//! ([`information`]; formula and proof of its meaning there). After each answer the weights
//! are updated and the next pair is chosen.
//!
//! - [`information`]: the rule, and [`Candidates::best`], the most informative candidate.
//! - [`session`]: one question at a time ([`ActiveSession`]), and [`next_question`] for one
//!   user's online state (what a server's "which pair should I ask?" calls).
//! - [`choose`]: Stage 2 budgets chosen per attribute from a cache ([`choose_budget`]).
//! - [`simulate`]: simulated users who answer by one head, asked by the rule or at random.
//!
//! Measured (docs/active.md, 3 Stage 1 seeds x 5 runs): on `micro synth` (mixed cache, 4
//! groups) 5 chosen pairs per group with [`crate::AdaptConfig::pool_inputs`] gave 0.860 where 50
//! random ones gave 0.855, and chosen pairs were ahead of random ones at every budget with or
//! without pool inputs; on the built-in RPR-style data 10 chosen pairs (0.889) matched 50 random
//! ones (0.887); on the built-in HelpSteer2-style data, whose heads are under-confident for any
//! one user, the rule was 0.004-0.010 below random at B >= 25. Online, simulated users asked by
//! [`next_question`] reached 90% of their head's accuracy in 2.5-10 answers against 15-29 at
//! random on confident heads.
//!
//! ```
//! use micro_route::query::{next_question, Selection};
//! use micro_route::{Rate, UserState};
//! let user = UserState::with_rate(&[0.5, 0.5], Rate::Anytime);
//! // Candidate 0: both heads prefer the first response; candidate 1: they disagree.
//! let q = next_question(&user, &[2.0, 2.0, 2.0, -2.0], 0).unwrap();
//! assert_eq!(q.index, 1);
//! assert!((q.information - 0.3278).abs() < 1e-4);
//! assert_eq!("active".parse::<Selection>().unwrap(), Selection::Active);
//! ```

pub mod choose;
pub mod information;
pub mod session;
pub mod simulate;

pub use choose::{choose_budget, choose_from_pools, ActiveBudget, ActiveGroup, Pick};
pub use information::{information, Candidates, Question};
pub use session::{next_question, pair_margins, ActiveSession, MIN_INFORMATION};
pub use simulate::{simulate_users, SimConfig, SimReport, SimUser};

/// How Stage 2's labelled pairs are picked from a context's pool: at random (the paper) or
/// one at a time by the information of their answer ([`choose`]). Recorded in the adapted
/// model's `config.json`, so it is micro-model's type.
pub use micro_model::Selection;
