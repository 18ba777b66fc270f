//! What `micro serve` is started with beyond `Limits` and
//! `BatchOptions`: the state store's URL, the backbone for text
//! requests (loaded the way the model's training cache was embedded), and the parsers of the
//! flags whose values are durations (with the `clap` feature these types are the flags).

use crate::store::{self, SqliteSync, StateStore};
#[cfg(feature = "text")]
use micro_embed::{Backbone, BackboneOptions, ContextMode, DeviceKind, PromptText, ResponseText};
#[cfg(feature = "text")]
use micro_model::MixtureModel;
#[cfg(feature = "text")]
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Where users' state and API keys live.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct StoreOptions {
    /// State store: a SQLite file (`PATH`, or `sqlite:PATH?sync=full&busy_timeout_ms=5000`
    /// with options) or a PostgreSQL URL (`postgres://user@host/db`, shared by several
    /// replicas).
    #[cfg_attr(
        feature = "clap",
        arg(long, env = "MICRO_DB", default_value = "micro-state.sqlite")
    )]
    pub db: String,
    /// SQLite commit durability: `normal` (WAL; survives a killed process, a power loss may
    /// drop the last commits) or `full` (fsync every commit); default: the URL's `sync=`,
    /// else normal.
    #[cfg_attr(feature = "clap", arg(long))]
    pub sqlite_sync: Option<SqliteSync>,
}

impl StoreOptions {
    /// The URL to open: `db` with `sqlite_sync` in it, when given (it overrides the URL's own
    /// `sync=`).
    pub fn url(&self) -> String {
        self.sqlite_sync
            .map_or_else(|| self.db.clone(), |s| store::with_sqlite_sync(&self.db, s))
    }

    /// `db` without its password, for logs.
    pub fn redacted(&self) -> String {
        redact(&self.db)
    }

    /// Opens the store; the error names the (redacted) URL.
    pub async fn open(&self) -> Result<Arc<dyn StateStore>, OpenError> {
        store::open(&self.url()).await.map_err(|source| OpenError {
            url: self.redacted(),
            source,
        })
    }
}

/// A store that did not open, with its URL (password hidden).
#[derive(Debug, thiserror::Error)]
#[error("cannot open the state store {url}: {source}")]
pub struct OpenError {
    pub url: String,
    #[source]
    pub source: store::StoreError,
}

/// A flag value that does not parse (the flags exist with the `clap` feature).
#[cfg_attr(not(feature = "clap"), allow(dead_code))]
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("{0:?}: give a whole number of milliseconds")]
    Millis(String),
    #[error("{0:?}: give 0 to 1000 milliseconds")]
    BatchWait(String),
    #[error("{0:?}: give a whole number")]
    Count(String),
}

/// The URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

/// The backbone for text requests: the folder `dir` loaded with the text forms the model's
/// training cache recorded, so that serving computes the same vectors for the same prompt and
/// response (a model that records none predates them: micro then embedded whole transcripts).
/// The second value is a warning when the folder is not the backbone the model was trained on.
#[cfg(feature = "text")]
pub fn backbone_for(
    model: &MixtureModel,
    dir: &Path,
    context: ContextMode,
    device: DeviceKind,
) -> micro_embed::Result<(Box<dyn Backbone>, Option<String>)> {
    let opts = recipe_options(model, context, device);
    let loaded = micro_embed::load_backbone(dir, &opts)?;
    let (want, got) = (&model.config().backbone.name, loaded.info().name);
    let warning = (!want.is_empty() && *want != got)
        .then(|| format!("the model was trained on backbone `{want}`, serving with `{got}`"));
    Ok((loaded, warning))
}

/// The backbone options of [`backbone_for`].
#[cfg(feature = "text")]
fn recipe_options(
    model: &MixtureModel,
    context: ContextMode,
    device: DeviceKind,
) -> BackboneOptions {
    let recipe = &model.config().recipe;
    BackboneOptions {
        context,
        device,
        response_text: parse_or(&recipe.response_text, ResponseText::Transcript),
        prompt_text: parse_or(&recipe.prompt_text, PromptText::Transcript),
        ..Default::default()
    }
}

