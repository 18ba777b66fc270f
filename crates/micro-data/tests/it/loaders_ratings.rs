//! The rating-based loaders (HelpSteer2, UltraFeedback's per-aspect ratings, the generic ratings
//! layout, PandaLM's annotator labels) on small fixtures in their datasets' exact schemas, expected
//! pairs worked out by hand in the comments; missing values (bare `NaN`) counted in the report.

use crate::common::{find, fixture, per_attribute};
use micro_data::formats::{load_with, Format, LoadOptions};
use micro_data::{load, Prompt, Split};
use std::collections::BTreeMap;

#[test]
fn helpsteer2_train_drops_ties_and_unanimous_pairs() {
    // Prompt 1 has responses r1 [4,4,4,2,2], r2 [3,4,4,1,3], r3 [1,2,3,2,2]:
    //   r1/r2 differ on helpfulness (r1), complexity (r1), verbosity (r2)      -> 3 pairs
    //   r1/r3 differ on helpfulness, correctness, coherence (all r1)          -> 3 pairs
    //   r2/r3 differ on all five, complexity the other way (not unanimous)    -> 5 pairs
    // Prompt 2's two responses are [3,3,3,3,3] vs [1,1,1,1,1]: unanimous, dropped from train.
    let loaded = load_with(&fixture("helpsteer2.jsonl"), &LoadOptions::default()).unwrap();
    let pairs = loaded.pairs;
    assert_eq!(pairs.len(), 11);
    let expected: BTreeMap<String, usize> = [
        ("helpfulness", 3),
        ("correctness", 2),
        ("coherence", 2),
        ("complexity", 2),
        ("verbosity", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(per_attribute(&pairs), expected);
    assert_eq!(
        loaded.report.skipped["pairs where all 5 attributes agree (train only)"],
        1
    );
    assert_eq!(loaded.report.skipped["attribute ties"], 4);
    let verbose = find(&pairs, "verbosity", "The capital is Canberra");
    assert_eq!(verbose.rejected, "Canberra is the capital of Australia.");
    assert_eq!(
        (verbose.chosen_rating, verbose.rejected_rating),
        (Some(3.0), Some(2.0))
    );
    assert!(verbose
        .context
        .as_deref()
        .unwrap()
        .starts_with("The assistant should provide an expansive"));
    let complex = find(&pairs, "complexity", "Sydney.");
    assert_eq!(
        complex.rejected,
        "The capital is Canberra, chosen in 1908 as a compromise between Sydney and Melbourne."
    );
    assert!(pairs
        .iter()
        .all(|p| p.source.as_deref() == Some("helpsteer2") && p.is_train()));
    assert!(pairs
        .iter()
        .all(|p| p.chosen_rating.unwrap() - p.rejected_rating.unwrap() >= 1.0));
}

#[test]
fn helpsteer2_test_keeps_unanimous_pairs() {
    let options = LoadOptions {
        format: Format::HelpSteer2,
        split: Some(Split::Test),
        ..Default::default()
    };
    let pairs = load_with(&fixture("helpsteer2.jsonl"), &options)
        .unwrap()
        .pairs;
    assert_eq!(pairs.len(), 16);
    assert!(pairs.iter().all(|p| p.split == Some(Split::Test)));
    let haiku: Vec<_> = pairs
        .iter()
        .filter(|p| p.prompt == Prompt::Text("Write a haiku about rain.".into()))
        .collect();
    assert_eq!(haiku.len(), 5);
    assert!(haiku.iter().all(|p| p.rejected == "Rain is water."));
}

#[test]
fn ultrafeedback_pairs_per_aspect_skip_na_and_ties() {
    // Row 1, ratings per completion (c0, c1, c2):
    //   helpfulness 5,3,3 -> c0>c1, c0>c2; honesty 4,N/A,2 -> c0>c2;
    //   instruction_following 2,2,2 -> none; truthfulness 1,4,5 -> c1>c0, c2>c0, c2>c1.
    // Row 2 (`prompt` instead of `instruction`): helpfulness 4,2 -> 1 pair; the rest N/A.
    let pairs = load(&fixture("ultrafeedback.jsonl"), Format::UltraFeedback).unwrap();
    let expected: BTreeMap<String, usize> =
        [("helpfulness", 3), ("honesty", 1), ("truthfulness", 3)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    assert_eq!(per_attribute(&pairs), expected);
    let truth = |chosen: &str, rejected: &str| {
        let p = pairs
            .iter()
            .find(|p| p.group() == "truthfulness" && p.chosen == chosen && p.rejected == rejected);
        p.map(|p| (p.chosen_rating.unwrap(), p.rejected_rating.unwrap()))
    };
    assert_eq!(
        truth("It is when you loop.", "Recursion is recursion."),
        Some((5.0, 4.0))
    );
    assert_eq!(
        truth(
            "It is when you loop.",
            "A function calling itself on a smaller input until a base case."
        ),
        Some((5.0, 1.0))
    );
    assert_eq!(
        truth(
            "Recursion is recursion.",
            "A function calling itself on a smaller input until a base case."
        ),
        Some((4.0, 1.0))
    );
    let hi = pairs
        .iter()
        .find(|p| p.prompt == Prompt::Text("Say hi.".into()))
        .unwrap();
    assert_eq!(
        (hi.chosen.as_str(), hi.rejected.as_str()),
        ("Hi!", "Goodbye.")
    );
}

/// Bare `NaN` (as Python's `json.dump` writes it) is a missing value, counted in the report:
/// a missing rating drops that attribute's pairs, a missing PandaLM label that annotator's pair.
#[test]
fn bare_nan_is_a_counted_missing_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ratings.json");
    std::fs::write(
        &path,
        r#"[
  {"source": "hi \n hey", "system_output": "a NaN here", "context": "k", "scores": {"x": 1, "y": NaN}},
  {"source": "hi \n hey", "system_output": "b", "context": "k", "scores": {"x": 2, "y": 3}}
]"#,
    )
    .unwrap();
    let loaded = load_with(
        &path,
        &LoadOptions {
            format: Format::Ratings,
            split: Some(Split::Test),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(loaded.pairs.len(), 1, "only x has both ratings");
    assert_eq!(loaded.pairs[0].group(), "x");
    assert_eq!(
        loaded.pairs[0].rejected, "a NaN here",
        "text inside strings is untouched"
    );
    assert_eq!(loaded.report.skipped["missing ratings"], 1);
    assert!(
        loaded
            .report
            .notes
            .iter()
            .any(|n| n.starts_with("1 bare NaN")),
        "{:?}",
        loaded.report.notes
    );
    assert!(loaded
        .report
        .notes
        .iter()
        .any(|n| n.contains("no context sentence for x, y")));
    let path = dir.path().join("panda.jsonl");
    std::fs::write(
        &path,
        r#"{"idx": 7, "instruction": "Say hi", "input": "", "response1": "hi", "response2": "hello", "annotator1": NaN, "annotator2": 2, "annotator3": 0}"#,
    )
    .unwrap();
    let loaded = load_with(&path, &LoadOptions::default()).unwrap();
    assert_eq!(loaded.report.format, "pandalm");
    assert_eq!(loaded.pairs.len(), 1);
    assert_eq!(
        (loaded.pairs[0].chosen.as_str(), loaded.pairs[0].group()),
        ("hello", "annotator2")
    );
    assert_eq!(loaded.pairs[0].id.as_deref(), Some("panda:7:annotator2"));
    assert_eq!(loaded.report.skipped["missing labels (annotator1)"], 1);
    assert_eq!(loaded.report.skipped["ties (annotator3)"], 1);
}

/// The generic ratings layout: named top-level columns, a user context sentence, a gap of 2.
#[test]
fn ratings_with_named_columns_and_contexts() {
    use micro_data::formats::ratings::RatingsLayout;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rated.jsonl");
    // Prompt q: r1 [5, 1], r2 [2, 2], r3 [1, 4]. Gap 2: fun r1>r2 (3), r1>r3 (4); calm r3>r1 (3),
    // r3>r2 is a gap of 2 (kept). Nothing is unanimous.
    let rows = [("r1", 5, 1), ("r2", 2, 2), ("r3", 1, 4)].map(|(r, f, c)| {
        serde_json::json!({"question": "q", "answer": r, "fun": f, "calm": c}).to_string()
    });
    std::fs::write(&path, rows.join("\n")).unwrap();
    let options = LoadOptions {
        format: Format::Ratings,
        ratings: Some(RatingsLayout {
            prompt: "question".into(),
            response: "answer".into(),
            attributes: vec!["fun".into(), "calm".into()],
            ..Default::default()
        }),
        min_gap: Some(2.0),
        contexts: [("fun".to_string(), "Make me laugh.".to_string())]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let loaded = load_with(&path, &options).unwrap();
    let got: Vec<(&str, &str, &str)> = loaded
        .pairs
        .iter()
        .map(|p| (p.group(), p.chosen.as_str(), p.rejected.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("fun", "r1", "r2"),
            ("fun", "r1", "r3"),
            ("calm", "r3", "r1"),
            ("calm", "r3", "r2")
        ]
    );
    assert_eq!(loaded.report.skipped["rating gaps below 2"], 2);
    assert_eq!(loaded.pairs[0].context.as_deref(), Some("Make me laugh."));
    assert_eq!(loaded.pairs[2].context, None);
    assert_eq!(loaded.pairs[0].prompt, Prompt::Text("q".into()));
}
