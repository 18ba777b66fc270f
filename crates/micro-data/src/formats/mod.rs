//! Loaders for the on-disk shapes of public preference data, each normalising into [`PrefPair`].
//!
//! One entry point, [`load`] (or [`load_with`] for options and a report of what was skipped),
//! reads JSONL (plain or gzip), Parquet or Arrow IPC files (see [`crate::record`]) and hands
//! each row, as a JSON object, to the adapter for its [`Format`].
//!
//! [`Format::Auto`] looks at the fields of the first record, in this order:
//! 1. `criteria_x` and `response_a` → [`Format::Rpr`]
//! 2. `completions` → [`Format::UltraFeedback`]
//! 3. `response_0` and `safer_response_id` or `better_response_id` → [`Format::PkuSafeRlhf`]
//! 4. `response` and `helpfulness` → [`Format::HelpSteer2`]
//! 5. `chosen` a message list and `score_chosen` → [`Format::UltraFeedbackBinarized`]
//! 6. `chosen` a string holding `"\n\nAssistant:"` and no `prompt` → [`Format::HhRlhf`]
//! 7. `chosen_instruction` and `rejected_instruction` → [`Format::Prometheus`]
//! 8. `response1`, `response2` and `annotator1` → [`Format::PandaLm`]
//! 9. `system_output` and a `scores` object → [`Format::Ratings`] (UniEval's layout)
//! 10. `chosen` and `rejected` → [`Format::Native`]
//!
//! Anything else is an error listing the fields found.
//!
//! Small sets without a usable split (the three human-label sets above ship as one file) can be
//! split by prompt at load time: [`LoadOptions::test_fraction`] and [`LoadOptions::seed`]
//! (see [`crate::split`]).

pub mod helpsteer2;
pub mod hh;
pub mod native;
pub mod pandalm;
pub mod pku;
pub mod prometheus;
pub mod ratings;
pub mod rpr;
pub mod ultrafeedback;
pub mod ultrafeedback_binarized;

use crate::error::{DataError, Result, UnknownValue};
use crate::fields::Row;
use crate::pair::{PrefPair, Split};
use crate::record::{first_record, records, Record};
use crate::split::{check_fraction, split_by_prompt};
use ratings::RatingsLayout;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The shape of a dataset on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// [`PrefPair`] field names, or generic `prompt`/`chosen`/`rejected` (also TRL message lists).
    Native,
    /// `nvidia/HelpSteer2` rating rows: `prompt`, `response`, five 0–4 ratings.
    HelpSteer2,
    /// `microsoft/rpr`: two responses, each preferred under its own criterion.
    Rpr,
    /// `openbmb/UltraFeedback`: completions with per-aspect ratings.
    UltraFeedback,
    /// `ultrafeedback_binarized`: `chosen`/`rejected` message lists with scores.
    UltraFeedbackBinarized,
    /// `PKU-Alignment/PKU-SafeRLHF`: two responses, better and safer ids.
    PkuSafeRlhf,
    /// `Anthropic/hh-rlhf`: full `chosen`/`rejected` transcripts.
    HhRlhf,
    /// Rated responses with named rating columns (or a nested object such as UniEval's
    /// `scores`), binarised per attribute by HelpSteer2's rule (see [`ratings`]).
    Ratings,
    /// Two filled-in Prometheus grading templates per row (BIG-bench HHH alignment).
    Prometheus,
    /// PandaLM's human test set: two responses and three annotators' labels.
    PandaLm,
    /// Decide from the first record's fields (rules in the module docs).
    #[default]
    Auto,
}

