//! Stage 1 of MiCRo: K linear Bradley-Terry reward heads and a router on the simplex, trained
//! on binary preference pairs by the mixture likelihood; and the baselines beside it.
//!
//! The principal type is [`MixtureModel`]; [`train()`] makes one from an embedding cache's
//! [`TrainingArrays`](micro_cache::TrainingArrays). Its fields are private: other crates read
//! it ([`MixtureModel::config`], [`MixtureModel::heads`], [`MixtureModel::gate`]) and change it
//! only through its editing methods ([`MixtureModel::select_heads`],
//! [`MixtureModel::merge_heads`], [`MixtureModel::set_gate`], [`MixtureModel::push_history`]...),
//! which keep `config.json` true to the tensors. The heads are mixed by one [`Gate`] type,
//! shared by the trainer and the model, and a Stage 1 method is defined by [`Method`], [`Gate`]
//! and [`Objective`] only. Both stages step their parameters with one [`Optimiser`] (AdamW on a
//! warm-up + cosine schedule).
//!
//! ```
//! use micro_cache::{CacheMeta, Matrix, TrainingArrays};
//! use micro_data::PrefPair;
//! use micro_model::{train, Method, TrainConfig};
//! // 60 pairs whose preferred response is higher on the first coordinate.
//! let rows: Vec<Vec<f32>> = (0..60).map(|i| vec![1.0 + (i % 3) as f32, (i % 5) as f32 - 2.0]).collect();
//! let arrays = TrainingArrays {
//!     meta: CacheMeta::default(),
//!     pairs: vec![PrefPair::new("q", "good", "bad"); 60],
//!     diff: Matrix::from_rows(&rows),
//!     prompt: Matrix::zeros(60, 1),
//!     router_input: micro_cache::RouterInput::Prompt,
//! };
//! let cfg = TrainConfig { method: Method::Single, k: 1, lr: 0.05, max_epochs: 20, ..Default::default() };
//! let (model, report) = train(&arrays, &cfg, |_| {}).unwrap();
//! assert!(model.pair_prob(&[0.0], &[1.0, 0.0]) > 0.6);
//! assert_eq!(report.n_train + report.n_holdout, 60);
//! ```
//!
//! Each type has one path, the crate root's; the modules that define them are private:
//!
//! ```compile_fail
//! use micro_model::model::MixtureModel;
//! ```

mod accuracy;
#[cfg(any(test, feature = "bench"))]
pub mod bench;
mod crossfit;
mod edit;
pub mod float;
mod folder;
mod gate;
pub mod linalg;
mod loss;
mod method;
mod model;
mod optim;
mod record;
pub mod report;
mod router;
mod search;
pub mod synth;
mod train;
mod users;
pub use accuracy::{mixture_correct, mixture_margin, pair_correct, pairwise_accuracy};
pub use crossfit::{
    cross_fit, Evidence, EvidenceMeta, DEFAULT_FOLDS, EVIDENCE_FILE, EVIDENCE_META,
};
pub use edit::SHARED_HEAD_LOGIT;
pub use folder::{ModelError, CONFIG_FILE, MODEL_FILE, USERS_FILE};
pub use gate::{Gate, RouterKind};
pub use loss::{Batch, LossParts, Objective, Params, Workspace};
pub use method::Method;
pub use model::{log_sigmoid, sigmoid, CacheMismatch, MixtureModel, ModelConfig};
pub use optim::{AdamW, Optimiser, Schedule};
pub use record::{HistoryEvent, Selection, Stage1Record, Stage2Record, Training};
pub use router::{Activation, Router, RouterActs};
pub use search::{train_search, Grid, Point, Search, SearchEvent, Shape, Trial};
pub use train::{
    train, train_on, train_rows, train_rows_of, with_stop_flag, EpochStats, Heads, RouterLayout,
    TrainConfig, TrainData, TrainError, TrainEvent, TrainOptions, TrainReport, UsersChoice,
    AUTO_HEADS,
};
pub use users::{UserIds, UserTable, NO_USER};
