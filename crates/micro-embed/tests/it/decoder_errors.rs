//! Bad checkpoints and awkward inputs give clear errors or sensible handling, never a panic;
//! truncation drops the oldest prompt text and never the response.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use micro_data::{Message, PrefPair};
use micro_embed::decoder::{DecoderError, DecoderModel, DecoderOptions};
use micro_embed::ContextMode;
use serde_json::{json, Value};

fn golden_dir(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/golden"
    ))
    .join(name)
}

/// A writable copy of a golden checkpoint with its config edited by `edit`.
fn copy_with_config(name: &str, edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(golden_dir(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let config_path = dir.path().join("config.json");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    edit(&mut config);
    make_writable(&config_path);
    std::fs::write(&config_path, config.to_string()).unwrap();
    dir
}

fn make_writable(path: &Path) {
    let mut perms = std::fs::metadata(path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(path, perms).unwrap();
}

fn load_err(dir: &Path, options: &DecoderOptions) -> String {
    match DecoderModel::load(dir, options) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn llama() -> DecoderModel {
    DecoderModel::load(&golden_dir("tiny-llama-rm"), &DecoderOptions::default()).unwrap()
}

#[test]
fn unsupported_architecture_is_named() {
    let dir = copy_with_config("tiny-llama-rm", |c| {
        c["architectures"] = json!(["MistralForSequenceClassification"])
    });
    let e = load_err(dir.path(), &DecoderOptions::default());
    assert!(
        e.contains("config.json") && e.contains("MistralForSequenceClassification"),
        "{e}"
    );
    assert!(e.contains("supported"), "{e}");
}

#[test]
fn config_vocab_size_that_disagrees_with_the_weights_is_an_error() {
    let dir = copy_with_config("tiny-llama-rm", |c| c["vocab_size"] = json!(300));
    let e = load_err(dir.path(), &DecoderOptions::default());
    assert!(
        e.contains("embed_tokens") && e.contains("belong together"),
        "{e}"
    );
}

#[test]
fn tokenizer_larger_than_the_embedding_is_an_error() {
    let dir = copy_with_config("tiny-qwen2-rm", |c| c["vocab_size"] = json!(300));
    let weights = dir.path().join("model.safetensors");
    let mut tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let embed = tensors["model.embed_tokens.weight"]
        .narrow(0, 0, 300)
        .unwrap();
    tensors.insert("model.embed_tokens.weight".into(), embed);
    make_writable(&weights);
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let e = load_err(dir.path(), &DecoderOptions::default());
    assert!(
        e.contains("tokenizer.json") && e.contains("300 rows"),
        "{e}"
    );
}

#[test]
fn out_of_range_and_empty_token_sequences_are_errors() {
    let model = llama();
    let e = model.hidden_states(&[0, 2, 400]).unwrap_err();
    assert!(
        matches!(e, DecoderError::Tokenizer { .. }) && e.to_string().contains("token id 400"),
        "{e}"
    );
    assert!(model.hidden_states(&[]).is_err());
}

#[test]
fn missing_weights_and_bad_json_name_the_file() {
    let dir = copy_with_config("tiny-llama-rm", |_| {});
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let e = load_err(dir.path(), &DecoderOptions::default());
    assert!(e.contains("model.safetensors"), "{e}");
    std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
    let e = load_err(dir.path(), &DecoderOptions::default());
    assert!(e.contains("config.json") && e.contains("JSON"), "{e}");
}

#[test]
fn sequence_classification_without_score_weight_is_an_error() {
    let dir = copy_with_config("tiny-llama-rm", |_| {});
    let weights = dir.path().join("model.safetensors");
    let mut tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    tensors.remove("score.weight");
    make_writable(&weights);
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let e = load_err(dir.path(), &DecoderOptions::default());
    assert!(e.contains("score.weight"), "{e}");
}

#[test]
fn empty_response_is_embedded_at_the_end_of_turn_token() {
    let model = llama();
    let prompt = [Message::new("user", "Tell me a joke.")];
    let f = model.embed_response(&prompt, None, "").unwrap();
    // The template closes the empty turn with <|eot_id|>: one token after the prompt.
    assert_eq!(f.n_tokens, f.prompt_length + 1);
    assert_eq!(f.boundary, f.reward);
    assert!(f.reward.iter().all(|v| v.is_finite()));
}

#[test]
fn template_raise_exception_is_reported() {
    let options = DecoderOptions {
        chat_template: Some(
            "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}\
             {% endif %}{{ m.content }}{% endfor %}"
                .into(),
        ),
        ..Default::default()
    };
    let model = DecoderModel::load(&golden_dir("tiny-llama-rm"), &options).unwrap();
    let prompt = [Message::new("user", "hi")];
    let e = model.embed_response(&prompt, Some("be brief"), "ok");
    assert!(e.is_ok());
    let system = DecoderOptions {
        context: ContextMode::System,
        ..options
    };
    let model = DecoderModel::load(&golden_dir("tiny-llama-rm"), &system).unwrap();
    let e = model
        .embed_response(&prompt, Some("be brief"), "ok")
        .unwrap_err()
        .to_string();
    assert!(e.contains("System role not supported"), "{e}");
}

#[test]
fn missing_chat_template_is_an_error_naming_where_it_was_looked_for() {
    let dir = copy_with_config("tiny-llama-rm", |_| {});
    std::fs::remove_file(dir.path().join("chat_template.jinja")).unwrap();
    let e = load_err(dir.path(), &DecoderOptions::default());
    assert!(
        e.contains("chat_template") && e.contains("tokenizer_config.json"),
        "{e}"
    );
}

fn long_conversation() -> Vec<Message> {
    vec![
        Message::new("system", "Prefer concise answers."),
        Message::new(
            "user",
            "Tell me everything about the history of bread making in many words.",
        ),
        Message::new(
            "assistant",
            "Bread is old. People baked it for thousands of years in ovens.",
        ),
        Message::new(
            "user",
            "And what about the lazy dog and the quick brown fox that jumps over it?",
        ),
    ]
}

#[test]
fn truncation_drops_old_prompt_text_and_keeps_the_response() {
    let response = "It saw the lazy dog.";
    let full = llama()
        .input()
        .encode(&long_conversation(), None, response)
        .unwrap();
    assert!(!full.truncated);
    let response_tokens = full.ids.len() - full.prompt_length;
    for max_length in [
        full.ids.len() - 1,
        full.ids.len() - 30,
        full.prompt_length - 20,
    ] {
        let options = DecoderOptions {
            max_length: Some(max_length),
            ..Default::default()
        };
        let model = DecoderModel::load(&golden_dir("tiny-llama-rm"), &options).unwrap();
        let enc = model
            .input()
            .encode(&long_conversation(), None, response)
            .unwrap();
        assert!(
            enc.truncated && enc.ids.len() <= max_length,
            "{max_length}: {} tokens",
            enc.ids.len()
        );
        assert!(
            enc.rendered.ends_with("It saw the lazy dog.<|eot_id|>"),
            "{}",
            enc.rendered
        );
        assert_eq!(
            enc.ids[enc.ids.len() - response_tokens..],
            full.ids[full.prompt_length..]
        );
        // The newest question's end always survives.
        assert!(enc.rendered.contains("jumps over it?"), "{}", enc.rendered);
        let f = model.features(&enc).unwrap();
        assert!(f.truncated);
    }
}

#[test]
fn a_response_longer_than_the_budget_keeps_its_start_and_the_question() {
    let options = DecoderOptions {
        max_length: Some(40),
        ..Default::default()
    };
    let model = DecoderModel::load(&golden_dir("tiny-llama-rm"), &options).unwrap();
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(10);
    let enc = model
        .input()
        .encode(&long_conversation(), None, &long)
        .unwrap();
    assert!(
        enc.truncated && enc.response_cut && enc.ids.len() <= 40,
        "{} tokens",
        enc.ids.len()
    );
    // The whole prompt budget went first: only the template around an empty question is left.
    assert!(
        enc.rendered_prompt.ends_with(
            "user<|end_header_id|>\n\n<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        ),
        "{}",
        enc.rendered_prompt
    );
    assert!(
        enc.rendered
            .contains("<|end_header_id|>\n\nThe quick brown fox"),
        "{}",
        enc.rendered
    );
    let f = model.features(&enc).unwrap();
    assert!(f.truncated && f.n_tokens <= 40);
}

#[test]
fn a_budget_below_the_template_itself_is_a_clear_error() {
    let options = DecoderOptions {
        max_length: Some(5),
        ..Default::default()
    };
    let model = DecoderModel::load(&golden_dir("tiny-llama-rm"), &options).unwrap();
    let e = model
        .embed_response(&long_conversation(), Some("Be brief."), "ok")
        .unwrap_err();
    assert!(
        matches!(e, DecoderError::TooLong { max_length: 5, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("max_length"), "{e}");
}

#[test]
fn pairs_embed_both_responses_and_scores_differ() {
    let model = llama();
    let mut pair = PrefPair::new("How do I bake bread?", "Knead, rise, bake.", "No idea.");
    pair.context = Some("Be practical.".into());
    let f = model.embed_pair(&pair).unwrap();
    assert_eq!(f.chosen.prompt_length, f.rejected.prompt_length);
    assert_ne!(f.chosen.score, f.rejected.score);
    let without = model
        .embed_response(&pair.prompt.to_messages(), None, &pair.chosen)
        .unwrap();
    assert!(
        without.prompt_length < f.chosen.prompt_length,
        "the context lengthens the prompt"
    );
}
