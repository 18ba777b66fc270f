//! The file side of loading: format sniffing, splits from file names, and the Parquet and Arrow
//! IPC containers read like their JSONL counterparts.

use crate::common::fixture;
use micro_data::formats::{load_with, sniff, split_from_path, Format, LoadOptions};
use micro_data::{load, Message, Prompt, Split};
use std::path::Path;

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
