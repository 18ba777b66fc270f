//! Embedding across machines as a scheduler runs it (docs/cluster-embedding.md): `micro embed
//! --shard i/n` as separate processes at the same time, then `micro cache merge`, gives the cache
//! of a one-process embed: the same pairs in the same order and the same tensors. Also: a GPU
//! asked of a build without CUDA support is a clear error with exit code 2.

use micro_cache::EmbeddingCache;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_micro");
const SHARDS: usize = 3;

fn golden_model() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/golden/tiny-llama-rm"
    ))
}

/// Pairs with repeated prompts and responses (deduplicated within a shard, and across shard
/// boundaries embedded once per shard), contexts on some, of varied lengths.
fn write_pairs(path: &Path) {
    let prompts = [
        "How do I bake bread?",
        "Tell me a joke.",
        "What is the quick brown fox doing?",
        "Explain the lazy dog in one long sentence, please, with every detail you know.",
    ];
    let contexts = [None, Some("I like short answers."), Some("I am a baker.")];
    let mut lines = Vec::new();
    for i in 0..14 {
        let prompt = prompts[i % prompts.len()];
        let attribute = ["concise", "baker"][i % 2];
        let mut pair = json!({
            "prompt": prompt,
            "chosen": format!("Answer {i}: {}", "bread ".repeat(1 + i % 5)),
            "rejected": if i % 3 == 0 { "I do not know.".to_string() } else { format!("No {i}.") },
            "attribute": attribute,
            "split": if i % 4 == 0 { "test" } else { "train" },
            "id": format!("p{i}"),
        });
        if let Some(c) = contexts[i % contexts.len()] {
            pair["context"] = json!(c);
        }
        lines.push(pair.to_string());
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn micro(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("MICRO_THREADS", "1")
        .output()
        .unwrap()
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn embed_args<'a>(model: &'a str, pairs: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "embed",
        "--model",
        model,
        "--pairs",
        pairs,
        "-o",
        out,
        "--batch-size",
        "4",
    ]
}

fn assert_rows_close(what: &str, a: &micro_cache::Matrix, b: &micro_cache::Matrix) {
    assert_eq!((a.rows, a.cols), (b.rows, b.cols), "{what}: shape");
    for r in 0..a.rows {
        let d = a
            .row(r)
            .iter()
            .zip(b.row(r))
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        // Shards batch different sequences together: equal up to float rounding.
        assert!(d < 1e-5, "{what}: row {r} differs by {d}");
    }
}

#[test]
fn shards_embedded_by_separate_processes_merge_into_the_one_process_cache() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.jsonl");
    write_pairs(&pairs);
    let model = golden_model();
    let (model, pairs_s) = (model.to_str().unwrap(), pairs.to_str().unwrap());
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();

    let whole = path("whole");
    assert_ok(
        "one-process embed",
        &micro(&embed_args(model, pairs_s, &whole)),
    );

    // All shards at once, as an array job would run them.
    let shard_dirs: Vec<String> = (0..SHARDS).map(|i| path(&format!("shard-{i}"))).collect();
    let children: Vec<_> = shard_dirs
        .iter()
        .enumerate()
        .map(|(i, out)| {
            let shard = format!("{i}/{SHARDS}");
            let mut args = embed_args(model, pairs_s, out);
            args.extend(["--shard", &shard]);
            Command::new(BIN)
                .args(&args)
                .env("MICRO_THREADS", "1")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        assert_ok(&format!("shard {i}"), &child.wait_with_output().unwrap());
    }

    let merged = path("merged");
    let mut args = vec!["cache", "merge"];
    args.extend(shard_dirs.iter().map(String::as_str));
    args.extend(["-o", &merged]);
    assert_ok("merge", &micro(&args));

    let a = EmbeddingCache::load(Path::new(&whole)).unwrap();
    let b = EmbeddingCache::load(Path::new(&merged)).unwrap();
    assert_eq!(a.pairs, b.pairs, "pairs and their order");
    assert_eq!(a.pairs.len(), 14);
    assert_rows_close("chosen", &a.chosen, &b.chosen);
    assert_rows_close("rejected", &a.rejected, &b.rejected);
    assert_rows_close("router inputs", &a.prompt, &b.prompt);
    let (sa, sb) = (a.scores.unwrap(), b.scores.unwrap());
    for (x, y) in sa.0.iter().chain(&sa.1).zip(sb.0.iter().chain(&sb.1)) {
        assert!((x - y).abs() < 1e-5, "scores {x} vs {y}");
    }
    assert_eq!(a.meta.backbone, b.meta.backbone);
}

#[test]
fn a_gpu_without_cuda_support_or_a_driver_exits_2_and_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.jsonl");
    write_pairs(&pairs);
    let out = dir.path().join("cache");
    let model = golden_model();
    let mut args = embed_args(
        model.to_str().unwrap(),
        pairs.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    args.extend(["--device", "cuda"]);
    let result = micro(&args);
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    // This build has no CUDA support; a CUDA build on a machine without a GPU names the
    // driver or device instead (checked by scripts/build-cuda.sh's users, docs/gpu.md).
    assert!(
        stderr.contains("without CUDA support")
            || stderr.contains("driver")
            || stderr.contains("CUDA device"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.join("meta.json").exists());
}