/// A recorded option's value, or `fallback` when absent or not one this build knows.
#[cfg(feature = "text")]
fn parse_or<T: std::str::FromStr>(recorded: &Option<String>, fallback: T) -> T {
    recorded
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or(fallback)
}

/// A whole number of milliseconds (`--request-timeout-ms`, `--header-timeout-ms`).
#[cfg_attr(not(feature = "clap"), allow(dead_code))]
pub(crate) fn parse_millis(s: &str) -> Result<Duration, FlagError> {
    s.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| FlagError::Millis(s.to_owned()))
}

/// `--batch-wait-ms`: 0 to 1000 milliseconds, fractions allowed.
#[cfg_attr(not(all(feature = "clap", feature = "text")), allow(dead_code))]
pub(crate) fn parse_batch_wait(s: &str) -> Result<Duration, FlagError> {
    s.parse::<f64>()
        .ok()
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1e3).ok())
        .filter(|w| *w <= Duration::from_secs(1))
        .ok_or_else(|| FlagError::BatchWait(s.to_owned()))
}

/// `--batch-workers`: 0 counts as 1 (a batcher needs a worker).
#[cfg_attr(not(all(feature = "clap", feature = "text")), allow(dead_code))]
pub(crate) fn parse_workers(s: &str) -> Result<usize, FlagError> {
    s.parse::<usize>()
        .map(|n| n.max(1))
        .map_err(|_| FlagError::Count(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://micro:s3cret@db.example:5432/rewards"),
            "postgres://micro:***@db.example:5432/rewards"
        );
        assert_eq!(redact("postgres://micro@db/x"), "postgres://micro@db/x");
        assert_eq!(redact("state.sqlite"), "state.sqlite");
        assert_eq!(redact("sqlite:a@b.sqlite"), "sqlite:a@b.sqlite");
    }

    #[test]
    fn the_sync_flag_overrides_the_url() {
        let o = StoreOptions {
            db: "state.sqlite".into(),
            sqlite_sync: None,
        };
        assert_eq!(o.url(), "state.sqlite");
        let full = StoreOptions {
            sqlite_sync: Some(SqliteSync::Full),
            ..o
        };
        assert_eq!(
            full.url(),
            store::with_sqlite_sync("state.sqlite", SqliteSync::Full)
        );
        assert!(full.url().contains("sync=full"), "{}", full.url());
    }

    #[test]
    fn recorded_options_fall_back_when_absent_or_unknown() {
        assert_eq!(
            parse_or(&Some("last-turn".into()), ResponseText::Transcript),
            ResponseText::LastTurn
        );
        assert_eq!(
            parse_or(&None, PromptText::Transcript),
            PromptText::Transcript
        );
        assert_eq!(
            parse_or(&Some("from-the-future".into()), PromptText::Transcript),
            PromptText::Transcript
        );
    }

    #[test]
    fn flag_values_parse_into_durations() {
        assert_eq!(parse_millis("30000"), Ok(Duration::from_secs(30)));
        assert!(parse_millis("-1").is_err());
        assert_eq!(parse_batch_wait("2"), Ok(Duration::from_millis(2)));
        assert_eq!(parse_batch_wait("0.5"), Ok(Duration::from_micros(500)));
        assert_eq!(
            parse_batch_wait("1001").unwrap_err().to_string(),
            "\"1001\": give 0 to 1000 milliseconds"
        );
        assert!(parse_batch_wait("-1").is_err());
        assert_eq!(parse_workers("0"), Ok(1));
        assert_eq!(parse_workers("3"), Ok(3));
    }
}

#[cfg(all(test, feature = "clap", feature = "text"))]
mod flag_tests {
    use crate::{BatchOptions, Limits};
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        limits: Limits,
        #[command(flatten)]
        batching: BatchOptions,
    }

    #[test]
    fn the_flag_defaults_are_the_defaults() {
        let f = Flags::parse_from(["serve"]);
        assert_eq!(f.limits, Limits::default());
        assert_eq!(f.batching, BatchOptions::default());
        let f = Flags::parse_from([
            "serve",
            "--request-timeout-ms",
            "1500",
            "--batch-wait-ms",
            "0",
        ]);
        assert_eq!(f.limits.timeout, std::time::Duration::from_millis(1500));
        assert_eq!(f.batching.max_wait, std::time::Duration::ZERO);
    }
}
