//! The three small real human-label sets in the shared folder (`../shared/data` from the
//! repository root): UniEval's Topical-Chat ratings, BIG-bench HHH alignment in Prometheus'
//! template, PandaLM's human test set. Each expected count is worked out independently from the
//! raw JSON with serde_json, not with the loader's code. A missing file fails its test unless
//! MICRO_SKIP_SHARED_DATA_TESTS=1 (`common::shared_data`).

use micro_data::formats::{load_with, Format, LoadOptions};
use micro_data::{PrefPair, Prompt, Split};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use crate::common::shared_data as shared;

fn raw(path: &PathBuf) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str::<Vec<Value>>(&text).unwrap()
}

fn count_by<'a>(
    pairs: &'a [PrefPair],
    key: impl Fn(&'a PrefPair) -> &'a str,
) -> BTreeMap<&'a str, usize> {
    let mut m = BTreeMap::new();
    for p in pairs {
        *m.entry(key(p)).or_insert(0) += 1;
    }
    m
}

fn options(format: Format) -> LoadOptions {
    LoadOptions {
        format,
        ..Default::default()
    }
}

/// No prompt is in both splits, and the test share of prompts is the fraction asked for.
fn assert_split_by_prompt(pairs: &[PrefPair], fraction: f64) {
    let mut split_of: HashMap<String, Split> = HashMap::new();
    for p in pairs {
        let s = p.split.expect("every pair has a split");
        let prev = split_of.insert(p.prompt.to_text(), s);
        assert!(prev.is_none() || prev == Some(s), "a prompt in both splits");
    }
    let test = split_of.values().filter(|s| **s == Split::Test).count() as f64;
    let share = test / split_of.len() as f64;
    assert!(
        (share - fraction).abs() < 0.05,
        "test share {share} for fraction {fraction}"
    );
}

#[test]
fn topical_chat_ratings_give_helpsteer2_pairs_per_attribute() {
    let Some(path) = shared("unieval-topical-chat/topical_chat.json") else {
        return;
    };
    // Oracle: all pairs of rows with the same `source` whose score differs by >= 0.5.
    let rows = raw(&path);
    let mut by_source: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for r in &rows {
        by_source
            .entry(r["source"].as_str().unwrap())
            .or_default()
            .push(r);
    }
    let attributes = [
        "coherence",
        "engagingness",
        "groundedness",
        "naturalness",
        "understandability",
    ];
    let mut expected: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unanimous = 0;
    for group in by_source.values() {
        for (i, a) in group.iter().enumerate() {
            for b in &group[i + 1..] {
                if a["system_output"] == b["system_output"] {
                    continue;
                }
                let d: Vec<f64> = attributes
                    .iter()
                    .map(|k| a["scores"][k].as_f64().unwrap() - b["scores"][k].as_f64().unwrap())
                    .collect();
                if d.iter().all(|x| *x >= 0.5 - 1e-9) || d.iter().all(|x| *x <= -0.5 + 1e-9) {
                    unanimous += 1;
                }
                for (k, x) in attributes.iter().zip(&d) {
                    if x.abs() >= 0.5 - 1e-9 {
                        *expected.entry(k).or_insert(0) += 1;
                    }
                }
            }
        }
    }
    // As a test file (no train-only drop): every decisive pair is kept.
    let loaded = load_with(
        &path,
        &LoadOptions {
            split: Some(Split::Test),
            ..options(Format::Auto)
        },
    )
    .unwrap();
    assert_eq!(loaded.report.format, "ratings");
    assert_eq!(loaded.report.records, 360);
    let pairs = &loaded.pairs;
    assert_eq!(count_by(pairs, |p| p.group()), expected);
    for n in expected.values() {
        assert!(
            (360..=545).contains(n),
            "README: about 360-540 pairs per attribute, got {n}"
        );
    }
    for p in pairs {
        assert!(p.chosen_rating.unwrap() - p.rejected_rating.unwrap() >= 0.5 - 1e-9);
        // The knowledge is a system turn of the prompt, never the pair's context.
        let Prompt::Messages(turns) = &p.prompt else {
            panic!("dialogue prompts are turns")
        };
        assert_eq!(turns[0].role, "system");
        assert_eq!(turns.last().unwrap().role, "user");
        let context = p.context.as_deref().expect("built-in criterion sentence");
        assert!(context.starts_with("The assistant"), "{context}");
        assert_ne!(context, turns[0].content);
    }
    // Split by prompt: the train side drops the pairs every attribute agrees on.
    let split = load_with(
        &path,
        &LoadOptions {
            test_fraction: Some(0.2),
            seed: 3,
            ..options(Format::Ratings)
        },
    )
    .unwrap();
    assert_split_by_prompt(&split.pairs, 0.2);
    assert!(split
        .report
        .notes
        .iter()
        .any(|n| n.starts_with("split by prompt: 12 prompts")));
    let dropped = split
        .report
        .skipped
        .get("pairs where all 5 attributes agree (train only)")
        .copied()
        .unwrap_or(0);
    assert!(
        dropped > 0 && dropped < unanimous,
        "{dropped} of {unanimous} unanimous pairs are on train prompts"
    );
    let again = load_with(
        &path,
        &LoadOptions {
            test_fraction: Some(0.2),
            seed: 3,
            ..options(Format::Ratings)
        },
    )
    .unwrap();
    assert_eq!(split.pairs, again.pairs, "same seed, same split");
}

