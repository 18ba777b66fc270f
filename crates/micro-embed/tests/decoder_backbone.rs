//! The decoder through the crate-wide `Backbone` trait, as `micro embed` uses it: rows in input
//! order, router inputs and scores from the response pass, prompt-only router inputs that
//! agree with the response pass at the last prompt token.

use std::path::PathBuf;

use micro_data::{Message, Prompt};
use micro_embed::decoder::{Decoder, RouterPosition};
use micro_embed::{load_backbone, Backbone, BackboneOptions, Item, ModelFolder, PromptItem};
use serde_json::Value;

fn golden_dir(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/golden"
    ))
    .join(name)
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// (prompt, response) of every golden case of `name`.
fn golden_cases(name: &str) -> (Value, Vec<(Prompt, String)>) {
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(golden_dir(name).join("golden.json")).unwrap(),
    )
    .unwrap();
    let cases = golden["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut turns: Vec<Message> = serde_json::from_value(c["messages"].clone()).unwrap();
            let response = turns.pop().unwrap().content;
            (Prompt::Messages(turns), response)
        })
        .collect();
    (golden, cases)
}

#[test]
fn backbone_rows_match_golden_in_input_order() {
    for name in ["tiny-llama-rm", "tiny-qwen2-rm"] {
        let backbone = load_backbone(&golden_dir(name), &BackboneOptions::default()).unwrap();
        assert_eq!(backbone.dim(), 64);
        let info = backbone.info();
        assert_eq!(info.kind, "decoder");
        assert!(info
            .architecture
            .unwrap()
            .ends_with("ForSequenceClassification"));
        assert_eq!(backbone.describe().pooling, "last_token");
        let (golden, cases) = golden_cases(name);
        // Reversed, to see that rows come back in input order, not in some internal order.
        let items: Vec<Item> = cases
            .iter()
            .rev()
            .map(|(p, r)| Item {
                prompt: p,
                context: None,
                response: r,
            })
            .collect();
        let out = backbone.embed_responses(&items).unwrap();
        let router = out.router_inputs.expect("decoders give router inputs");
        let scores = out.scores.expect("a score head");
        assert_eq!(
            (out.features.rows, out.features.cols, out.truncated),
            (3, 64, 0)
        );
        for (row, case) in golden["cases"].as_array().unwrap().iter().rev().enumerate() {
            assert!(max_diff(out.features.row(row), &floats(&case["last_token_hidden"])) < 1e-4);
            assert!(max_diff(router.row(row), &floats(&case["prompt_boundary_hidden"])) < 1e-4);
            assert!((scores[row] - case["score"].as_f64().unwrap() as f32).abs() < 1e-4);
        }
    }
}

#[test]
fn prompt_only_router_inputs_equal_the_last_prompt_token_of_the_response_pass() {
    let folder = ModelFolder::open(&golden_dir("tiny-qwen2-rm")).unwrap();
    let decoder = Decoder::load(
        &folder,
        &BackboneOptions::default(),
        RouterPosition::LastPromptToken,
    )
    .unwrap();
    let (_, cases) = golden_cases("tiny-qwen2-rm");
    let context = Some("Answer like a baker.");
    let items: Vec<Item> = cases
        .iter()
        .map(|(p, r)| Item {
            prompt: p,
            context,
            response: r,
        })
        .collect();
    let prompts: Vec<PromptItem> = cases
        .iter()
        .map(|(p, _)| PromptItem { prompt: p, context })
        .collect();
    let from_responses = decoder
        .embed_responses(&items)
        .unwrap()
        .router_inputs
        .unwrap();
    let from_prompts = decoder.embed_prompts(&prompts).unwrap();
    assert_eq!((from_prompts.features.rows, from_prompts.truncated), (3, 0));
    for row in 0..3 {
        assert!(max_diff(from_responses.row(row), from_prompts.features.row(row)) < 1e-5);
    }
}

#[test]
fn no_items_give_empty_matrices_of_the_right_width() {
    let backbone =
        load_backbone(&golden_dir("tiny-llama-rm"), &BackboneOptions::default()).unwrap();
    let out = backbone.embed_responses(&[]).unwrap();
    assert_eq!((out.features.rows, out.features.cols), (0, 64));
    assert_eq!(backbone.embed_prompts(&[]).unwrap().features.cols, 64);
}

#[test]
fn truncated_items_are_counted() {
    let options = BackboneOptions {
        max_len: Some(30),
        ..Default::default()
    };
    let backbone = load_backbone(&golden_dir("tiny-llama-rm"), &options).unwrap();
    let long =
        Prompt::Text("Tell me about bread and the lazy dog and the quick brown fox. ".repeat(4));
    let short = Prompt::Text("Hi".into());
    let items = [
        Item {
            prompt: &long,
            context: None,
            response: "Fine.",
        },
        Item {
            prompt: &short,
            context: None,
            response: "Fine.",
        },
    ];
    assert_eq!(backbone.embed_responses(&items).unwrap().truncated, 1);
    let prompts = [
        PromptItem {
            prompt: &long,
            context: None,
        },
        PromptItem {
            prompt: &short,
            context: None,
        },
    ];
    assert_eq!(backbone.embed_prompts(&prompts).unwrap().truncated, 1);
}
