//! The cache folder: round trips, caches brought from elsewhere, and every kind of bad input.

use micro_cache::{CacheMeta, Dtype, EmbeddingCache, Matrix, RouterInput, TrainingArrays};
use micro_data::PrefPair;
use safetensors::tensor::TensorView;
use std::path::Path;

fn pairs(n: usize) -> Vec<PrefPair> {
    (0..n)
        .map(|i| PrefPair::new(format!("q{i}"), "good", "bad"))
        .collect()
}

fn ramp(rows: usize, cols: usize, offset: f32) -> Matrix {
    Matrix::new(
        rows,
        cols,
        (0..rows * cols).map(|i| i as f32 * 0.25 + offset).collect(),
    )
}

fn sample(n: usize, d: usize) -> EmbeddingCache {
    EmbeddingCache::new(
        CacheMeta::default(),
        pairs(n),
        ramp(n, d, 1.0),
        ramp(n, d, 0.5),
        ramp(n, d, -1.0),
    )
    .unwrap()
}

/// Writes `embeddings.safetensors` by hand (as a Python pipeline would) with raw f32 tensors.
fn write_raw(dir: &Path, tensors: &[(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, dt, shape, bytes)| {
            (
                n.to_string(),
                TensorView::new(*dt, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("embeddings.safetensors")).unwrap();
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn external_cache(dir: &Path, n_pairs: usize, rows: usize, d: usize, poison: Option<f32>) {
    micro_data::jsonl::write_pairs(&dir.join("pairs.jsonl"), &pairs(n_pairs)).unwrap();
    let mut chosen: Vec<f32> = (0..rows * d).map(|i| i as f32).collect();
    if let Some(p) = poison {
        chosen[d + 1] = p;
    }
    let other: Vec<f32> = vec![0.5; rows * d];
    write_raw(
        dir,
        &[
            (
                "chosen_embeddings",
                safetensors::Dtype::F32,
                vec![rows, d],
                f32_bytes(&chosen),
            ),
            (
                "rejected_embeddings",
                safetensors::Dtype::F32,
                vec![rows, d],
                f32_bytes(&other),
            ),
            (
                "prompt_embeddings",
                safetensors::Dtype::F32,
                vec![rows, d],
                f32_bytes(&other),
            ),
        ],
    );
}

fn load_err(dir: &Path) -> String {
    EmbeddingCache::load(dir)
        .expect_err("loading should fail")
        .to_string()
}

#[test]
fn round_trips_in_every_dtype() {
    let cache = sample(5, 4);
    for dtype in [Dtype::F32, Dtype::F16, Dtype::Bf16] {
        let dir = tempfile::tempdir().unwrap();
        cache.save(dir.path(), dtype).unwrap();
        let back = EmbeddingCache::load(dir.path()).unwrap();
        assert_eq!(back.meta.dtype, dtype);
        assert_eq!(back.pairs, cache.pairs);
        assert_eq!(back.meta.pairs_hash, cache.meta.pairs_hash);
        // Values are multiples of 0.25 below 8: exact in every format.
        assert_eq!(back.chosen, cache.chosen);
        assert_eq!(back.prompt, cache.prompt);
    }
}

#[test]
fn training_arrays_hold_the_difference() {
    let cache = sample(7, 3);
    let dir = tempfile::tempdir().unwrap();
    cache.save(dir.path(), Dtype::F32).unwrap();
    let arrays = TrainingArrays::load(dir.path(), RouterInput::Pair).unwrap();
    assert_eq!(arrays.diff, cache.diff());
    assert!(arrays.diff.data.iter().all(|v| (*v - 0.5).abs() < 1e-6));
    assert_eq!(
        arrays.prompt, cache.prompt,
        "no contexts: e(x, c) reads as e(x)"
    );
}

#[test]
fn both_router_inputs_round_trip_and_are_chosen_by_name() {
    let with_context = ramp(4, 3, 7.0);
    let cache = sample(4, 3)
        .with_context_prompt(with_context.clone())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    cache.save(dir.path(), Dtype::F32).unwrap();
    let back = EmbeddingCache::load(dir.path()).unwrap();
    assert_eq!(back.prompt, cache.prompt);
    assert_eq!(back.context_prompt.as_ref(), Some(&with_context));
    assert_eq!(back.routed_input(2), with_context.row(2));
    assert_eq!(back.router_inputs(RouterInput::Prompt), &cache.prompt);
    let prompt_only = TrainingArrays::load(dir.path(), RouterInput::Prompt).unwrap();
    let pair = TrainingArrays::load(dir.path(), RouterInput::Pair).unwrap();
    assert_eq!(
        (prompt_only.prompt, pair.prompt),
        (cache.prompt.clone(), with_context)
    );
    assert_eq!(pair.router_input, RouterInput::Pair);
    let sub = back.subset(&[3, 1]);
    assert_eq!(sub.routed_input(0), back.routed_input(3));
}

#[test]
fn a_context_prompt_of_the_wrong_shape_is_refused() {
    let e = sample(4, 3)
        .with_context_prompt(ramp(3, 3, 0.0))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("context_prompt_embeddings") && e.contains("must match"),
        "{e}"
    );
}

#[test]
fn a_cache_made_elsewhere_without_meta_loads() {
    let dir = tempfile::tempdir().unwrap();
    external_cache(dir.path(), 3, 3, 2, None);
    let cache = EmbeddingCache::load(dir.path()).unwrap();
    assert_eq!(cache.meta.dim, 2);
    assert_eq!(cache.meta.n, 3);
    assert_eq!(cache.meta.backbone.name, "external");
    assert_eq!(cache.chosen.row(1), &[2.0, 3.0]);
}

#[test]
fn row_count_mismatch_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    external_cache(dir.path(), 4, 3, 2, None);
    let msg = load_err(dir.path());
    assert!(
        msg.contains("embeddings.safetensors") && msg.contains("3 rows") && msg.contains("4 pairs"),
        "{msg}"
    );
}

#[test]
fn nan_and_inf_are_refused_with_their_position() {
    for poison in [f32::NAN, f32::INFINITY] {
        let dir = tempfile::tempdir().unwrap();
        external_cache(dir.path(), 3, 3, 2, Some(poison));
        let msg = load_err(dir.path());
        assert!(
            msg.contains("chosen_embeddings") && msg.contains("row 1 column 1"),
            "{msg}"
        );
    }
}

#[test]
fn wrong_shape_and_unknown_dtype_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    micro_data::jsonl::write_pairs(&dir.path().join("pairs.jsonl"), &pairs(2)).unwrap();
    let four = f32_bytes(&[1.0; 4]);
    write_raw(
        dir.path(),
        &[
            (
                "chosen_embeddings",
                safetensors::Dtype::F32,
                vec![4],
                four.clone(),
            ),
            (
                "rejected_embeddings",
                safetensors::Dtype::F32,
                vec![2, 2],
                four.clone(),
            ),
            (
                "prompt_embeddings",
                safetensors::Dtype::F32,
                vec![2, 2],
                four.clone(),
            ),
        ],
    );
    let msg = load_err(dir.path());
    assert!(
        msg.contains("chosen_embeddings") && msg.contains("expected [n, d]"),
        "{msg}"
    );

    let ints: Vec<u8> = [1i32; 4].iter().flat_map(|x| x.to_le_bytes()).collect();
    write_raw(
        dir.path(),
        &[
            (
                "chosen_embeddings",
                safetensors::Dtype::I32,
                vec![2, 2],
                ints,
            ),
            (
                "rejected_embeddings",
                safetensors::Dtype::F32,
                vec![2, 2],
                four.clone(),
            ),
            (
                "prompt_embeddings",
                safetensors::Dtype::F32,
                vec![2, 2],
                four,
            ),
        ],
    );
    let msg = load_err(dir.path());
    assert!(
        msg.contains("dtype I32") && msg.contains("supported"),
        "{msg}"
    );
}

#[test]
fn missing_and_truncated_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(load_err(&dir.path().join("nope")).contains("not a cache folder"));
    let msg = load_err(dir.path());
    assert!(
        msg.contains("pairs.jsonl") && msg.contains("missing"),
        "{msg}"
    );

    sample(4, 8).save(dir.path(), Dtype::F32).unwrap();
    let file = dir.path().join("embeddings.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 10]).unwrap();
    let msg = load_err(dir.path());
    assert!(msg.contains("truncated"), "{msg}");

    std::fs::write(&file, b"not a tensor file").unwrap();
    let msg = load_err(dir.path());
    assert!(msg.contains("embeddings.safetensors"), "{msg}");
}

#[test]
fn meta_that_disagrees_with_the_tensors_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    sample(3, 4).save(dir.path(), Dtype::F32).unwrap();
    let meta_path = dir.path().join("meta.json");
    let text = std::fs::read_to_string(&meta_path)
        .unwrap()
        .replace("\"dim\": 4", "\"dim\": 5");
    std::fs::write(&meta_path, text).unwrap();
    let msg = load_err(dir.path());
    assert!(msg.contains("meta.json says dim 5"), "{msg}");
}

#[test]
fn subset_keeps_rows_aligned() {
    let cache = sample(6, 2);
    let sub = cache.subset(&[4, 1]);
    assert_eq!(sub.pairs[0].prompt, cache.pairs[4].prompt);
    assert_eq!(sub.chosen.row(1), cache.chosen.row(1));
    assert_eq!(sub.len(), 2);
}
