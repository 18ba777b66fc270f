//! Batched decoder passes (right-padded, length-sorted) give what one sequence at a time gives:
//! the golden values, in input order, whatever the batch size; a prompt's router input from a
//! batch equals the single-prompt call that serving makes; and the bf16 path that GPUs take
//! stays close to f32.

use std::path::PathBuf;

use micro_data::Message;
use micro_embed::decoder::{DecoderModel, DecoderOptions, Precision};
use serde_json::Value;

fn golden_dir(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/golden"
    ))
    .join(name)
}

fn load(name: &str, batch_size: usize, precision: Precision) -> DecoderModel {
    let options = DecoderOptions {
        batch_size,
        precision,
        ..Default::default()
    };
    DecoderModel::load(&golden_dir(name), &options).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// The golden conversations (prompt turns, response, golden case) plus shorter and longer
/// ones, so that batches mix lengths and need padding.
fn conversations(name: &str) -> (Vec<(Vec<Message>, String)>, Vec<Value>) {
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(golden_dir(name).join("golden.json")).unwrap(),
    )
    .unwrap();
    let cases = golden["cases"].as_array().unwrap().clone();
    let mut convs: Vec<(Vec<Message>, String)> = cases
        .iter()
        .map(|c| {
            let mut turns: Vec<Message> = serde_json::from_value(c["messages"].clone()).unwrap();
            let response = turns.pop().unwrap().content;
            (turns, response)
        })
        .collect();
    convs.push((vec![Message::new("user", "Hi")], String::new()));
    convs.push((vec![Message::new("user", "Name a fruit.")], "Apple.".into()));
    convs.push((
        vec![
            Message::new("system", "You are terse."),
            Message::new(
                "user",
                "Tell me about the quick brown fox and the lazy dog.",
            ),
        ],
        "The fox jumps over the dog; the dog does not mind. ".repeat(5),
    ));
    (convs, cases)
}

#[test]
fn batched_responses_equal_single_passes_and_golden_at_any_batch_size() {
    for name in ["tiny-llama-rm", "tiny-qwen2-rm"] {
        let (convs, cases) = conversations(name);
        // The golden cases have no context; some of the others do.
        let context =
            |i: usize| (i >= cases.len() && i.is_multiple_of(2)).then_some("Answer like a baker.");
        let inputs: Vec<(&[Message], Option<&str>, &str)> = convs
            .iter()
            .enumerate()
            .map(|(i, (p, r))| (p.as_slice(), context(i), r.as_str()))
            .collect();
        let single = load(name, 1, Precision::Auto);
        let one_by_one: Vec<_> = inputs
            .iter()
            .map(|(p, c, r)| single.embed_response(p, *c, r).unwrap())
            .collect();
        for batch_size in [1, 2, 3, 8] {
            let model = load(name, batch_size, Precision::Auto);
            let batched = model.embed_responses(&inputs).unwrap();
            assert_eq!(batched.len(), inputs.len());
            for (i, (b, s)) in batched.iter().zip(&one_by_one).enumerate() {
                let what = format!("{name} batch {batch_size} item {i}");
                assert_eq!(
                    (b.n_tokens, b.prompt_length),
                    (s.n_tokens, s.prompt_length),
                    "{what}"
                );
                assert!(max_diff(&b.reward, &s.reward) < 1e-5, "{what}: reward");
                assert!(
                    max_diff(&b.boundary, &s.boundary) < 1e-5,
                    "{what}: boundary"
                );
                assert!(
                    max_diff(&b.prompt_last, &s.prompt_last) < 1e-5,
                    "{what}: prompt_last"
                );
                assert!(
                    (b.score.unwrap() - s.score.unwrap()).abs() < 1e-5,
                    "{what}: score"
                );
            }
            for (case, f) in cases.iter().zip(&batched) {
                assert!(max_diff(&f.reward, &floats(&case["last_token_hidden"])) < 1e-4);
                assert!(max_diff(&f.boundary, &floats(&case["prompt_boundary_hidden"])) < 1e-4);
                assert!((f.score.unwrap() - case["score"].as_f64().unwrap() as f32).abs() < 1e-4);
            }
        }
    }
}

#[test]
fn a_prompt_in_a_batch_gets_the_router_input_of_a_single_prompt_call() {
    for name in ["tiny-llama-rm", "tiny-qwen2-rm"] {
        let (convs, _) = conversations(name);
        let inputs: Vec<(&[Message], Option<&str>)> = convs
            .iter()
            .flat_map(|(p, _)| [(p.as_slice(), None), (p.as_slice(), Some("Be brief."))])
            .collect();
        let model = load(name, 4, Precision::Auto);
        let batched = model.embed_prompts(&inputs).unwrap();
        for (i, ((p, c), (state, truncated))) in inputs.iter().zip(&batched).enumerate() {
            let (single, single_truncated) = model.embed_prompt(p, *c).unwrap();
            assert_eq!(*truncated, single_truncated);
            let d = max_diff(state, &single);
            assert!(
                d < 1e-5,
                "{name} prompt {i}: batched vs single differ by {d}"
            );
        }
    }
}

#[test]
fn bf16_weights_stay_close_to_f32() {
    let (convs, _) = conversations("tiny-llama-rm");
    let inputs: Vec<(&[Message], Option<&str>, &str)> = convs
        .iter()
        .map(|(p, r)| (p.as_slice(), None, r.as_str()))
        .collect();
    let f32_rows = load("tiny-llama-rm", 8, Precision::F32)
        .embed_responses(&inputs)
        .unwrap();
    let bf16_rows = load("tiny-llama-rm", 8, Precision::Bf16)
        .embed_responses(&inputs)
        .unwrap();
    for (a, b) in f32_rows.iter().zip(&bf16_rows) {
        let dot: f32 = a.reward.iter().zip(&b.reward).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cosine = dot / (norm(&a.reward) * norm(&b.reward));
        // bf16 keeps 8 bits of mantissa: close in direction, not to 1e-4.
        assert!(cosine > 0.99, "cosine {cosine}");
        assert!(
            max_diff(&a.reward, &b.reward) > 0.0,
            "bf16 should not be f32 in disguise"
        );
    }
}
