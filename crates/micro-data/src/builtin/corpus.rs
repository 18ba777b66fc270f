//! Reading the chatterbot-corpus topic files into question/answer exchanges.
//!
//! Each file holds `categories:` (the first names the topic) and `conversations:`, a list of
//! turn lists. The corpus is not uniform: most entries are `[question, answer]`, but some are
//! longer lists whose later turns are alternative answers (`emotion.yml`) or a continuing
//! dialogue (`conversations.yml`, `health.yml`), and one `trivia.yml` entry is a bare string.
//! Only the first exchange of each list is certain to be a question and its answer, so that is
//! all we keep; entries without two non-empty scalar turns are skipped and counted.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::{DataError, Result};

/// The hint every "corpus missing" error carries.
pub const FETCH_HINT: &str =
    "run `scripts/fetch-assets.sh corpus` to fetch chatterbot-corpus 1.3.3";

/// One question with one of its answers, from one topic file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Exchange {
    pub topic: String,
    pub question: String,
    pub answer: String,
}

/// The exchanges of a corpus folder, deduplicated and in a stable order.
#[derive(Clone, Debug, Default)]
pub struct Corpus {
    pub exchanges: Vec<Exchange>,
    /// Conversation entries that held no usable question/answer (bare strings, empty turns).
    pub skipped: usize,
    /// The files read, sorted by name.
    pub files: Vec<PathBuf>,
}

/// `$MICRO_HOME/corpus/chatterbot/english`, with `MICRO_HOME` defaulting to `~/.cache/micro`.
pub fn default_corpus_dir() -> Result<PathBuf> {
    let home = crate::home::micro_home().ok_or(DataError::NoCorpusHome)?;
    Ok(home.join("corpus").join("chatterbot").join("english"))
}

/// Reads every `*.yml` / `*.yaml` file of `dir`.
pub fn load_corpus(dir: &Path) -> Result<Corpus> {
    let files = yaml_files(dir)?;
    let mut corpus = Corpus {
        files: files.clone(),
        ..Default::default()
    };
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| DataError::io(file, e))?;
        let (exchanges, skipped) = parse_topic_file(file, &text)?;
        corpus.exchanges.extend(exchanges);
        corpus.skipped += skipped;
    }
    corpus.exchanges.sort();
    corpus.exchanges.dedup();
    if corpus.exchanges.is_empty() {
        return Err(DataError::Empty {
            path: dir.to_path_buf(),
            hint: FETCH_HINT.into(),
        });
    }
    Ok(corpus)
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|error| DataError::NoCorpus {
        path: dir.to_path_buf(),
        error,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|x| x.to_str()), Some("yml" | "yaml"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DataError::EmptyCorpus {
            path: dir.to_path_buf(),
        });
    }
    Ok(files)
}

/// Parses one topic file; returns its exchanges and the number of entries skipped.
pub fn parse_topic_file(path: &Path, text: &str) -> Result<(Vec<Exchange>, usize)> {
    let doc: Value = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        DataError::invalid(path, line, None, format!("not valid YAML: {e}"))
    })?;
    let topic = topic_name(path, &doc);
    let conversations = match doc.get("conversations") {
        Some(Value::Sequence(c)) => c,
        Some(_) => {
            return Err(DataError::invalid(
                path,
                None,
                Some("conversations"),
                "expected a list of conversations",
            ))
        }
        None => {
            return Err(DataError::invalid(
                path,
                None,
                Some("conversations"),
                "missing; not a chatterbot topic file",
            ))
        }
    };
    let mut out = Vec::new();
    let mut skipped = 0;
    for entry in conversations {
        match first_exchange(entry) {
            Some((question, answer)) => out.push(Exchange {
                topic: topic.clone(),
                question,
                answer,
            }),
            None => skipped += 1,
        }
    }
    Ok((out, skipped))
}

/// The first category, or the file stem when the file names none.
fn topic_name(path: &Path, doc: &Value) -> String {
    let first = match doc.get("categories") {
        Some(Value::Sequence(c)) => c.first().and_then(scalar_text),
        Some(v) => scalar_text(v),
        None => None,
    };
    first.unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

fn first_exchange(entry: &Value) -> Option<(String, String)> {
    let turns = entry.as_sequence()?;
    let question = scalar_text(turns.first()?)?;
    let answer = scalar_text(turns.get(1)?)?;
    Some((question, answer))
}

/// A scalar as whitespace-normalised text (YAML folds lines into double spaces); numbers and
/// booleans become their text, anything else (null, lists, maps, empty text) is `None`.
fn scalar_text(v: &Value) -> Option<String> {
    let raw = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    let text = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then_some(text)
}