impl Format {
    /// Every format, by its command-line name.
    pub const ALL: [Format; 11] = [
        Format::Auto,
        Format::Native,
        Format::HelpSteer2,
        Format::Rpr,
        Format::UltraFeedback,
        Format::UltraFeedbackBinarized,
        Format::PkuSafeRlhf,
        Format::HhRlhf,
        Format::Ratings,
        Format::Prometheus,
        Format::PandaLm,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::HelpSteer2 => "helpsteer2",
            Format::Rpr => "rpr",
            Format::UltraFeedback => "ultrafeedback",
            Format::UltraFeedbackBinarized => "ultrafeedback-binarized",
            Format::PkuSafeRlhf => "pku-saferlhf",
            Format::HhRlhf => "hh-rlhf",
            Format::Ratings => "ratings",
            Format::Prometheus => "prometheus",
            Format::PandaLm => "pandalm",
            Format::Auto => "auto",
        }
    }

    /// All command-line names, comma-separated, for help and error messages.
    pub fn names() -> String {
        Format::ALL
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = UnknownValue;

    /// Names are case-insensitive; `_` reads as `-`, and short aliases (`hh`, `pku`, `uf`,
    /// `generic`) are accepted.
    fn from_str(s: &str) -> std::result::Result<Self, UnknownValue> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        let alias = match norm.as_str() {
            "generic" | "trl" => Some(Format::Native),
            "helpsteer" | "hs2" => Some(Format::HelpSteer2),
            "uf" => Some(Format::UltraFeedback),
            "uf-binarized" | "ultrafeedback-binary" => Some(Format::UltraFeedbackBinarized),
            "pku" | "pku-safe-rlhf" | "saferlhf" => Some(Format::PkuSafeRlhf),
            "hh" | "hhrlhf" | "anthropic-hh" => Some(Format::HhRlhf),
            "unieval" | "rated" => Some(Format::Ratings),
            "hhh" | "hhh-alignment" => Some(Format::Prometheus),
            "panda-lm" | "panda" => Some(Format::PandaLm),
            _ => None,
        };
        alias
            .or_else(|| Format::ALL.into_iter().find(|f| f.name() == norm))
            .ok_or_else(|| UnknownValue::new("format", s, format!("one of {}", Format::names())))
    }
}

/// Which pairs to take from PKU-SafeRLHF rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PkuSelect {
    /// Both pairs per row (attributes `harmlessness` and `helpfulness`).
    #[default]
    Both,
    /// Only the `safer_response_id` pair (MiCRo's choice).
    Harmlessness,
    /// Only the `better_response_id` pair.
    Helpfulness,
}

impl std::str::FromStr for PkuSelect {
    type Err = UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, UnknownValue> {
        match s.trim().to_ascii_lowercase().as_str() {
            "both" | "all" => Ok(PkuSelect::Both),
            "harmlessness" | "safety" | "safer" => Ok(PkuSelect::Harmlessness),
            "helpfulness" | "better" => Ok(PkuSelect::Helpfulness),
            _ => Err(UnknownValue::new(
                "PKU selection",
                s,
                "both, harmlessness or helpfulness",
            )),
        }
    }
}

/// Options for [`load_with`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub format: Format,
    /// Overrides the split for every pair; when `None` it comes from the record (native) or
    /// from the file name (see [`split_from_path`]).
    pub split: Option<Split>,
    /// Splits by prompt instead: this fraction of the distinct prompts, drawn with
    /// [`LoadOptions::seed`], goes to test, the rest to train (see [`crate::split`]).
    /// Cannot be combined with `split`.
    pub test_fraction: Option<f64>,
    /// Seed of the split by prompt.
    pub seed: u64,
    pub pku: PkuSelect,
    /// PKU-SafeRLHF: skip harmlessness pairs where both responses are safe (the MiCRo fork's filter).
    pub pku_unsafe_only: bool,
    /// [`Format::Ratings`]: where the fields are; `None` takes UniEval's layout when the first
    /// record has its shape, else asks for the fields to be named.
    pub ratings: Option<RatingsLayout>,
    /// [`Format::Ratings`] and [`Format::HelpSteer2`]: the minimum rating gap for a pair,
    /// instead of the layout's (HelpSteer2 1, UniEval 0.5).
    pub min_gap: Option<f64>,
    /// Context sentences by attribute, ahead of the built-in ones ([`Format::Ratings`],
    /// [`Format::HelpSteer2`]).
    pub contexts: BTreeMap<String, String>,
}

/// What a load read, produced and skipped (skips are counted by reason, never silent).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LoadReport {
    pub path: String,
    /// The format used (after sniffing, for `auto`).
    pub format: String,
    pub records: usize,
    pub pairs: usize,
    pub skipped: BTreeMap<String, usize>,
    pub notes: Vec<String>,
}

impl LoadReport {
    /// Counts one skipped row or pair under `reason`.
    pub fn skip(&mut self, reason: &str) {
        // Called per pair: allocate the key only the first time a reason is seen.
        match self.skipped.get_mut(reason) {
            Some(n) => *n += 1,
            None => {
                self.skipped.insert(reason.to_string(), 1);
            }
        }
    }

