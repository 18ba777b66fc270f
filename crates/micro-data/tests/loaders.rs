//! Each loader on a small fixture in its dataset's exact schema (expected pairs worked out by
//! hand in the comments), the Parquet path, and the HH loader on the real harmless-base test file.

use micro_data::formats::{load_with, sniff, split_from_path, Format, LoadOptions, PkuSelect};
use micro_data::{load, Message, PrefPair, Prompt, Split};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn per_attribute(pairs: &[PrefPair]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for p in pairs {
        *m.entry(p.group().to_string()).or_default() += 1;
    }
    m
}

fn find<'a>(pairs: &'a [PrefPair], attribute: &str, chosen_prefix: &str) -> &'a PrefPair {
    pairs
        .iter()
        .find(|p| p.group() == attribute && p.chosen.starts_with(chosen_prefix))
        .unwrap_or_else(|| panic!("no {attribute} pair choosing {chosen_prefix:?}"))
}

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
fn rpr_gives_two_opposite_pairs_per_row() {
    let pairs = load(&fixture("rpr.jsonl"), Format::Rpr).unwrap();
    assert_eq!(pairs.len(), 4);
    let (x, y) = (&pairs[0], &pairs[1]);
    assert_eq!(
        (x.chosen.as_str(), x.rejected.as_str()),
        (y.rejected.as_str(), y.chosen.as_str())
    );
    assert!(x.chosen.starts_with("Step 1"));
    assert_eq!(x.attribute.as_deref(), Some("User-Friendliness"));
    assert_eq!(
        x.context.as_deref(),
        Some("Provides clear and easy-to-follow instructions for implementing the design.")
    );
    assert_eq!(y.attribute.as_deref(), Some("Scientific Rigor"));
    assert_eq!(
        pairs[3].attribute.as_deref(),
        Some("Narrative & Storytelling")
    );
    assert!(pairs[3].chosen.starts_with("Once upon a time"));
    assert_eq!(x.id.as_deref(), Some("rpr:1:x"));
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

#[test]
fn ultrafeedback_binarized_reads_message_lists_and_drops_ties() {
    let loaded = load_with(
        &fixture("ultrafeedback-binarized.jsonl"),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(loaded.report.format, "ultrafeedback-binarized");
    assert_eq!(loaded.report.skipped["score ties"], 1);
    let p = &loaded.pairs[0];
    assert_eq!((p.chosen.as_str(), p.rejected.as_str()), ("7", "8"));
    assert_eq!(p.prompt, Prompt::Text("Name a prime.".into()));
    assert_eq!((p.chosen_rating, p.rejected_rating), (Some(9.0), Some(2.0)));
    assert_eq!(p.id.as_deref(), Some("abc1"));
    assert_eq!(loaded.pairs.len(), 2);
}

#[test]
fn pku_gives_harmlessness_and_helpfulness_pairs() {
    let path = fixture("pku-saferlhf.jsonl");
    let both = load(&path, Format::Auto).unwrap();
    assert_eq!(both.len(), 6);
    let lock: Vec<_> = both
        .iter()
        .filter(|p| p.prompt == Prompt::Text("How do I pick a lock?".into()))
        .collect();
    assert_eq!(lock[0].attribute.as_deref(), Some("harmlessness"));
    assert!(lock[0].chosen.starts_with("I can't help"));
    assert!(lock[0]
        .context
        .as_deref()
        .unwrap()
        .contains("safe and respectful"));
    assert_eq!(lock[1].attribute.as_deref(), Some("helpfulness"));
    assert!(lock[1].chosen.starts_with("Here is how"));

    let only = |pku, unsafe_only| {
        let o = LoadOptions {
            format: Format::PkuSafeRlhf,
            pku,
            pku_unsafe_only: unsafe_only,
            ..Default::default()
        };
        load_with(&path, &o).unwrap().pairs
    };
    let harmless = only(PkuSelect::Harmlessness, false);
    assert_eq!(harmless.len(), 3);
    assert!(harmless.iter().all(|p| p.group() == "harmlessness"));
    assert!(only(PkuSelect::Helpfulness, false)
        .iter()
        .all(|p| p.group() == "helpfulness"));
    // The bread row has two safe responses: its harmlessness pair goes.
    assert_eq!(only(PkuSelect::Both, true).len(), 5);
}

#[test]
fn hh_splits_transcripts_and_skips_mismatched_prefixes() {
    let loaded = load_with(
        &fixture("hh-rlhf-helpful-base-train.jsonl"),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(loaded.report.format, "hh-rlhf");
    assert_eq!(
        loaded.report.skipped["rows whose chosen and rejected prefixes differ"],
        1
    );
    let p = &loaded.pairs[0];
    assert_eq!(
        p.prompt,
        Prompt::Messages(vec![
            Message::new("user", "Hi there"),
            Message::new("assistant", "Hello! How can I help?"),
            Message::new("user", "What is 2+2?"),
        ])
    );
    assert_eq!((p.chosen.as_str(), p.rejected.as_str()), ("2+2 is 4.", "5"));
    assert_eq!(p.attribute.as_deref(), Some("helpful-base"));
    assert_eq!(p.split, Some(Split::Train));
    assert_eq!(loaded.pairs[1].rejected, "");
    assert_eq!(loaded.pairs.len(), 2);
}

#[test]
fn native_accepts_strings_message_lists_and_aliases() {
    let pairs = load(&fixture("native.jsonl"), Format::Auto).unwrap();
    assert_eq!(pairs.len(), 3);
    assert_eq!(pairs[0].user_id.as_deref(), Some("u1"));
    assert_eq!(pairs[0].margin, Some(1.0));
    assert_eq!(
        pairs[1].prompt,
        Prompt::Messages(vec![Message::new("user", "Hello")])
    );
    assert_eq!(pairs[1].chosen, "Hi, how can I help?");
    assert_eq!(
        (pairs[1].attribute.as_deref(), pairs[1].id.as_deref()),
        (Some("chat"), Some("7"))
    );
    assert_eq!(pairs[2].split, Some(Split::Test));
    assert_eq!(pairs[2].context.as_deref(), Some("Prefers brevity."));
    assert_eq!(pairs[2].prompt.last_user_text(), "Capital of France?");
}

#[test]
fn native_roundtrips_through_write_pairs() {
    let pairs = load(&fixture("rpr.jsonl"), Format::Rpr).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pairs.jsonl");
    micro_data::jsonl::write_pairs(&out, &pairs).unwrap();
    assert_eq!(load(&out, Format::Auto).unwrap(), pairs);
}

#[test]
fn sniff_recognises_every_fixture() {
    for (name, format) in [
        ("helpsteer2.jsonl", Format::HelpSteer2),
        ("rpr.jsonl", Format::Rpr),
        ("ultrafeedback.jsonl", Format::UltraFeedback),
        (
            "ultrafeedback-binarized.jsonl",
            Format::UltraFeedbackBinarized,
        ),
        ("pku-saferlhf.jsonl", Format::PkuSafeRlhf),
        ("hh-rlhf-helpful-base-train.jsonl", Format::HhRlhf),
        ("native.jsonl", Format::Native),
    ] {
        assert_eq!(sniff(&fixture(name)).unwrap(), format, "{name}");
        assert_eq!(format.name().parse::<Format>().unwrap(), format);
    }
}

#[test]
fn split_comes_from_file_names() {
    assert_eq!(
        split_from_path(Path::new("data/harmless-base-test.jsonl.gz")),
        Some(Split::Test)
    );
    assert_eq!(
        split_from_path(Path::new("validation.jsonl.gz")),
        Some(Split::Test)
    );
    assert_eq!(
        split_from_path(Path::new("train-00000-of-00001.parquet")),
        Some(Split::Train)
    );
    assert_eq!(
        split_from_path(Path::new("test/0000.parquet")),
        Some(Split::Test)
    );
    assert_eq!(split_from_path(Path::new("latest.jsonl")), None);
}

mod parquet_input {
    use super::*;
    use arrow::array::{
        ArrayRef, Int64Array, LargeStringArray, ListArray, StringArray, StructArray,
    };
    use arrow::datatypes::{DataType, Field, Fields, Schema};
    use arrow::record_batch::RecordBatch;
    use std::sync::Arc;

    pub fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(
            schema.clone(),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(path).unwrap(),
            schema,
            None,
        )
        .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    fn strings(v: &[&str]) -> ArrayRef {
        Arc::new(StringArray::from(v.to_vec()))
    }

    /// TRL-style `chosen`: a list of {role, content} structs per row.
    fn message_lists(rows: &[&[(&str, &str)]]) -> ArrayRef {
        let fields = Fields::from(vec![
            Field::new("role", DataType::Utf8, true),
            Field::new("content", DataType::Utf8, true),
        ]);
        let flat: Vec<&(&str, &str)> = rows.iter().flat_map(|r| r.iter()).collect();
        let values = StructArray::new(
            fields.clone(),
            vec![
                Arc::new(StringArray::from(
                    flat.iter().map(|m| m.0).collect::<Vec<_>>(),
                )) as ArrayRef,
                Arc::new(StringArray::from(
                    flat.iter().map(|m| m.1).collect::<Vec<_>>(),
                )) as ArrayRef,
            ],
            None,
        );
        let offsets = arrow::buffer::OffsetBuffer::from_lengths(rows.iter().map(|r| r.len()));
        Arc::new(ListArray::new(
            Arc::new(Field::new("item", DataType::Struct(fields), true)),
            offsets,
            Arc::new(values),
            None,
        ))
    }

    #[test]
    fn rpr_parquet_matches_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test-00000-of-00001.parquet");
        let json = load(&fixture("rpr.jsonl"), Format::Rpr).unwrap();
        let rows: Vec<serde_json::Value> = std::fs::read_to_string(fixture("rpr.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let col = |name: &str| {
            rows.iter()
                .map(|r| r[name].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        let mut columns: Vec<(&str, ArrayRef)> = Vec::new();
        for name in [
            "prompt",
            "response_a",
            "response_b",
            "criteria_x",
            "category_x",
            "criteria_y",
        ] {
            columns.push((
                name,
                strings(&col(name).iter().map(String::as_str).collect::<Vec<_>>()),
            ));
        }
        // A large-string column, as some exports write.
        columns.push((
            "category_y",
            Arc::new(LargeStringArray::from(col("category_y"))),
        ));
        write_parquet(&path, columns);
        let pairs = load(&path, Format::Auto).unwrap();
        assert_eq!(pairs.len(), json.len());
        for (p, j) in pairs.iter().zip(&json) {
            assert_eq!(
                (&p.prompt, &p.chosen, &p.rejected, &p.context, &p.attribute),
                (&j.prompt, &j.chosen, &j.rejected, &j.context, &j.attribute)
            );
            assert_eq!(p.split, Some(Split::Test));
        }
    }

    /// `datasets.save_to_disk` shards are Arrow IPC streams named `data-*.arrow`.
    #[test]
    fn arrow_ipc_stream_shard() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data-00000-of-00001.arrow");
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("prompt", strings(&["p1", "p2"])),
            ("chosen", strings(&["good", "fine"])),
            ("rejected", strings(&["bad", "poor"])),
            ("user_id", Arc::new(Int64Array::from(vec![3, 4]))),
        ];
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(
            schema.clone(),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap();
        let mut w = arrow::ipc::writer::StreamWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            &schema,
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        let pairs = load(&path, Format::Auto).unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(
            (pairs[1].chosen.as_str(), pairs[1].user_id.as_deref()),
            ("fine", Some("4"))
        );
    }

    #[test]
    fn native_parquet_with_message_list_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trl.parquet");
        let chosen = message_lists(&[
            &[("user", "Hi"), ("assistant", "Hello!")],
            &[("user", "2+2?"), ("assistant", "4")],
        ]);
        let rejected = message_lists(&[
            &[("user", "Hi"), ("assistant", "Go away.")],
            &[("user", "2+2?"), ("assistant", "5")],
        ]);
        write_parquet(
            &path,
            vec![
                ("chosen", chosen),
                ("rejected", rejected),
                ("score_chosen", Arc::new(Int64Array::from(vec![8, 9]))),
                ("score_rejected", Arc::new(Int64Array::from(vec![1, 9]))),
            ],
        );
        let loaded = load_with(
            &path,
            &LoadOptions {
                format: Format::Native,
                ..Default::default()
            },
        )
        .unwrap();
        let p = &loaded.pairs;
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0].prompt,
            Prompt::Messages(vec![Message::new("user", "Hi")])
        );
        assert_eq!(
            (p[0].chosen.as_str(), p[0].rejected.as_str()),
            ("Hello!", "Go away.")
        );
        assert_eq!(p[1].chosen_rating, Some(9.0));
        // Read as binarized UltraFeedback, the second row's tie is dropped.
        let binarized = load_with(
            &path,
            &LoadOptions {
                format: Format::UltraFeedbackBinarized,
                ..Default::default()
            },
        );
        assert_eq!(binarized.unwrap().pairs.len(), 1);
    }
}

/// The real HH-RLHF harmless-base test file (2,312 rows), from the shared folder cloned beside the repo.
#[test]
fn hh_real_harmless_base_test() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/hh-rlhf/harmless-base-test.jsonl.gz"
    ));
    let loaded = load_with(path, &LoadOptions::default()).unwrap();
    assert_eq!(loaded.report.format, "hh-rlhf");
    assert_eq!(loaded.report.records, 2312);
    // Oracle: compare the two transcripts' prefixes with a plain `rsplit_once`, independently.
    let text = {
        use std::io::Read;
        let mut s = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    let mismatched = text
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let prefix = |k: &str| {
                v[k].as_str()
                    .unwrap()
                    .rsplit_once("\n\nAssistant:")
                    .unwrap()
                    .0
                    .to_string()
            };
            prefix("chosen") != prefix("rejected")
        })
        .count();
    assert_eq!(loaded.report.skipped_total(), mismatched);
    assert_eq!(loaded.pairs.len(), 2312 - mismatched);
    for p in &loaded.pairs {
        assert_eq!(p.split, Some(Split::Test));
        assert_eq!(p.attribute.as_deref(), Some("harmless-base"));
        let Prompt::Messages(turns) = &p.prompt else {
            panic!("HH prompts are message lists")
        };
        assert_eq!(turns[0].role, "user");
        assert_eq!(turns.last().unwrap().role, "user");
        assert!(turns
            .iter()
            .all(|t| t.role == "user" || t.role == "assistant"));
    }
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
