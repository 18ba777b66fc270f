//! The budget study (the paper's Fig. 4 / Table 9): for each budget B and run, sample B labelled
//! pairs per attribute from the train split, adapt the router (Stage 2), evaluate on the test
//! split; report accuracy per attribute as mean ± std over runs. Models without a router (single
//! head, static mixture) keep their Stage 1 weights, as in the paper. HyRe rows reweight a
//! model's heads per attribute from a few labelled test pairs and are evaluated on the rest.
//!
//! Stage 2 itself is supplied through [`Stage2`] (micro-route's implementation is
//! [`crate::RouteStage2`]), so the protocol here is testable on its own.
//!
//! **Selection.** [`budget_sweep_with`] can add, next to each adapted row (B pairs per attribute
//! drawn at random), an active row (`<model>+active`): B pairs per attribute chosen one at a time
//! by the information of their answer about the heads ([`micro_route::query`]), from the same
//! pool and adapted with the same Stage 2 settings. The choice is greedy, so within a run the
//! chosen sets are nested across budgets as the random ones are; runs differ by the seed that
//! breaks ties and orders the pool, and by Stage 2's own seed.
//!
//! The study is split by concept: [`run`] drives it (models, options, the rows), [`sample`]
//! draws the labelled pairs of each run, and [`report`] holds what a study returns and pools
//! studies together.

mod report;
mod run;
mod sample;

pub use report::{pool_sweeps, RowKind, SweepPoint, SweepReport, SweepRow};
pub use run::{budget_sweep, budget_sweep_with, Adapted, NamedModel, Stage2, SweepOptions};
pub use sample::{shuffled_train, take_budget};