    pub fn skipped_total(&self) -> usize {
        self.skipped.values().sum()
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} records ({}) -> {} pairs",
            self.path, self.records, self.format, self.pairs
        )?;
        for (reason, n) in &self.skipped {
            write!(f, "; skipped {n} ({reason})")?;
        }
        for note in &self.notes {
            write!(f, "; {note}")?;
        }
        Ok(())
    }
}

/// Pairs and the report of one load.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    pub pairs: Vec<PrefPair>,
    pub report: LoadReport,
}

/// Reads `path` in `format`, with default options.
///
/// ```no_run
/// use micro_data::formats::{load, Format};
/// let pairs = load("harmless-base-test.jsonl.gz".as_ref(), Format::HhRlhf)?;
/// println!("{} pairs", pairs.len());
/// # Ok::<(), micro_data::DataError>(())
/// ```
pub fn load(path: &Path, format: Format) -> Result<Vec<PrefPair>> {
    load_with(
        path,
        &LoadOptions {
            format,
            ..Default::default()
        },
    )
    .map(|l| l.pairs)
}

/// Reads `path` with `options`; an input that yields no pair at all is an error.
pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Loaded> {
    if let Some(fraction) = options.test_fraction {
        check_fraction(fraction)?;
        if options.split.is_some() {
            return Err(DataError::SplitAndFraction);
        }
    }
    let format = match options.format {
        Format::Auto => sniff(path)?,
        f => f,
    };
    let mut ctx = LoadCtx {
        path,
        options,
        split: options.split.or_else(|| split_from_path(path)),
        report: LoadReport {
            path: path.display().to_string(),
            format: format.name().into(),
            ..Default::default()
        },
        split_done: false,
    };
    let mut pairs = match format {
        Format::Native => native::load(&mut ctx)?,
        Format::HelpSteer2 => helpsteer2::load(&mut ctx)?,
        Format::Rpr => rpr::load(&mut ctx)?,
        Format::UltraFeedback => ultrafeedback::load(&mut ctx)?,
        Format::UltraFeedbackBinarized => ultrafeedback_binarized::load(&mut ctx)?,
        Format::PkuSafeRlhf => pku::load(&mut ctx)?,
        Format::HhRlhf => hh::load(&mut ctx)?,
        Format::Ratings => {
            let layout = ratings_layout(path, options)?;
            ratings::load(&mut ctx, &layout)?
        }
        Format::Prometheus => prometheus::load(&mut ctx)?,
        Format::PandaLm => pandalm::load(&mut ctx)?,
        Format::Auto => unreachable!("sniff returns a concrete format"),
    };
    if let (Some(fraction), false) = (options.test_fraction, ctx.split_done) {
        let test = split_by_prompt(&mut pairs, fraction, options.seed);
        ctx.report
            .notes
            .push(split_note(test, fraction, options.seed));
    }
    ctx.report.pairs = pairs.len();
    if pairs.is_empty() {
        let hint = if ctx.report.records == 0 {
            "the file holds no records; is it empty?".to_string()
        } else {
            let skipped: Vec<String> = ctx
                .report
                .skipped
                .iter()
                .map(|(r, n)| format!("{n} {r}"))
                .collect();
            format!(
                "{} records read as {format} gave no pair; skipped: {}; check --format",
                ctx.report.records,
                if skipped.is_empty() {
                    "none".to_string()
                } else {
                    skipped.join(", ")
                }
            )
        };
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            hint,
        });
    }
    Ok(Loaded {
        pairs,
        report: ctx.report,
    })
}

/// Loads several files with the same options, concatenating pairs and keeping one report per file.
pub fn load_many(
    paths: &[impl AsRef<Path>],
    options: &LoadOptions,
) -> Result<(Vec<PrefPair>, Vec<LoadReport>)> {
    let mut pairs = Vec::new();
    let mut reports = Vec::new();
    for path in paths {
        let loaded = load_with(path.as_ref(), options)?;
        pairs.extend(loaded.pairs);
        reports.push(loaded.report);
    }
    Ok((pairs, reports))
}

/// The ratings layout to use: the option's, else UniEval's when the first record has its shape.
fn ratings_layout(path: &Path, options: &LoadOptions) -> Result<RatingsLayout> {
    match &options.ratings {
        Some(layout) => Ok(layout.clone()),
        None => {
            let layout = RatingsLayout::for_file(path)?;
            let empty = first_record(path)?.is_none(); // reported by the loader
            if layout.attributes.is_empty() && layout.ratings.is_none() && !empty {
                return Err(DataError::RatingsLayout {
                    path: path.to_path_buf(),
                    prompt: true,
                });
            }
            Ok(layout)
        }
    }
}

