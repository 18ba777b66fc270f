//! A BERT encoder forward pass on the CPU, written for throughput: the sequences of a batch are
//! packed end to end without padding (attention runs per sequence, so no token attends across
//! sequences), Q/K/V come from one fused matrix product, attention runs per (sequence, head) in
//! parallel, and every intermediate lives in a [`Workspace`] reused from batch to batch.

use super::kernels::{self, View};
use super::weights::WeightStore;
use crate::error::{EmbedError, Result};
use crate::folder::{ModelFolder, CONFIG};
use rayon::prelude::*;
use std::cell::RefCell;

/// The config.json fields the forward pass needs.
#[derive(Clone, Debug)]
pub struct BertConfig {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub vocab: usize,
    pub eps: f32,
    pub act: Activation,
}

/// `hidden_act` of config.json.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// The exact erf GELU (`gelu`).
    Gelu,
    /// The tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    Relu,
}

impl BertConfig {
    pub fn from_folder(f: &ModelFolder) -> Result<Self> {
        let path = f.dir.join(CONFIG);
        let act = match f
            .config
            .get("hidden_act")
            .and_then(|v| v.as_str())
            .unwrap_or("gelu")
        {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => {
                return Err(EmbedError::invalid(
                    &path,
                    format!("hidden_act {other:?} is not supported (gelu, gelu_new, relu)"),
                ))
            }
        };
        let pos = f
            .config
            .get("position_embedding_type")
            .and_then(|v| v.as_str())
            .unwrap_or("absolute");
        if pos != "absolute" {
            return Err(EmbedError::invalid(
                &path,
                format!("position_embedding_type {pos:?} is not supported (absolute only)"),
            ));
        }
        let cfg = BertConfig {
            hidden: f.config_usize("hidden_size")?,
            layers: f.config_usize("num_hidden_layers")?,
            heads: f.config_usize("num_attention_heads")?,
            intermediate: f.config_usize("intermediate_size")?,
            max_positions: f.config_usize("max_position_embeddings")?,
            type_vocab: f.config_usize("type_vocab_size").unwrap_or(2),
            vocab: f.config_usize("vocab_size")?,
            eps: f.config_f64_or("layer_norm_eps", 1e-12) as f32,
            act,
        };
        if cfg.heads == 0 || !cfg.hidden.is_multiple_of(cfg.heads) {
            return Err(EmbedError::invalid(
                &path,
                format!(
                    "hidden_size {} is not a multiple of num_attention_heads {}",
                    cfg.hidden, cfg.heads
                ),
            ));
        }
        Ok(cfg)
    }
}

struct Layer {
    /// [hidden, 3 * hidden]: query, key and value weights side by side, transposed to in x out.
    qkv_w: Vec<f32>,
    qkv_b: Vec<f32>,
    out_w: Vec<f32>,
    out_b: Vec<f32>,
    ln1: (Vec<f32>, Vec<f32>),
    ff1_w: Vec<f32>,
    ff1_b: Vec<f32>,
    ff2_w: Vec<f32>,
    ff2_b: Vec<f32>,
    ln2: (Vec<f32>, Vec<f32>),
}

/// The loaded weights of a BERT encoder.
pub struct Bert {
    pub cfg: BertConfig,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    emb_ln: (Vec<f32>, Vec<f32>),
    layers: Vec<Layer>,
}

/// Buffers of one forward pass, grown as needed and kept between batches.
#[derive(Default)]
pub struct Workspace {
    hidden: Vec<f32>,
    attn: Vec<f32>,
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    ff: Vec<f32>,
}

thread_local! {
    /// Attention scores of one (sequence, head): one buffer per rayon worker, reused.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A pointer shared by parallel tasks that write disjoint parts of one buffer.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: each task writes only its own (sequence, head) block of the buffer.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// A method (not the field) so closures capture the whole Send + Sync wrapper.
    fn at(&self, offset: usize) -> *mut f32 {
        // SAFETY: callers stay inside the buffer the pointer came from.
        unsafe { self.0.add(offset) }
    }
}

