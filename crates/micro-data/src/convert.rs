//! `micro data convert` as a recipe: dataset files in, native pairs out, with the ratings
//! fields and context sentences the user named.

use crate::formats::ratings::RatingsLayout;
use crate::formats::{load_with, LoadOptions, LoadReport};
use crate::{jsonl, DataError, DataStats, PrefPair, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Fields of rated-response files named by the user, put into the file's own layout.
/// With the `clap` feature these are `micro data convert`'s `--*-field` flags. In
/// `turn_separator`, `\n` (two characters) stands for a newline.
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct LayoutOverrides {
    /// ratings: the prompt field (default `prompt`; UniEval files: `source`).
    #[cfg_attr(
        feature = "clap",
        arg(long = "prompt-field", value_name = "PROMPT_FIELD")
    )]
    pub prompt: Option<String>,
    /// ratings: the response field (default `response`; UniEval files: `system_output`).
    #[cfg_attr(
        feature = "clap",
        arg(long = "response-field", value_name = "RESPONSE_FIELD")
    )]
    pub response: Option<String>,
    /// ratings: a nested object holding the ratings (UniEval files: `scores`).
    #[cfg_attr(
        feature = "clap",
        arg(long = "ratings-field", value_name = "RATINGS_FIELD")
    )]
    pub ratings: Option<String>,
    /// ratings: the rated attributes, comma-separated (columns, or keys of --ratings-field;
    /// default: every key of --ratings-field, UniEval's `overall` left out).
    #[cfg_attr(feature = "clap", arg(long, value_delimiter = ','))]
    pub attributes: Vec<String>,
    /// ratings: a field with knowledge for the reply, put first in the prompt as a system turn
    /// (UniEval files: `context`).
    #[cfg_attr(
        feature = "clap",
        arg(long = "knowledge-field", value_name = "KNOWLEDGE_FIELD")
    )]
    pub knowledge: Option<String>,
    /// ratings: split a text prompt into dialogue turns at this separator (`\n` for a newline;
    /// UniEval files: a newline).
    #[cfg_attr(feature = "clap", arg(long))]
    pub turn_separator: Option<String>,
}

impl LayoutOverrides {
    /// Whether any field is named.
    pub fn names_fields(&self) -> bool {
        self.prompt.is_some()
            || self.response.is_some()
            || self.ratings.is_some()
            || !self.attributes.is_empty()
            || self.knowledge.is_some()
            || self.turn_separator.is_some()
    }

    /// The layout for `input`: the file's own (UniEval's or the generic one) with the named
    /// fields put in; `None` when no field is named (the loader then decides).
    pub fn layout(&self, input: &Path) -> Result<Option<RatingsLayout>> {
        if !self.names_fields() {
            return Ok(None);
        }
        Ok(Some(self.apply(RatingsLayout::for_file(input)?)))
    }

    /// `layout` with the named fields put in.
    pub fn apply(&self, mut layout: RatingsLayout) -> RatingsLayout {
        if let Some(v) = &self.prompt {
            layout.prompt = v.clone();
        }
        if let Some(v) = &self.response {
            layout.response = v.clone();
        }
        if self.ratings.is_some() {
            layout.ratings = self.ratings.clone();
        }
        if !self.attributes.is_empty() {
            layout.attributes = self.attributes.clone();
        }
        if self.knowledge.is_some() {
            layout.knowledge = self.knowledge.clone();
        }
        if let Some(sep) = &self.turn_separator {
            layout.turn_separator = Some(sep.replace("\\n", "\n"));
        }
        layout
    }
}

/// The user's context sentences: `file`'s (a JSON object), then each `NAME=SENTENCE` (later
/// ones win).
pub fn context_sentences(
    file: Option<&Path>,
    given: &[String],
) -> Result<BTreeMap<String, String>> {
    let mut out: BTreeMap<String, String> = match file {
        None => BTreeMap::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
            serde_json::from_str(&text).map_err(|error| DataError::ContextsFile {
                path: path.to_path_buf(),
                error,
            })?
        }
    };
    for c in given {
        let Some((name, sentence)) = c.split_once('=') else {
            return Err(DataError::ContextSentence { given: c.clone() });
        };
        out.insert(name.trim().to_string(), sentence.trim().to_string());
    }
    Ok(out)
}

/// Loads every input with `options` (and the layout `fields` give it), writes the pairs to
/// `output` as native JSONL, and returns their statistics; `report` sees each file's report.
pub fn convert(
    inputs: &[PathBuf],
    mut options: LoadOptions,
    fields: &LayoutOverrides,
    output: &Path,
    report: &mut dyn FnMut(&LoadReport),
) -> Result<DataStats> {
    let mut pairs: Vec<PrefPair> = Vec::new();
    for input in inputs {
        options.ratings = fields.layout(input)?;
        let loaded = load_with(input, &options)?;
        report(&loaded.report);
        pairs.extend(loaded.pairs);
    }
    jsonl::write_pairs(output, &pairs)?;
    Ok(DataStats::compute(&pairs))
}

/// `wrote N pairs (train A, test B, C attributes) to OUTPUT`.
pub fn wrote_line(s: &DataStats, output: &Path) -> String {
    format!(
        "wrote {} pairs (train {}, test {}, {} attributes) to {}",
        s.pairs,
        s.splits.train,
        s.splits.test,
        s.attributes.len(),
        output.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_come_from_the_file_then_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.json");
        std::fs::write(&file, r#"{"a": "From the file.", "b": "Kept."}"#).unwrap();
        let c = context_sentences(Some(&file), &["a = Given. ".into()]).unwrap();
        assert_eq!(c["a"], "Given.");
        assert_eq!(c["b"], "Kept.");
        let e = context_sentences(None, &["nothing".into()]).unwrap_err();
        assert!(
            matches!(&e, DataError::ContextSentence { given } if given == "nothing"),
            "{e}"
        );
        std::fs::write(&file, "[1]").unwrap();
        let e = context_sentences(Some(&file), &[]).unwrap_err().to_string();
        assert!(e.contains("expected a JSON object"), "{e}");
    }

    #[test]
    fn named_fields_replace_the_layouts_own() {
        assert!(!LayoutOverrides::default().names_fields());
        let o = LayoutOverrides {
            prompt: Some("source".into()),
            attributes: vec!["x".into()],
            turn_separator: Some("\\n".into()),
            ..Default::default()
        };
        assert!(o.names_fields());
        let l = o.apply(RatingsLayout::unieval());
        assert_eq!(l.prompt, "source");
        assert_eq!(l.attributes, ["x"]);
        assert_eq!(l.turn_separator.as_deref(), Some("\n"));
        assert_eq!(l.response, RatingsLayout::unieval().response);
    }

    #[test]
    fn convert_writes_native_pairs_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        let mut p = PrefPair::new("q", "good", "bad");
        p.attribute = Some("safety".into());
        jsonl::write_pairs(&input, &[p.clone(), p]).unwrap();
        let out = dir.path().join("out.jsonl");
        let mut reports = 0;
        let s = convert(
            &[input],
            LoadOptions::default(),
            &LayoutOverrides::default(),
            &out,
            &mut |_| reports += 1,
        )
        .unwrap();
        assert_eq!((s.pairs, reports), (2, 1));
        assert_eq!(crate::load(&out, crate::Format::Auto).unwrap().len(), 2);
        assert!(wrote_line(&s, &out).starts_with("wrote 2 pairs (train 2, test 0, 1 attributes)"));
    }
}
