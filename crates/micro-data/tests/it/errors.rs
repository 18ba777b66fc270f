//! Bad input gives one line naming the file, the line or row, the field and what to do.

use micro_data::formats::{load_with, Format, LoadOptions};
use micro_data::{load, DataError};
use std::io::Write;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn error(path: &Path, format: Format) -> String {
    let e = load(path, format).expect_err("expected an error");
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(
        msg.contains(&path.display().to_string()),
        "names the file: {msg}"
    );
    msg
}

#[test]
fn truncated_gzip_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rpr.jsonl"
    ))
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for _ in 0..50 {
        gz.write_all(text.as_bytes()).unwrap();
    }
    let bytes = gz.finish().unwrap();
    let path = dir.path().join("rpr.jsonl.gz");
    std::fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let msg = error(&path, Format::Rpr);
    assert!(msg.contains("truncated or corrupt"), "{msg}");
    assert!(
        msg.contains(&format!("{}:", path.display())),
        "names a line: {msg}"
    );
}

#[test]
fn empty_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "empty.jsonl", "\n\n");
    for format in [
        Format::Auto,
        Format::HelpSteer2,
        Format::Native,
        Format::Ratings,
    ] {
        let msg = error(&path, format);
        assert!(msg.contains("no records"), "{msg}");
    }
}

#[test]
fn wrong_type_names_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"prompt": "p", "response": "a", "helpfulness": 1, "correctness": 1, "coherence": 1, "complexity": 1, "verbosity": 1}"#;
    let bad = r#"{"prompt": "p", "response": "b", "helpfulness": "high", "correctness": 1, "coherence": 1, "complexity": 1, "verbosity": 1}"#;
    let path = write(dir.path(), "hs.jsonl", &format!("{good}\n{bad}\n"));
    let msg = error(&path, Format::HelpSteer2);
    assert!(
        msg.contains(&format!(
            "{}:2 field `helpfulness`: expected a number, got a string",
            path.display()
        )),
        "{msg}"
    );
}

#[test]
fn missing_field_names_line_field_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let row = r#"{"prompt": "p", "response_a": "a", "response_b": "b", "criteria_x": "x", "category_x": "X", "category_y": "Y"}"#;
    let path = write(dir.path(), "rpr.jsonl", &format!("\n{row}\n"));
    let msg = error(&path, Format::Rpr);
    assert!(
        msg.contains(&format!("{}:2 field `criteria_y`: missing", path.display())),
        "{msg}"
    );
    assert!(msg.contains("--format"), "{msg}");
}

#[test]
fn nested_field_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let row = r#"{"instruction": "q", "completions": [{"response": "a", "annotations": {"honesty": {"Rating": "great"}}}]}"#;
    let path = write(dir.path(), "uf.jsonl", row);
    let msg = error(&path, Format::UltraFeedback);
    assert!(
        msg.contains(":1 field `completions[0].annotations.honesty.Rating`"),
        "{msg}"
    );
}

#[test]
fn invalid_json_and_non_objects_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bad.jsonl",
        "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n{oops\n",
    );
    assert!(error(&path, Format::Native).contains(":2: invalid JSON"));
    let row = r#"{"prompt": "p", "response_a": "a", "response_b": "b", "criteria_x": "x", "category_x": "X", "criteria_y": "y", "category_y": "Y"}"#;
    let path = write(dir.path(), "list.jsonl", &format!("{row}\n[1, 2]\n"));
    assert!(error(&path, Format::Rpr).contains(":2: expected a JSON object, got a list"));
    // A file that starts with `[` is one JSON array: its elements are the records.
    let path = write(dir.path(), "array.json", "[1, 2]\n");
    assert!(error(&path, Format::Rpr).contains(":1: expected a JSON object, got a number"));
}

#[test]
fn json_array_errors_name_the_element_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"prompt": "p", "chosen": "a", "rejected": "b"}"#;
    let path = write(
        dir.path(),
        "a.json",
        &format!("[\n  {good},\n  {{\"prompt\": oops}}\n]\n"),
    );
    let msg = error(&path, Format::Native);
    assert!(
        msg.contains(":3: invalid JSON") && msg.contains("one JSON array"),
        "{msg}"
    );
    let path = write(dir.path(), "b.json", &format!("[\n  {good}\n  {good}\n]"));
    assert!(error(&path, Format::Native).contains(":3: expected `,` or `]`"));
    let path = write(dir.path(), "c.json", &format!("[{good},\n"));
    assert!(error(&path, Format::Native).contains("unexpected end of file inside the array"));
    let path = write(dir.path(), "d.json", &format!("[{good}]\n[]"));
    assert!(error(&path, Format::Native).contains(":2: text after the closing `]`"));
    let path = write(
        dir.path(),
        "e.json",
        &format!("[{good},\n {{\"prompt\": \"q\", \"chosen\": 1, \"rejected\": \"b\"}}]"),
    );
    assert!(error(&path, Format::Native).contains(":2 field `chosen`"));
}

