//! all-MiniLM-L6-v2 against the reference implementation (sentence-transformers) and against
//! candle's BERT, plus the bad-input cases of a real model folder.
//!
//! Needs the model: `scripts/fetch-assets.sh minilm` (or set MICRO_MINILM_DIR).

use micro_data::Prompt;
use micro_embed::encoder::{Encoder, Engine};
use micro_embed::{load_backbone, BackboneOptions, Item, ModelFolder, PromptItem};
use std::path::{Path, PathBuf};

fn minilm_dir() -> PathBuf {
    micro_embed::located_minilm_dir().unwrap_or_else(|e| panic!("{e}"))
}

fn golden() -> (Vec<String>, Vec<Vec<f32>>) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden/minilm_embeddings.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let sentences = serde_json::from_value(json["sentences"].clone()).unwrap();
    let embeddings = serde_json::from_value(json["embeddings"].clone()).unwrap();
    (sentences, embeddings)
}

fn prompts(texts: &[String]) -> Vec<Prompt> {
    texts.iter().map(|t| Prompt::Text(t.clone())).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn reproduces_sentence_transformers_to_1e_5() {
    let (sentences, want) = golden();
    let backbone = load_backbone(&minilm_dir(), &BackboneOptions::default()).unwrap();
    assert_eq!(backbone.dim(), 384);
    let d = backbone.describe();
    assert_eq!(
        (d.pooling.as_str(), d.normalized, d.max_len),
        ("mean", true, 256)
    );
    let ps = prompts(&sentences);
    let items: Vec<PromptItem> = ps
        .iter()
        .map(|p| PromptItem {
            prompt: p,
            context: None,
        })
        .collect();
    let got = backbone.embed_prompts(&items).unwrap();
    assert_eq!(got.truncated, 0);
    for (i, (s, w)) in sentences.iter().zip(&want).enumerate() {
        let diff = max_diff(got.features.row(i), w);
        assert!(
            diff <= 1e-5,
            "sentence {i} {s:?}: max element difference {diff}"
        );
    }
    // The same sentences one by one (batch composition must not matter).
    for (i, p) in ps.iter().enumerate() {
        let one = backbone
            .embed_prompts(&[PromptItem {
                prompt: p,
                context: None,
            }])
            .unwrap();
        assert!(max_diff(one.features.row(0), &want[i]) <= 1e-5);
    }
    let info = backbone.info();
    assert_eq!(info.kind, "encoder");
    assert_eq!(
        info.weights_sha256.as_deref(),
        Some("53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db")
    );
}

/// The hand-written packed forward against candle's padded, masked BertModel on long, truncated
/// and empty inputs mixed in one batch.
#[test]
fn native_forward_agrees_with_candle_on_mixed_lengths() {
    let folder = ModelFolder::open(&minilm_dir()).unwrap();
    let opts = BackboneOptions {
        batch_size: 5,
        ..Default::default()
    };
    let native = Encoder::load_with(&folder, &opts, Engine::Native).unwrap();
    let candle = Encoder::load_with(&folder, &opts, Engine::Candle).unwrap();
    let long = "The quick brown fox jumps over the lazy dog near the river bank. ".repeat(30);
    let texts: Vec<String> = vec![
        String::new(),
        "Hi".into(),
        long.clone(),
        "A medium sentence about baking bread with a sourdough starter at home.".into(),
        long[..400].to_string(),
        "Ünïcödé 🚀".into(),
        "x ".repeat(254),
    ];
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (a, ta) = native.embed_texts(&refs).unwrap();
    let (b, tb) = candle.embed_texts(&refs).unwrap();
    assert_eq!(
        (ta, tb),
        (1, 1),
        "only the 30-fold sentence exceeds 256 tokens"
    );
    for i in 0..texts.len() {
        let diff = max_diff(a.row(i), b.row(i));
        assert!(diff < 2e-5, "text {i}: native and candle differ by {diff}");
    }
}

#[test]
fn long_prompts_lose_their_oldest_text_and_never_the_response() {
    let backbone = load_backbone(&minilm_dir(), &BackboneOptions::default()).unwrap();
    let long_prompt = Prompt::Text(format!(
        "{} Finally: which fruit is yellow?",
        "Tell me about the weather. ".repeat(80)
    ));
    let resp = "A banana is yellow.";
    let items = [
        Item {
            prompt: &long_prompt,
            context: None,
            response: resp,
        },
        Item {
            prompt: &long_prompt,
            context: None,
            response: "A plum is purple.",
        },
        Item {
            prompt: &long_prompt,
            context: None,
            response: "",
        },
    ];
    let f = backbone.embed_responses(&items).unwrap();
    assert_eq!(f.truncated, 3);
    assert!(f.scores.is_none());
    // Had the response been cut, the two features would be identical.
    assert!(max_diff(f.features.row(0), f.features.row(1)) > 1e-3);
    assert!(
        f.features.row(2).iter().all(|v| v.is_finite()),
        "an empty response still embeds"
    );
    // The router input keeps the criterion when the prompt is too long.
    let p = [
        PromptItem {
            prompt: &long_prompt,
            context: Some("Answer in one word."),
        },
        PromptItem {
            prompt: &long_prompt,
            context: None,
        },
    ];
    let r = backbone.embed_prompts(&p).unwrap();
    assert_eq!(r.truncated, 2);
    assert!(
        max_diff(r.features.row(0), r.features.row(1)) > 1e-3,
        "the criterion must survive truncation"
    );
}

/// A folder whose files are MiniLM's except for the given replacements.
fn folder_with(replace: &[(&str, &str)]) -> tempfile::TempDir {
    let src = minilm_dir();
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "modules.json",
        "sentence_bert_config.json",
    ] {
        std::os::unix::fs::symlink(src.join(name), dir.path().join(name)).unwrap();
    }
    for (name, from) in replace {
        std::fs::remove_file(dir.path().join(name)).unwrap();
        std::fs::copy(from, dir.path().join(name)).unwrap();
    }
    dir
}

