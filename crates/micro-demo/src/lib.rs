//! The demo recipe: MiCRo end to end on the built-in multi-user data, told as the paper's two
//! stories ([`demo`]), each a [`story::run_story`] over an embedding cache: Stage 1 (MiCRo and
//! the baselines over several training seeds, hyperparameters chosen by held-out likelihood),
//! Stage 2 at the default budget, the budget study, and an HTML report.
//!
//! The principal type is [`StoryConfig`]. A story needs only a cache, so it runs on synthetic
//! data too:
//!
//! ```
//! use micro_demo::{run_story, Silent, StoryConfig};
//! use micro_model::synth::{generate, SynthConfig};
//! let (cache, truth) = generate(&SynthConfig { pairs: 3000, dim: 8, groups: 2, seed: 3, ..Default::default() }).unwrap();
//! let cfg = StoryConfig { heads: 2, seeds: vec![0, 1], grid: None, budgets: vec![0, 20], runs: 1, budget: 20, ..Default::default() };
//! let out = tempfile::tempdir().unwrap();
//! let story = run_story(&cache, &cfg, out.path(), &mut Silent).unwrap();
//! let seeds = story.results.seeds.as_ref().unwrap();
//! let micro = seeds.rows.iter().find(|r| r.method == "micro").unwrap();
//! assert_eq!(micro.average.values.len(), 2);
//! // Two opposite groups with their contexts: MiCRo's heads come near the Bayes accuracy.
//! assert!(micro.best_head_average.mean > truth.bayes_average - 0.05);
//! assert!(story.report.is_file());
//! ```

pub mod assets;
pub mod cache;
pub mod demo;
pub mod observer;
pub mod protocol;
pub mod real;
pub mod story;

pub use demo::{run_demo, DemoConfig};
pub use observer::{Observer, Silent};
pub use protocol::{run_protocol, ProtocolConfig, ProtocolReport};
pub use story::{run_story, StoryConfig, StoryOutput};
