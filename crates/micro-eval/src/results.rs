//! `results.json`: everything a report is drawn from, in one file.
//!
//! ```json
//! {"format_version": 1, "title": "...", "source": "cache path",
//!  "methods": [EvalReport, ...],      // one per method, same split
//!  "sweep": SweepReport | null,        // the budget study, when run
//!  "notes": ["..."]}
//! ```
//! The per-head matrix and the mean router weights per attribute live in each EvalReport
//! (`per_head`, `mean_weights`). [`Results::load`] also accepts a bare EvalReport or SweepReport
//! (what `micro eval --json` writes for one model), or a folder of such files.

use crate::error::{EvalError, Result};
use crate::evaluate::EvalReport;
use crate::sweep::SweepReport;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const RESULTS_FILE: &str = "results.json";
pub const RESULTS_FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub format_version: u32,
    #[serde(default)]
    pub title: String,
    /// What was evaluated (e.g. the cache folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default)]
    pub methods: Vec<EvalReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepReport>,
    /// Stage 1 figures over several training seeds, when more than one was trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<crate::seeds::SeedSummary>,
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Default for Results {
    fn default() -> Self {
        Results {
            format_version: RESULTS_FORMAT_VERSION,
            title: String::new(),
            source: None,
            methods: vec![],
            sweep: None,
            seeds: None,
            notes: vec![],
        }
    }
}

impl Results {
    /// Writes pretty JSON to `path` (a file name, usually `results.json`).
    pub fn save(&self, path: &Path) -> Result<()> {
        write_json(path, self)
    }

    /// Reads a results file, a bare EvalReport/SweepReport, or a folder: its `results.json`
    /// when present, otherwise every `*.json` in it merged (sorted by name).
    pub fn load(path: &Path) -> Result<Results> {
        if path.is_dir() {
            let main = path.join(RESULTS_FILE);
            if main.is_file() {
                return Self::load_file(&main);
            }
            let mut files: Vec<_> = std::fs::read_dir(path)
                .map_err(|e| EvalError::io(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(EvalError::invalid(path, "no results.json and no *.json files: run `micro eval --json FILE` or `micro demo` first"));
            }
            let mut all = Results::default();
            for f in files {
                all.merge(Self::load_file(&f)?);
            }
            return Ok(all);
        }
        Self::load_file(path)
    }

    fn load_file(path: &Path) -> Result<Results> {
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| EvalError::invalid(path, format!("not valid JSON: {e}")))?;
        let parse_err = |what: &str, e: serde_json::Error| {
            EvalError::invalid(path, format!("looks like {what} but does not parse: {e}"))
        };
        if v.get("methods").is_some() || v.get("format_version").is_some() {
            let r: Results =
                serde_json::from_value(v).map_err(|e| parse_err("a results file", e))?;
            if r.format_version > RESULTS_FORMAT_VERSION {
                return Err(EvalError::invalid(path, format!("format_version {} is newer than this micro reads ({RESULTS_FORMAT_VERSION}): upgrade micro", r.format_version)));
            }
            Ok(r)
        } else if v.get("per_head").is_some() {
            let r: EvalReport =
                serde_json::from_value(v).map_err(|e| parse_err("an evaluation report", e))?;
            Ok(Results {
                methods: vec![r],
                ..Default::default()
            })
        } else if v.get("budgets").is_some() && v.get("rows").is_some() {
            let s: SweepReport =
                serde_json::from_value(v).map_err(|e| parse_err("a budget sweep", e))?;
            Ok(Results {
                sweep: Some(s),
                ..Default::default()
            })
        } else {
            Err(EvalError::invalid(path, "not a micro results file (expected what `micro eval --json` or `micro demo` writes)"))
        }
    }

    /// Adds another file's reports; the first sweep and title seen are kept.
    pub fn merge(&mut self, other: Results) {
        self.methods.extend(other.methods);
        if self.sweep.is_none() {
            self.sweep = other.sweep;
        }
        if self.seeds.is_none() {
            self.seeds = other.seeds;
        }
        if self.title.is_empty() {
            self.title = other.title;
        }
        if self.source.is_none() {
            self.source = other.source;
        }
        self.notes.extend(other.notes);
    }

    /// The report whose heads and router the figures show: the first MiCRo model with several
    /// heads, else the first multi-head model.
    pub fn heads_report(&self) -> Option<&EvalReport> {
        let multi = || self.methods.iter().filter(|r| r.k > 1);
        multi()
            .find(|r| r.model_method == "micro")
            .or_else(|| multi().next())
    }
}

/// Writes any serialisable value as pretty JSON, creating the parent folder.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
    }
    let text =
        serde_json::to_string_pretty(value).map_err(|e| EvalError::invalid(path, e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| EvalError::io(path, e))
}