impl Bert {
    pub fn load(store: &mut WeightStore, cfg: BertConfig) -> Result<Self> {
        store.detect_prefix(
            "embeddings.word_embeddings.weight",
            &["bert.", "model.", "0.auto_model."],
        );
        let (h, i) = (cfg.hidden, cfg.intermediate);
        let ln = |s: &WeightStore, name: &str| -> Result<(Vec<f32>, Vec<f32>)> {
            let (w, b) = if s.contains(&format!("{name}.weight")) {
                ("weight", "bias")
            } else {
                ("gamma", "beta")
            };
            Ok((
                s.get(&format!("{name}.{w}"), &[h])?,
                s.get(&format!("{name}.{b}"), &[h])?,
            ))
        };
        let word = store.get("embeddings.word_embeddings.weight", &[cfg.vocab, h])?;
        let position = store.get(
            "embeddings.position_embeddings.weight",
            &[cfg.max_positions, h],
        )?;
        let token_type = store.get(
            "embeddings.token_type_embeddings.weight",
            &[cfg.type_vocab, h],
        )?;
        let emb_ln = ln(store, "embeddings.LayerNorm")?;
        let mut layers = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let p = format!("encoder.layer.{l}");
            let lin = |name: &str, out: usize, inp: usize| -> Result<(Vec<f32>, Vec<f32>)> {
                let w = store.get(&format!("{p}.{name}.weight"), &[out, inp])?;
                Ok((
                    transpose(&w, out, inp),
                    store.get(&format!("{p}.{name}.bias"), &[out])?,
                ))
            };
            let (q, qb) = lin("attention.self.query", h, h)?;
            let (k, kb) = lin("attention.self.key", h, h)?;
            let (v, vb) = lin("attention.self.value", h, h)?;
            let (out_w, out_b) = lin("attention.output.dense", h, h)?;
            let (ff1_w, ff1_b) = lin("intermediate.dense", i, h)?;
            let (ff2_w, ff2_b) = lin("output.dense", h, i)?;
            layers.push(Layer {
                qkv_w: interleave_cols(&[&q, &k, &v], h, h),
                qkv_b: [qb, kb, vb].concat(),
                out_w,
                out_b,
                ln1: ln(store, &format!("{p}.attention.output.LayerNorm"))?,
                ff1_w,
                ff1_b,
                ff2_w,
                ff2_b,
                ln2: ln(store, &format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Bert {
            cfg,
            word,
            position,
            token_type,
            emb_ln,
            layers,
        })
    }

    /// The final hidden states of the packed sequences: `[sum of lengths, hidden]` in `ws.hidden`.
    /// Every id must be below the vocabulary size and every sequence no longer than the
    /// position table (the caller checks both).
    pub fn forward<'w>(&self, seqs: &[Vec<u32>], ws: &'w mut Workspace) -> &'w [f32] {
        let h = self.cfg.hidden;
        let total: usize = seqs.iter().map(Vec::len).sum();
        let mut offsets = Vec::with_capacity(seqs.len());
        let mut at = 0;
        for s in seqs {
            offsets.push((at, s.len()));
            at += s.len();
        }
        grow(&mut ws.hidden, total * h);
        grow(&mut ws.attn, total * h);
        grow(&mut ws.ctx, total * h);
        grow(&mut ws.qkv, total * 3 * h);
        grow(&mut ws.ff, total * self.cfg.intermediate);
        self.embed(seqs, &mut ws.hidden[..total * h]);
        for layer in &self.layers {
            self.layer(layer, &offsets, total, ws);
        }
        &ws.hidden[..total * h]
    }

    fn embed(&self, seqs: &[Vec<u32>], out: &mut [f32]) {
        let h = self.cfg.hidden;
        let mut row = 0;
        for s in seqs {
            for (pos, &id) in s.iter().enumerate() {
                let dst = &mut out[row * h..(row + 1) * h];
                let w = &self.word[id as usize * h..(id as usize + 1) * h];
                let p = &self.position[pos * h..(pos + 1) * h];
                for j in 0..h {
                    dst[j] = w[j] + p[j] + self.token_type[j];
                }
                row += 1;
            }
        }
        kernels::add_layer_norm(out, &[], &self.emb_ln.0, &self.emb_ln.1, self.cfg.eps);
    }

