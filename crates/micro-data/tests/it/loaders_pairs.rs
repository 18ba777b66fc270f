//! The pairwise loaders (RPR, UltraFeedback binarized, PKU-SafeRLHF, HH-RLHF, the native
//! format) on small fixtures in their datasets' exact schemas, expected pairs worked out by hand
//! in the comments, and the HH loader on the real harmless-base test file.

use crate::common::fixture;
use micro_data::formats::{load_with, Format, LoadOptions, PkuSelect};
use micro_data::{load, Message, Prompt, Split};

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

/// The real HH-RLHF harmless-base test file (2,312 rows), from the shared folder cloned beside the repo.
#[test]
fn hh_real_harmless_base_test() {
    let Some(path) = crate::common::shared_data("hh-rlhf/harmless-base-test.jsonl.gz") else {
        return;
    };
    let path = path.as_path();
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