#[test]
fn a_tokenizer_from_another_model_is_refused() {
    let other = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/golden/tiny-llama-rm/tokenizer.json");
    let dir = folder_with(&[("tokenizer.json", other.to_str().unwrap())]);
    let err = load_backbone(dir.path(), &BackboneOptions::default())
        .err()
        .expect("must fail")
        .to_string();
    assert!(err.contains("does not match the weights"), "{err}");
}

#[test]
fn a_missing_tokenizer_says_which_file_and_where() {
    let dir = folder_with(&[]);
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let err = load_backbone(dir.path(), &BackboneOptions::default())
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        err.contains("tokenizer.json") && err.contains(&dir.path().display().to_string()),
        "{err}"
    );
}

/// Real HH-RLHF transcripts through the whole pipeline: the cache loads for training and its
/// rows are the backbone's own embeddings.
#[test]
fn hh_rlhf_pairs_embed_into_a_cache_that_training_reads() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/hh-rlhf/harmless-base-test.jsonl.gz");
    if !data.is_file() && std::env::var("MICRO_SKIP_SHARED_DATA_TESTS").as_deref() == Ok("1") {
        eprintln!(
            "MICRO_SKIP_SHARED_DATA_TESTS=1: skipping the test of {}",
            data.display()
        );
        return;
    }
    assert!(
        data.is_file(),
        "{} is absent: clone the shared folder beside the repository (../shared), or set MICRO_SKIP_SHARED_DATA_TESTS=1",
        data.display()
    );
    let pairs: Vec<micro_data::PrefPair> = micro_data::load(&data, micro_data::Format::Auto)
        .unwrap()
        .into_iter()
        .take(40)
        .collect();
    let backbone = load_backbone(&minilm_dir(), &BackboneOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = micro_embed::EmbedOptions {
        chunk_size: 16,
        ..Default::default()
    };
    let s = micro_embed::embed_to_cache(
        backbone.as_ref(),
        pairs.clone(),
        dir.path(),
        &opts,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(s.pairs, 40);
    let cache = micro_cache::EmbeddingCache::load(dir.path()).unwrap();
    assert_eq!(
        (cache.chosen.cols, cache.meta.pooling.as_deref()),
        (384, Some("mean"))
    );
    let p = &pairs[7];
    let direct = backbone
        .embed_responses(&[Item {
            prompt: &p.prompt,
            context: None,
            response: &p.rejected,
        }])
        .unwrap();
    assert!(max_diff(cache.rejected.row(7), direct.features.row(0)) < 1e-6);
    let norm: f32 = cache.prompt.row(3).iter().map(|v| v * v).sum();
    assert!(
        (norm - 1.0).abs() < 1e-4,
        "router inputs are normalised like the model's sentence embeddings"
    );
    let t = micro_cache::TrainingArrays::load(dir.path(), micro_cache::RouterInput::Pair).unwrap();
    assert_eq!((t.diff.rows, t.prompt.cols), (40, 384));
}