    fn layer(&self, l: &Layer, offsets: &[(usize, usize)], total: usize, ws: &mut Workspace) {
        let (h, inter) = (self.cfg.hidden, self.cfg.intermediate);
        let threads = rayon::current_num_threads();
        let hidden = &mut ws.hidden[..total * h];
        let qkv = &mut ws.qkv[..total * 3 * h];
        let attn = &mut ws.attn[..total * h];
        let ctx = &mut ws.ctx[..total * h];
        let ff = &mut ws.ff[..total * inter];
        linear(hidden, &l.qkv_w, &l.qkv_b, qkv, threads);
        self.attention(qkv, offsets, ctx);
        linear(ctx, &l.out_w, &l.out_b, attn, threads);
        kernels::add_layer_norm(attn, hidden, &l.ln1.0, &l.ln1.1, self.cfg.eps);
        linear(attn, &l.ff1_w, &l.ff1_b, ff, threads);
        match self.cfg.act {
            Activation::Gelu => kernels::gelu(ff),
            Activation::GeluTanh => kernels::gelu_tanh(ff),
            Activation::Relu => ff.par_iter_mut().for_each(|v| *v = v.max(0.0)),
        }
        linear(ff, &l.ff2_w, &l.ff2_b, hidden, threads);
        kernels::add_layer_norm(hidden, attn, &l.ln2.0, &l.ln2.1, self.cfg.eps);
    }

    /// softmax(Q K^T / sqrt(d)) V for every (sequence, head), written into `ctx` at the head's columns.
    fn attention(&self, qkv: &[f32], offsets: &[(usize, usize)], ctx: &mut [f32]) {
        let h = self.cfg.hidden;
        let d = h / self.cfg.heads;
        let scale = 1.0 / (d as f32).sqrt();
        let out = SendPtr(ctx.as_mut_ptr());
        let tasks: Vec<(usize, usize, usize)> = offsets
            .iter()
            .flat_map(|&(start, len)| (0..self.cfg.heads).map(move |hd| (start, len, hd)))
            .collect();
        tasks.par_iter().for_each(|&(start, len, hd)| {
            let at = |part: usize| View {
                ptr: qkv[start * 3 * h + part * h + hd * d..].as_ptr(),
                rows: len,
                cols: d,
                stride: 3 * h,
            };
            SCORES.with(|cell| {
                let mut scores = cell.borrow_mut();
                grow(&mut scores, len * len);
                let scores = &mut scores[..len * len];
                // SAFETY: q/k/v views lie inside `qkv`; the output block (rows of this sequence,
                // columns of this head) is written by this task alone.
                unsafe {
                    kernels::matmul_bt(at(0), at(1), scale, scores.as_mut_ptr(), len);
                    kernels::softmax_rows(scores, len);
                    let p = View {
                        ptr: scores.as_ptr(),
                        rows: len,
                        cols: len,
                        stride: len,
                    };
                    kernels::matmul(p, at(2), out.at(start * h + hd * d), h, false, 1);
                }
            });
        });
    }
}

fn grow(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// `[rows, cols]` -> `[cols, rows]`.
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

/// Places `[rows, cols]` matrices side by side: `[rows, cols * parts]`.
fn interleave_cols(parts: &[&[f32]], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * cols * parts.len());
    for r in 0..rows {
        for p in parts {
            out.extend_from_slice(&p[r * cols..(r + 1) * cols]);
        }
    }
    out
}

/// `out = x . w + b` for row-major `x` [rows, in], `w` [in, out] and `out` [rows, out], with
/// `out` = `b.len()`: every linear layer of the encoder.
fn linear(x: &[f32], w: &[f32], b: &[f32], out: &mut [f32], threads: usize) {
    let n_out = b.len();
    let n_in = w.len() / n_out;
    let rows = out.len() / n_out;
    assert!(
        w.len() == n_in * n_out && x.len() == rows * n_in && out.len() == rows * n_out,
        "linear: x, w, b and out do not fit together"
    );
    kernels::fill_rows(out, b);
    let view = |s: &[f32], cols: usize| View {
        ptr: s.as_ptr(),
        rows: s.len() / cols,
        cols,
        stride: cols,
    };
    // SAFETY: the views cover exactly their slices (shapes checked above); `out` is a distinct
    // &mut slice, so it aliases neither `x` nor `w`.
    unsafe {
        kernels::matmul(
            view(x, n_in),
            view(w, n_out),
            out.as_mut_ptr(),
            n_out,
            true,
            threads,
        )
    };
}