#[test]
fn ratings_errors_name_the_nested_field() {
    let dir = tempfile::tempdir().unwrap();
    let row =
        |scores: &str| format!(r#"{{"source": "hi", "system_output": "yo", "scores": {scores}}}"#);
    let path = write(
        dir.path(),
        "r.json",
        &format!(
            "[{},\n{}]",
            row(r#"{"a": 1, "b": 2}"#),
            row(r#"{"a": "x", "b": 2}"#)
        ),
    );
    let msg = error(&path, Format::Ratings);
    assert!(
        msg.contains(":2 field `scores.a`: expected a number, got a string"),
        "{msg}"
    );
    // A misspelt attribute is a missing field, not a silent skip.
    let path = write(
        dir.path(),
        "s.json",
        &format!("[{},\n{}]", row(r#"{"a": 1, "b": 2}"#), row(r#"{"b": 2}"#)),
    );
    assert!(error(&path, Format::Ratings).contains(":2 field `scores.a`: missing"));
    // Without UniEval's shape the layout must be named.
    let path = write(
        dir.path(),
        "t.jsonl",
        r#"{"q": "hi", "r": "yo", "score": 1}"#,
    );
    assert!(error(&path, Format::Ratings).contains("--attributes"));
}

#[test]
fn prometheus_and_pandalm_errors() {
    let dir = tempfile::tempdir().unwrap();
    let t = |q: &str, a: &str| {
        format!("###The instruction to evaluate:\n{q}\n###Response to evaluate:\n{a}\n###Score Rubrics:\n[Good?]\n###Feedback:")
    };
    let row = serde_json::json!({"source": "helpful", "chosen_instruction": t("q1", "a"), "rejected_instruction": t("q2", "b")});
    let path = write(dir.path(), "p.jsonl", &row.to_string());
    let msg = error(&path, Format::Prometheus);
    assert!(
        msg.contains(":1 field `rejected_instruction`: wraps another instruction"),
        "{msg}"
    );
    let row = serde_json::json!({"source": "helpful", "chosen_instruction": "no template", "rejected_instruction": t("q", "b")});
    let path = write(dir.path(), "p2.jsonl", &row.to_string());
    assert!(error(&path, Format::Prometheus)
        .contains("field `chosen_instruction`: no `###The instruction to evaluate:` section"));
    let row = r#"{"instruction": "i", "input": "", "response1": "a", "response2": "b", "annotator1": 3, "annotator2": 1, "annotator3": 1}"#;
    let path = write(dir.path(), "panda.jsonl", row);
    let msg = error(&path, Format::PandaLm);
    assert!(
        msg.contains(
            ":1 field `annotator1`: expected 0 (tie), 1 or 2 (the better response), got 3"
        ),
        "{msg}"
    );
}

#[test]
fn unknown_shape_lists_fields_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "odd.jsonl",
        r#"{"question": "q", "answer": "a"}"#,
    );
    let msg = error(&path, Format::Auto);
    assert!(
        msg.contains("[answer, question]") && msg.contains("pass --format"),
        "{msg}"
    );
    let e = "parquet-ish".parse::<Format>().unwrap_err();
    assert_eq!((e.setting, e.value.as_str()), ("format", "parquet-ish"));
    assert!(e.expected.contains("helpsteer2"), "{e}");
    assert!(e.to_string().starts_with("unknown format "), "{e}");
}

#[test]
fn pku_bad_id_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let row = r#"{"prompt": "p", "response_0": "a", "response_1": "b", "better_response_id": 2, "safer_response_id": 0}"#;
    let path = write(dir.path(), "pku.jsonl", row);
    let msg = error(&path, Format::PkuSafeRlhf);
    assert!(
        msg.contains(":1 field `better_response_id`: expected 0 or 1, got 2"),
        "{msg}"
    );
}

#[test]
fn corrupt_parquet_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "data.parquet",
        "PAR1 this is not really parquet",
    );
    let msg = error(&path, Format::Auto);
    assert!(msg.contains("cannot read"), "{msg}");
}

#[test]
fn parquet_wrong_column_type_names_the_row() {
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pairs.parquet");
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("prompt", Arc::new(StringArray::from(vec!["p1", "p2"]))),
        ("chosen", Arc::new(StringArray::from(vec![Some("a"), None]))),
        ("rejected", Arc::new(Int64Array::from(vec![1, 2]))),
    ];
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = arrow::record_batch::RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|c| c.1).collect(),
    )
    .unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let msg = error(&path, Format::Native);
    assert!(
        msg.contains(":1 field `rejected`: expected a string or a message list, got a number"),
        "{msg}"
    );
}

#[test]
fn no_pairs_is_an_error_with_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let row =
        r#"{"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: c\n\nAssistant: d"}"#;
    let path = write(dir.path(), "hh.jsonl", row);
    let e = load_with(&path, &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, DataError::Empty { .. }));
    assert!(e.to_string().contains("prefixes differ"), "{e}");
}
