//! Stage 1 of MiCRo: K linear Bradley-Terry reward heads and a router on the simplex, trained
//! on binary preference pairs by the mixture likelihood; and the baselines beside it.
//!
//! The principal type is [`MixtureModel`]; [`train()`] makes one from an embedding cache's
//! [`TrainingArrays`](micro_cache::TrainingArrays). Its fields are private: other crates read
//! it ([`MixtureModel::config`], [`MixtureModel::heads`], [`MixtureModel::gate`]) and change it
//! only through the operations in [`edit`] (select or merge heads, replace the gate, record
//! history), which keep `config.json` true to the tensors. The heads are mixed by one
//! [`Gate`] type, shared by the trainer and the model, and a Stage 1 method is defined in
//! [`method`], [`gate`] and [`loss`] only.
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

pub mod accuracy;
#[cfg(any(test, feature = "test-util"))]
pub mod bench;
pub mod edit;
pub mod float;
pub mod folder;
pub mod gate;
pub mod linalg;
pub mod loss;
pub mod method;
pub mod minibatch;
pub mod model;
pub mod optim;
pub mod report;
pub mod router;
pub mod search;
pub mod synth;
pub mod train;

pub use accuracy::{mixture_correct, pair_correct, pairwise_accuracy};
pub use folder::{ModelError, CONFIG_FILE, MODEL_FILE};
pub use gate::{Gate, RouterKind};
pub use loss::{LossParts, Objective, Params, Workspace};
pub use method::Method;
pub use minibatch::{Minibatch, Optimiser};
pub use model::{log_sigmoid, sigmoid, MixtureModel, ModelConfig};
pub use optim::{AdamW, Schedule};
pub use router::{Activation, Router, RouterActs};
pub use search::{train_search, Grid, Search, SearchEvent, Trial};
pub use train::{
    train, train_rows, EpochStats, Heads, RouterLayout, TrainConfig, TrainError, TrainEvent,
    TrainOptions, TrainReport,
};
