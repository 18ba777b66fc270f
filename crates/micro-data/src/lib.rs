//! Preference data for micro: the [`PrefPair`] type, and loaders that normalise the shapes public
//! preference sets come in (HelpSteer2, RPR, UltraFeedback, PKU-SafeRLHF, HH-RLHF, generic
//! `prompt/chosen/rejected`; as JSONL, gzip, Parquet or Arrow IPC) into it.
//!
//! The principal type is [`PrefPair`]: a prompt, the chosen and the rejected response, and
//! optionally the attribute (user, criterion) and context the preference was given under.
//!
//! ```
//! use micro_data::{PrefPair, Prompt};
//! let pair = PrefPair::new("What is 2+2?", "4", "5");
//! assert_eq!(pair.prompt, Prompt::Text("What is 2+2?".into()));
//! assert_eq!(pair.group(), "all");
//! assert!(pair.is_train());
//! // A user known only by id is evaluated as a group of their own.
//! let by_id = PrefPair { user_id: Some("rater-7".into()), ..pair.clone() };
//! assert_eq!(by_id.group(), "rater-7");
//! ```
//!
//! Loading a dataset file and summarising it:
//!
//! ```
//! use micro_data::{load, DataStats, Format};
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("rpr-test.jsonl");
//! let row = serde_json::json!({"prompt": "Tell a joke", "response_a": "A pun.", "response_b": "A limerick.",
//!     "criteria_x": "Is short", "category_x": "Clarity & Conciseness",
//!     "criteria_y": "Rhymes", "category_y": "Linguistic Creativity"});
//! std::fs::write(&path, format!("{row}\n"))?; // JSONL: one object per line
//! let pairs = load(&path, Format::Auto)?; // sniffed as RPR: two opposite pairs
//! assert_eq!(pairs.len(), 2);
//! assert_eq!(pairs[1].chosen, "A limerick.");
//! assert_eq!(pairs[1].context.as_deref(), Some("Rhymes"));
//! assert!(!pairs[0].is_train()); // "test" in the file name
//! let stats = DataStats::compute(&pairs);
//! assert_eq!(stats.duplicates.reversed, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod convert;
pub mod error;
pub mod fields;
pub mod formats;
pub mod hh_users;
pub mod home;
pub mod jsonl;
pub mod pair;
pub mod record;
pub mod split;
pub mod stats;
pub mod table;

pub use error::{DataError, Result, UnknownValue};
pub use formats::{load, load_many, load_with, Format, LoadOptions, LoadReport, Loaded, PkuSelect};
pub use pair::{Message, PrefPair, Prompt, Split};
pub use split::{split_by_prompt, PromptSplit};
pub use stats::DataStats;
pub mod builtin;