/// The report's note on a split by prompt.
pub fn split_note(test_prompts: usize, fraction: f64, seed: u64) -> String {
    format!("split by prompt: {test_prompts} prompts to test (fraction {fraction}, seed {seed})")
}

/// What an adapter needs while reading one file.
pub struct LoadCtx<'a> {
    pub path: &'a Path,
    pub options: &'a LoadOptions,
    /// The split for pairs without one of their own: the option, else the file name's.
    pub split: Option<Split>,
    pub report: LoadReport,
    /// Set by an adapter that already split by prompt ([`LoadOptions::test_fraction`]), because
    /// its rule depends on the split (HelpSteer2's train-only drop).
    pub split_done: bool,
}

impl LoadCtx<'_> {
    /// Calls `f` on every record of the file, counting them; stops at the first error.
    pub fn for_each(
        &mut self,
        mut f: impl FnMut(&mut LoadReport, Record) -> Result<()>,
    ) -> Result<()> {
        let mut all = records(self.path)?;
        for record in all.by_ref() {
            let record = record?;
            self.report.records += 1;
            f(&mut self.report, record)?;
        }
        if all.non_finite > 0 {
            self.report.notes.push(format!(
                "{} bare NaN/Infinity values read as missing (null)",
                all.non_finite
            ));
        }
        Ok(())
    }
}

/// The file name without data extensions (`harmless-base-test.jsonl.gz` -> `harmless-base-test`).
pub fn file_stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut stem = name.as_str();
    for ext in [".gz", ".jsonl", ".json", ".parquet", ".arrow"] {
        stem = stem.strip_suffix(ext).unwrap_or(stem);
    }
    stem.to_string()
}

/// The split a file name implies: a word `test`, `validation`, `val`, `dev` or `eval` means
/// test, `train` means train (words are split at any non-alphanumeric character, so
/// `harmless-base-test.jsonl.gz` and `test-00000-of-00001.parquet` are test). When the file
/// name says nothing, the parent folder's name is tried.
pub fn split_from_path(path: &Path) -> Option<Split> {
    let words_split = |name: &str| {
        let lower = name.to_ascii_lowercase();
        let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).collect();
        if words
            .iter()
            .any(|w| matches!(*w, "test" | "validation" | "val" | "dev" | "eval"))
        {
            Some(Split::Test)
        } else if words.contains(&"train") {
            Some(Split::Train)
        } else {
            None
        }
    };
    let name = path.file_name()?.to_string_lossy();
    words_split(&name).or_else(|| words_split(&path.parent()?.file_name()?.to_string_lossy()))
}

/// Decides the format of `path` from its first record (rules in the module docs).
pub fn sniff(path: &Path) -> Result<Format> {
    let Some(Record { line, value }) = first_record(path)? else {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            hint: "the file holds no records; is it empty?".into(),
        });
    };
    let row = Row::new(&value, path, line, "")?;
    let has = |k: &str| row.has(k);
    let chosen = row.obj.get("chosen");
    let format = if has("criteria_x") && has("response_a") {
        Format::Rpr
    } else if has("completions") {
        Format::UltraFeedback
    } else if has("response_0") && (has("safer_response_id") || has("better_response_id")) {
        Format::PkuSafeRlhf
    } else if has("response") && has("helpfulness") {
        Format::HelpSteer2
    } else if chosen.is_some_and(|c| c.is_array()) && has("score_chosen") {
        Format::UltraFeedbackBinarized
    } else if !has("prompt")
        && chosen
            .and_then(|c| c.as_str())
            .is_some_and(|c| c.contains(hh::ASSISTANT))
    {
        Format::HhRlhf
    } else if has("chosen_instruction") && has("rejected_instruction") {
        Format::Prometheus
    } else if has("response1") && has("response2") && row.obj.contains_key("annotator1") {
        Format::PandaLm
    } else if RatingsLayout::is_unieval(row.obj) {
        Format::Ratings
    } else if has("chosen") && has("rejected") {
        Format::Native
    } else {
        let fields: Vec<&str> = row.obj.keys().map(String::as_str).collect();
        return Err(DataError::invalid(
            path,
            Some(line),
            None,
            format!(
                "cannot tell the dataset format from the fields [{}]; pass --format (one of {})",
                fields.join(", "),
                Format::names()
            ),
        ));
    };
    Ok(format)
}
