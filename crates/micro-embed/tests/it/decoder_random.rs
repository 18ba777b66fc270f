//! Random-weight checkpoints written in the older layout (`rope_theta` at the top level, chat
//! template inside tokenizer_config.json, sharded weights) load and agree with a naive f64
//! re-implementation of the Llama / Qwen2 forward pass written independently below.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use micro_data::Message;
use micro_embed::decoder::{rope, DecoderModel, DecoderOptions, RopeScaling};
use serde_json::{json, Value};

const VOCAB: usize = 400; // the golden tokenizer's size
const HIDDEN: usize = 32;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 12; // deliberately not HIDDEN / HEADS
const INTER: usize = 48;
const LAYERS: usize = 2;
const EPS: f64 = 1e-6;

fn golden_dir(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/golden"
    ))
    .join(name)
}

/// Deterministic pseudo-random weights (a 64-bit LCG), uniform in [-scale, scale].
struct Lcg(u64);

impl Lcg {
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }
}

type Weights = HashMap<String, (Vec<f32>, Vec<usize>)>;

fn random_weights(seed: u64, qkv_bias: bool, o_bias: bool, mlp_bias: bool, score: bool) -> Weights {
    let mut rng = Lcg(seed);
    let mut w = Weights::new();
    let mut put = |name: String, shape: Vec<usize>, scale: f32| {
        let data = rng.vec(shape.iter().product(), scale);
        w.insert(name, (data, shape));
    };
    put("model.embed_tokens.weight".into(), vec![VOCAB, HIDDEN], 1.0);
    put("model.norm.weight".into(), vec![HIDDEN], 1.0);
    for l in 0..LAYERS {
        let p = format!("model.layers.{l}");
        put(format!("{p}.input_layernorm.weight"), vec![HIDDEN], 1.0);
        put(
            format!("{p}.post_attention_layernorm.weight"),
            vec![HIDDEN],
            1.0,
        );
        let projections = [
            ("self_attn.q_proj", HEADS * HEAD_DIM, HIDDEN, qkv_bias),
            ("self_attn.k_proj", KV_HEADS * HEAD_DIM, HIDDEN, qkv_bias),
            ("self_attn.v_proj", KV_HEADS * HEAD_DIM, HIDDEN, qkv_bias),
            ("self_attn.o_proj", HIDDEN, HEADS * HEAD_DIM, o_bias),
            ("mlp.gate_proj", INTER, HIDDEN, mlp_bias),
            ("mlp.up_proj", INTER, HIDDEN, mlp_bias),
            ("mlp.down_proj", HIDDEN, INTER, mlp_bias),
        ];
        for (name, out, inp, bias) in projections {
            put(format!("{p}.{name}.weight"), vec![out, inp], 0.3);
            if bias {
                put(format!("{p}.{name}.bias"), vec![out], 0.3);
            }
        }
    }
    if score {
        put("score.weight".into(), vec![1, HIDDEN], 1.0);
    }
    w
}

fn write_sharded(dir: &Path, w: &Weights) {
    let mut names: Vec<&String> = w.keys().collect();
    names.sort();
    let mut weight_map = serde_json::Map::new();
    for (i, part) in names.chunks(names.len().div_ceil(3)).enumerate() {
        let shard = format!("model-0000{}-of-00003.safetensors", i + 1);
        let tensors: HashMap<String, Tensor> = part
            .iter()
            .map(|n| {
                (
                    (*n).clone(),
                    Tensor::from_vec(w[*n].0.clone(), w[*n].1.clone(), &Device::Cpu).unwrap(),
                )
            })
            .collect();
        candle_core::safetensors::save(&tensors, dir.join(&shard)).unwrap();
        for n in part {
            weight_map.insert((*n).clone(), json!(shard));
        }
    }
    let index = json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
}

