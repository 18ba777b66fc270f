//! The decoder through the crate-wide `Backbone` trait, as `micro embed` uses it: rows in input
//! order, scores from the response pass, and router inputs from prompt passes that never see a
//! response (the last prompt token), the same in the cache and for a single served prompt.

use std::path::PathBuf;

use micro_cache::EmbeddingCache;
use micro_data::{Message, PrefPair, Prompt};
use micro_embed::decoder::{DecoderModel, DecoderOptions};
use micro_embed::{embed_to_cache, load_backbone, BackboneOptions, EmbedOptions, Item, PromptItem};
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
        let scores = out.scores.expect("a score head");
        assert_eq!(
            (out.features.rows, out.features.cols, out.truncated),
            (3, 64, 0)
        );
        for (row, case) in golden["cases"].as_array().unwrap().iter().rev().enumerate() {
            assert!(max_diff(out.features.row(row), &floats(&case["last_token_hidden"])) < 1e-4);
            assert!((scores[row] - case["score"].as_f64().unwrap() as f32).abs() < 1e-4);
        }
    }
}

#[test]
fn prompt_router_inputs_equal_the_last_prompt_token_of_a_response_pass() {
    for name in ["tiny-llama-rm", "tiny-qwen2-rm"] {
        let backbone = load_backbone(&golden_dir(name), &BackboneOptions::default()).unwrap();
        let decoder = DecoderModel::load(&golden_dir(name), &DecoderOptions::default()).unwrap();
        let (_, cases) = golden_cases(name);
        let context = Some("Answer like a baker.");
        let prompts: Vec<PromptItem> = cases
            .iter()
            .map(|(p, _)| PromptItem { prompt: p, context })
            .collect();
        let from_prompts = backbone.embed_prompts(&prompts).unwrap();
        assert_eq!((from_prompts.features.rows, from_prompts.truncated), (3, 0));
        for (row, (p, r)) in cases.iter().enumerate() {
            // A causal model computes the prompt's last state before any response token.
            let f = decoder
                .embed_response(&p.to_messages(), context, r)
                .unwrap();
            assert!(max_diff(&f.prompt_last, from_prompts.features.row(row)) < 1e-5);
        }
    }
}

/// Pairs over the golden conversations, each with a context, some repeated with another one.
fn golden_pairs(name: &str) -> Vec<PrefPair> {
    let (_, cases) = golden_cases(name);
    let mut pairs = Vec::new();
    for (i, (p, r)) in cases.iter().enumerate() {
        for (j, ctx) in ["Be brief.", "Answer like a baker."].iter().enumerate() {
            let mut pair = PrefPair::new("", r.clone(), format!("Another answer, number {i}{j}."));
            pair.prompt = p.clone();
            pair.context = (i + j != 3).then(|| ctx.to_string());
            pairs.push(pair);
        }
    }
    pairs
}

fn embed(name: &str, pairs: Vec<PrefPair>) -> EmbeddingCache {
    let backbone = load_backbone(&golden_dir(name), &BackboneOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    embed_to_cache(
        backbone.as_ref(),
        pairs,
        dir.path(),
        &EmbedOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    EmbeddingCache::load(dir.path()).unwrap()
}

#[test]
fn router_inputs_do_not_depend_on_the_responses() {
    for name in ["tiny-llama-rm", "tiny-qwen2-rm"] {
        let pairs = golden_pairs(name);
        let swapped: Vec<PrefPair> = pairs
            .iter()
            .map(|p| {
                let mut q = p.clone();
                std::mem::swap(&mut q.chosen, &mut q.rejected);
                q
            })
            .collect();
        let rewritten: Vec<PrefPair> = pairs
            .iter()
            .map(|p| {
                let mut q = p.clone();
                q.chosen = format!("{} And something else entirely.", q.rejected);
                q.rejected = "No.".into();
                q
            })
            .collect();
        let base = embed(name, pairs);
        assert!(base.context_prompt.is_some());
        for other in [embed(name, swapped), embed(name, rewritten)] {
            assert_ne!(
                other.chosen, base.chosen,
                "{name}: the responses did change"
            );
            // Bit-identical: the same prompt passes, whatever the responses.
            assert_eq!(other.prompt, base.prompt, "{name}: e(x)");
            assert_eq!(other.context_prompt, base.context_prompt, "{name}: e(x, c)");
        }
    }
}

#[test]
fn a_served_prompt_gets_the_router_input_of_the_cache() {
    for name in ["tiny-llama-rm", "tiny-qwen2-rm"] {
        let pairs = golden_pairs(name);
        let cache = embed(name, pairs.clone());
        // A server routes one prompt at a time, with the backbone loaded afresh.
        let backbone = load_backbone(&golden_dir(name), &BackboneOptions::default()).unwrap();
        for (i, p) in pairs.iter().enumerate() {
            for (context, want) in [
                (p.context.as_deref(), cache.routed_input(i)),
                (None, cache.prompt.row(i)),
            ] {
                let one = PromptItem {
                    prompt: &p.prompt,
                    context,
                };
                let got = backbone.embed_prompts(&[one]).unwrap().features;
                assert!(max_diff(got.row(0), want) <= 1e-6, "{name}, pair {i}");
            }
        }
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