#[test]
fn hhh_alignment_in_prometheus_template() {
    let Some(path) = shared("hhh-alignment/hhh_alignment_eval.json") else {
        return;
    };
    let rows = raw(&path);
    let expected = {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for r in &rows {
            *m.entry(r["source"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        m
    };
    let loaded = load_with(&path, &options(Format::Auto)).unwrap();
    assert_eq!(loaded.report.format, "prometheus");
    assert_eq!(loaded.pairs.len(), 221);
    assert_eq!(
        count_by(&loaded.pairs, |p| p.group())
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<BTreeMap<_, _>>(),
        expected
    );
    // "eval" in the file name: test, unless split by prompt.
    assert!(loaded.pairs.iter().all(|p| p.split == Some(Split::Test)));
    for (p, r) in loaded.pairs.iter().zip(&rows) {
        // Oracle: plain `split` on the section markers of the raw template.
        let section = |field: &str, from: &str, to: &str| -> String {
            let t = r[field].as_str().unwrap();
            t.split(from)
                .nth(1)
                .unwrap()
                .split(to)
                .next()
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(
            p.chosen,
            section(
                "chosen_instruction",
                "###Response to evaluate:",
                "###Score Rubrics:"
            )
        );
        assert_eq!(
            p.rejected,
            section(
                "rejected_instruction",
                "###Response to evaluate:",
                "###Score Rubrics:"
            )
        );
        let rubric = section("chosen_instruction", "###Score Rubrics:", "###Feedback:");
        let context = p.context.as_deref().unwrap();
        assert!(rubric.starts_with(&format!("[{context}]")), "{context}");
        let instruction = section(
            "chosen_instruction",
            "###The instruction to evaluate:",
            "###Response to evaluate:",
        );
        match &p.prompt {
            Prompt::Text(t) => assert_eq!(*t, instruction),
            Prompt::Messages(turns) => {
                assert!(instruction.contains("\n\nAssistant:"));
                assert!(instruction.ends_with(&turns.last().unwrap().content));
            }
        }
    }
    // One criterion per category.
    let contexts: BTreeSet<(&str, &str)> = loaded
        .pairs
        .iter()
        .map(|p| (p.group(), p.context.as_deref().unwrap()))
        .collect();
    assert_eq!(contexts.len(), 4);
    let split = load_with(
        &path,
        &LoadOptions {
            test_fraction: Some(0.25),
            seed: 0,
            ..options(Format::Prometheus)
        },
    )
    .unwrap();
    assert_split_by_prompt(&split.pairs, 0.25);
}

#[test]
fn pandalm_annotators_are_users_and_ties_are_counted() {
    let Some(path) = shared("pandalm/testset-v1.json") else {
        return;
    };
    let rows = raw(&path);
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    let mut ties: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        for a in ["annotator1", "annotator2", "annotator3"] {
            match r[a].as_i64() {
                Some(0) => *ties.entry(format!("ties ({a})")).or_insert(0) += 1,
                Some(1 | 2) => *expected.entry(a.to_string()).or_insert(0) += 1,
                other => panic!("unexpected label {other:?}"),
            }
        }
    }
    let loaded = load_with(&path, &options(Format::Auto)).unwrap();
    assert_eq!(loaded.report.format, "pandalm");
    assert_eq!(loaded.report.records, 999);
    assert_eq!(loaded.report.skipped, ties.into_iter().collect());
    let got: BTreeMap<String, usize> = count_by(&loaded.pairs, |p| p.group())
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(got, expected);
    for p in &loaded.pairs {
        assert_eq!(p.user_id, p.attribute);
        assert_eq!(p.context, None, "annotators are known by id only");
        assert_ne!(p.chosen, p.rejected);
    }
    assert!(
        loaded
            .report
            .notes
            .iter()
            .any(|n| n.contains("read as text")),
        "{:?}",
        loaded.report.notes
    );
    // Where the annotators all have a preference, the first item's pairs agree with the file.
    let first = &rows[0];
    let chosen = if first["annotator1"] == 1 {
        &first["response1"]
    } else {
        &first["response2"]
    };
    assert_eq!(loaded.pairs[0].chosen, chosen.as_str().unwrap());
    let split = load_with(
        &path,
        &LoadOptions {
            test_fraction: Some(0.2),
            seed: 1,
            ..options(Format::PandaLm)
        },
    )
    .unwrap();
    assert_split_by_prompt(&split.pairs, 0.2);
}