fn write_old_style_checkpoint(dir: &Path, config: Value, w: &Weights) {
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let src = golden_dir("tiny-llama-rm");
    std::fs::copy(src.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let template = std::fs::read_to_string(src.join("chat_template.jinja")).unwrap();
    let tc = json!({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": template});
    std::fs::write(dir.join("tokenizer_config.json"), tc.to_string()).unwrap();
    write_sharded(dir, w);
}

fn base_config(architecture: &str) -> Value {
    json!({
        "architectures": [architecture], "hidden_size": HIDDEN, "intermediate_size": INTER,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM, "vocab_size": VOCAB, "rms_norm_eps": EPS, "hidden_act": "silu",
        "max_position_embeddings": 512, "rope_theta": 10000.0,
    })
}

// ---- the naive reference: plain loops in f64 ----

fn get<'a>(w: &'a Weights, name: &str) -> &'a [f32] {
    &w[name].0
}

fn rms_norm(x: &[f64], weight: &[f32]) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let inv = 1.0 / (ms + EPS).sqrt();
    x.iter()
        .zip(weight)
        .map(|(v, g)| v * inv * *g as f64)
        .collect()
}

/// `y = W x + b` for W stored [out, in].
fn affine(w: &Weights, name: &str, x: &[f64]) -> Vec<f64> {
    let weight = get(w, &format!("{name}.weight"));
    let bias = w.get(&format!("{name}.bias")).map(|b| &b.0);
    let n_in = x.len();
    (0..weight.len() / n_in)
        .map(|o| {
            let dot: f64 = (0..n_in).map(|i| weight[o * n_in + i] as f64 * x[i]).sum();
            dot + bias.map_or(0.0, |b| b[o] as f64)
        })
        .collect()
}

/// HF `rotate_half`: coordinate i pairs with i + d/2.
fn rotate(head: &mut [f64], pos: usize, inv_freq: &[f32]) {
    let half = head.len() / 2;
    for i in 0..half {
        let angle = pos as f64 * inv_freq[i] as f64;
        let (a, b) = (head[i], head[i + half]);
        head[i] = a * angle.cos() - b * angle.sin();
        head[i + half] = b * angle.cos() + a * angle.sin();
    }
}

fn attention(w: &Weights, p: &str, xs: &[Vec<f64>], inv_freq: &[f32]) -> Vec<Vec<f64>> {
    let project = |name: &str, rotated: bool| -> Vec<Vec<f64>> {
        xs.iter()
            .enumerate()
            .map(|(pos, x)| {
                let mut y = affine(w, &format!("{p}.self_attn.{name}"), x);
                if rotated {
                    y.chunks_mut(HEAD_DIM)
                        .for_each(|h| rotate(h, pos, inv_freq));
                }
                y
            })
            .collect()
    };
    let (q, k, v) = (
        project("q_proj", true),
        project("k_proj", true),
        project("v_proj", false),
    );
    let group = HEADS / KV_HEADS;
    let mut out = vec![vec![0.0; HEADS * HEAD_DIM]; xs.len()];
    for h in 0..HEADS {
        let (qo, ko) = (h * HEAD_DIM, (h / group) * HEAD_DIM);
        for i in 0..xs.len() {
            let logits: Vec<f64> = (0..=i)
                .map(|j| {
                    (0..HEAD_DIM)
                        .map(|d| q[i][qo + d] * k[j][ko + d])
                        .sum::<f64>()
                        / (HEAD_DIM as f64).sqrt()
                })
                .collect();
            let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let exps: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
            let total: f64 = exps.iter().sum();
            for (j, e) in exps.iter().enumerate() {
                for d in 0..HEAD_DIM {
                    out[i][qo + d] += e / total * v[j][ko + d];
                }
            }
        }
    }
    out.iter()
        .map(|o| affine(w, &format!("{p}.self_attn.o_proj"), o))
        .collect()
}

fn mlp(w: &Weights, p: &str, x: &[f64]) -> Vec<f64> {
    let gate = affine(w, &format!("{p}.mlp.gate_proj"), x);
    let up = affine(w, &format!("{p}.mlp.up_proj"), x);
    let act: Vec<f64> = gate
        .iter()
        .zip(&up)
        .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
        .collect();
    affine(w, &format!("{p}.mlp.down_proj"), &act)
}

