//! Evaluation of MiCRo models and baselines on an embedding cache, the Stage 2 budget study, and
//! an HTML report with figures.
//!
//! The principal type is [`EvalReport`], made by [`evaluate`]: pairwise accuracy per attribute
//! (a pair is right when sum_k f_k(x, c) sigma(delta_k) > 1/2; an exact tie is wrong), their
//! unweighted mean, log-loss, the head x attribute accuracy matrix with the best head per
//! attribute, the mean router weights per attribute, and the backbone-alone baseline when the
//! cache carries its scores. [`budget_sweep`] runs the budget study, [`write_report`] draws
//! [`Results`] as `index.html` + SVG figures.
//!
//! ```
//! use micro_cache::{CacheMeta, EmbeddingCache, Matrix};
//! use micro_data::{PrefPair, Split};
//! use micro_eval::{evaluate, EvalOptions};
//! use micro_model::{Gate, Method, MixtureModel, ModelConfig, RouterKind};
//!
//! // Two heads reading a 2-d response embedding; a static gate with weights (0.5, 0.5).
//! let config = ModelConfig {
//!     format_version: 1, method: Method::Static, k: 2, dim: 2, prompt_dim: 1,
//!     router: RouterKind::Static, router_hidden: None, activation: Default::default(),
//!     backbone: Default::default(), recipe: Default::default(),
//!     router_input: Default::default(), train_pairs_hash: String::new(), users: 0, shared_head: None,
//!     training: Default::default(), history: Vec::new(),
//! };
//! let heads = Matrix::new(2, 2, vec![1.0, 0.0, 0.0, 1.0]);
//! let model = MixtureModel::new(config, heads, Gate::Static(vec![0.0, 0.0])).unwrap();
//!
//! // One test pair whose h_w - h_l = (2, -1): head 0 is right, head 1 wrong,
//! // and the mixture gives (sigma(2) + sigma(-1)) / 2 = 0.5749 > 0.5.
//! let mut pair = PrefPair::new("q", "a", "b");
//! pair.split = Some(Split::Test);
//! pair.attribute = Some("helpfulness".into());
//! let chosen = Matrix::new(1, 2, vec![2.0, 0.0]);
//! let rejected = Matrix::new(1, 2, vec![0.0, 1.0]);
//! let prompt = Matrix::new(1, 1, vec![0.0]);
//! let cache = EmbeddingCache::new(CacheMeta::default(), vec![pair], chosen, rejected, prompt).unwrap();
//!
//! let report = evaluate(&model, &cache, &EvalOptions::default()).unwrap();
//! assert_eq!(report.average, 1.0);
//! assert_eq!(report.per_head["helpfulness"], vec![1.0, 0.0]);
//! assert_eq!(report.best_head["helpfulness"], 0);
//! assert!((report.log_loss + 0.5749f64.ln()).abs() < 1e-3);
//! println!("{}", micro_eval::render_table(&report));
//! ```

mod error;
mod evaluate;
pub mod metrics;
pub mod report;
mod results;
mod seeds;
pub mod specs;
mod stage2;
mod sweep;
mod table;

pub use error::{EvalError, Result};
pub use evaluate::{
    evaluate, evaluate_indices, evaluate_with, BaselineScores, EvalOptions, EvalReport, Gating,
    SplitSel,
};
pub use metrics::Stat;
pub use report::{write_report, ReportFiles};
pub use results::{write_json, Results, RESULTS_FILE, RESULTS_FORMAT_VERSION};
pub use seeds::{render_seed_summary, summarize_seeds, SeedRow, SeedSummary};
pub use specs::{load_models, model_specs};
pub use stage2::RouteStage2;
pub use sweep::{
    budget_sweep, budget_sweep_with, pool_sweeps, shuffled_train, take_budget, Adapted, NamedModel,
    RowKind, Stage2, SweepOptions, SweepPoint, SweepReport, SweepRow,
};
pub use table::{comparison_rows, render_comparison, render_sweep, render_table};
