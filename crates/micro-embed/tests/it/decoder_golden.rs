//! The tiny Llama and Qwen2 reward models reproduce the reference implementation's
//! `golden.json`, and the same weights load from the older checkpoint layouts too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use micro_data::Message;
use micro_embed::decoder::{DecoderModel, DecoderOptions};
use serde_json::{json, Value};

const TOL: f32 = 1e-4;

fn golden_dir(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/golden"
    ))
    .join(name)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst <= TOL, "{what}: max abs difference {worst}");
    eprintln!("{what}: max abs difference {worst:.1e}");
}

/// Prompt turns and the response (the final assistant turn) of a golden case.
fn conversation(case: &Value) -> (Vec<Message>, String) {
    let mut turns: Vec<Message> = serde_json::from_value(case["messages"].clone()).unwrap();
    let response = turns.pop().unwrap();
    assert_eq!(response.role, "assistant");
    (turns, response.content)
}

/// Checks every golden case of `golden_model` against the checkpoint in `dir`.
fn check_against_golden(dir: &Path, golden_model: &str, expect_score: bool) {
    let golden = read_json(&golden_dir(golden_model).join("golden.json"));
    let model = DecoderModel::load(dir, &DecoderOptions::default()).unwrap();
    assert_eq!(
        model.hidden_size(),
        golden["hidden_size"].as_u64().unwrap() as usize
    );
    for (i, case) in golden["cases"].as_array().unwrap().iter().enumerate() {
        let what = |s: &str| format!("{golden_model} case {i}: {s}");
        let (prompt, response) = conversation(case);
        let enc = model
            .input()
            .encode_exact(&prompt, None, &response)
            .unwrap();
        assert_eq!(
            enc.rendered,
            case["rendered"].as_str().unwrap(),
            "{}",
            what("rendered")
        );
        assert_eq!(
            enc.rendered_prompt,
            case["rendered_prompt"].as_str().unwrap(),
            "{}",
            what("rendered_prompt")
        );
        let want_ids: Vec<u32> = serde_json::from_value(case["input_ids"].clone()).unwrap();
        assert_eq!(enc.ids, want_ids, "{}", what("input_ids"));
        assert_eq!(
            enc.prompt_length,
            case["prompt_length"].as_u64().unwrap() as usize,
            "{}",
            what("prompt_length")
        );

        let f = model.embed_response(&prompt, None, &response).unwrap();
        assert!(!f.truncated);
        assert_close(
            &what("last_token_hidden"),
            &f.reward,
            &floats(&case["last_token_hidden"]),
        );
        assert_close(
            &what("prompt_boundary_hidden"),
            &f.boundary,
            &floats(&case["prompt_boundary_hidden"]),
        );
        match (f.score, expect_score) {
            (Some(s), true) => assert_close(
                &what("score"),
                &[s],
                &[case["score"].as_f64().unwrap() as f32],
            ),
            (None, false) => {}
            (s, _) => panic!(
                "{}: score {s:?}, expected present = {expect_score}",
                what("score")
            ),
        }
        let hidden = model
            .hidden_states(&enc.ids)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let norms: Vec<f32> = hidden
            .iter()
            .map(|r| r.iter().map(|x| x * x).sum::<f32>().sqrt())
            .collect();
        assert_close(
            &what("hidden_norm_all_positions"),
            &norms,
            &floats(&case["hidden_norm_all_positions"]),
        );
    }
}

#[test]
fn tiny_llama_reproduces_golden() {
    check_against_golden(&golden_dir("tiny-llama-rm"), "tiny-llama-rm", true);
}

#[test]
fn tiny_qwen2_reproduces_golden() {
    check_against_golden(&golden_dir("tiny-qwen2-rm"), "tiny-qwen2-rm", true);
}

/// The golden tensors by name, as f32.
fn golden_tensors(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(golden_dir(name).join("model.safetensors"), &Device::Cpu)
        .unwrap()
}

/// Writes `tensors` as two shards plus `model.safetensors.index.json`.
fn write_sharded(dir: &Path, tensors: HashMap<String, Tensor>) {
    let mut names: Vec<String> = tensors.keys().cloned().collect();
    names.sort();
    let (first, second) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (shard, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        let subset: HashMap<String, Tensor> = part
            .iter()
            .map(|n| (n.clone(), tensors[n].clone()))
            .collect();
        candle_core::safetensors::save(&subset, dir.join(shard)).unwrap();
        for n in part {
            weight_map.insert(n.clone(), json!(shard));
        }
    }
    let index = json!({"metadata": {"total_size": 0}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
}

/// The golden config rewritten in the older layout: `rope_theta` at the top level, and a
/// Llama 3 `rope_scaling` whose band edges leave every frequency of this tiny model unscaled.
fn old_style_config(name: &str, architecture: &str) -> Value {
    let mut config = read_json(&golden_dir(name).join("config.json"));
    let obj = config.as_object_mut().unwrap();
    let params = obj.remove("rope_parameters").unwrap();
    obj.insert("rope_theta".into(), params["rope_theta"].clone());
    obj.insert(
        "rope_scaling".into(),
        json!({"factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 100_000_000, "rope_type": "llama3"}),
    );
    obj.insert("architectures".into(), json!([architecture]));
    config
}

/// tokenizer.json copied; the chat template moved inside tokenizer_config.json, with the
/// special tokens written as `AddedToken` objects as older checkpoints do.
fn write_old_style_tokenizer(dir: &Path, name: &str) {
    let src = golden_dir(name);
    std::fs::copy(src.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let template = std::fs::read_to_string(src.join("chat_template.jinja")).unwrap();
    let mut tc = read_json(&src.join("tokenizer_config.json"));
    let bos = tc["bos_token"].clone();
    tc["bos_token"] = json!({"content": bos, "lstrip": false, "normalized": false, "rstrip": false, "special": true});
    tc["chat_template"] = json!(template);
    std::fs::write(dir.join("tokenizer_config.json"), tc.to_string()).unwrap();
}

#[test]
fn old_layout_sharded_without_model_prefix_reproduces_golden() {
    for name in ["tiny-llama-rm", "tiny-qwen2-rm"] {
        let dir = tempfile::tempdir().unwrap();
        let arch = read_json(&golden_dir(name).join("config.json"))["architectures"][0].clone();
        let config = old_style_config(name, arch.as_str().unwrap());
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        write_old_style_tokenizer(dir.path(), name);
        let stripped = golden_tensors(name)
            .into_iter()
            .map(|(n, t)| (n.strip_prefix("model.").unwrap_or(&n).to_string(), t));
        write_sharded(dir.path(), stripped.collect());
        check_against_golden(dir.path(), name, true);
    }
}

#[test]
fn causal_lm_layout_gives_the_same_features_without_a_score() {
    let name = "tiny-llama-rm";
    let dir = tempfile::tempdir().unwrap();
    let mut config = old_style_config(name, "LlamaForCausalLM");
    config["tie_word_embeddings"] = json!(true);
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    write_old_style_tokenizer(dir.path(), name);
    let mut tensors = golden_tensors(name);
    tensors.remove("score.weight").unwrap();
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    check_against_golden(dir.path(), name, false);
}