fn reference_hidden(w: &Weights, ids: &[u32], inv_freq: &[f32]) -> Vec<Vec<f64>> {
    let embed = get(w, "model.embed_tokens.weight");
    let mut xs: Vec<Vec<f64>> = ids
        .iter()
        .map(|&t| {
            embed[t as usize * HIDDEN..][..HIDDEN]
                .iter()
                .map(|&v| v as f64)
                .collect()
        })
        .collect();
    for l in 0..LAYERS {
        let p = format!("model.layers.{l}");
        let normed: Vec<Vec<f64>> = xs
            .iter()
            .map(|x| rms_norm(x, get(w, &format!("{p}.input_layernorm.weight"))))
            .collect();
        let att = attention(w, &p, &normed, inv_freq);
        for (x, a) in xs.iter_mut().zip(att) {
            x.iter_mut().zip(a).for_each(|(v, d)| *v += d);
            let m = mlp(
                w,
                &p,
                &rms_norm(x, get(w, &format!("{p}.post_attention_layernorm.weight"))),
            );
            x.iter_mut().zip(m).for_each(|(v, d)| *v += d);
        }
    }
    xs.iter()
        .map(|x| rms_norm(x, get(w, "model.norm.weight")))
        .collect()
}

fn check_against_reference(dir: &Path, w: &Weights, inv_freq: &[f32], expect_score: bool) {
    let model = DecoderModel::load(dir, &DecoderOptions::default()).unwrap();
    let prompt = [
        Message::new("system", "Be kind."),
        Message::new("user", "What is a fox?"),
    ];
    let f = model
        .embed_response(&prompt, Some("Short answers"), "A small wild canid.")
        .unwrap();
    let enc = model
        .input()
        .encode(&prompt, Some("Short answers"), "A small wild canid.")
        .unwrap();
    assert!(
        enc.rendered
            .contains("[criteria] Short answers\n[context] What is a fox?"),
        "{}",
        enc.rendered
    );
    let want = reference_hidden(w, &enc.ids, inv_freq);
    let got = model
        .hidden_states(&enc.ids)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    for (pos, (g, r)) in got.iter().zip(&want).enumerate() {
        let worst = g
            .iter()
            .zip(r)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-4, "position {pos}: max abs difference {worst}");
    }
    let last = want.last().unwrap();
    assert!(f
        .reward
        .iter()
        .zip(last)
        .all(|(a, b)| (*a as f64 - b).abs() < 1e-4));
    assert!(f
        .boundary
        .iter()
        .zip(&want[enc.prompt_length])
        .all(|(a, b)| (*a as f64 - b).abs() < 1e-4));
    match (f.score, expect_score) {
        (Some(s), true) => {
            let reference: f64 = get(w, "score.weight")
                .iter()
                .zip(last)
                .map(|(a, b)| *a as f64 * b)
                .sum();
            assert!(
                (s as f64 - reference).abs() < 1e-4,
                "score {s} vs {reference}"
            );
        }
        (None, false) => {}
        (s, _) => panic!("score {s:?}, expected present = {expect_score}"),
    }
}

#[test]
fn random_qwen2_old_layout_matches_naive_reference() {
    let dir = tempfile::tempdir().unwrap();
    let w = random_weights(7, true, false, false, true);
    write_old_style_checkpoint(
        dir.path(),
        base_config("Qwen2ForSequenceClassification"),
        &w,
    );
    let inv_freq = rope::inv_freq(HEAD_DIM, 10000.0, RopeScaling::None);
    check_against_reference(dir.path(), &w, &inv_freq, true);
}

#[test]
fn random_llama_with_biases_and_llama3_rope_matches_naive_reference() {
    let dir = tempfile::tempdir().unwrap();
    let w = random_weights(11, true, true, true, false);
    let mut config = base_config("LlamaForCausalLM");
    config["attention_bias"] = json!(true);
    config["mlp_bias"] = json!(true);
    // Band edges at wavelengths 16 and 64 put this model's frequencies in all three bands.
    let scaling = RopeScaling::Llama3 {
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 64.0,
    };
    config["rope_scaling"] = json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 64});
    write_old_style_checkpoint(dir.path(), config, &w);
    let inv_freq = rope::inv_freq(HEAD_DIM, 10000.0, scaling);
    let plain = rope::inv_freq(HEAD_DIM, 10000.0, RopeScaling::None);
    assert!(inv_freq.first() == plain.first() && inv_freq.last() != plain.last());
    check_against_reference(dir.path(), &w, &inv_freq, false);
}
