//! A thin Llama / Qwen2 transformer that returns the final-norm hidden state of every position
//! (candle's own `llama` model returns last-token logits only). One sequence at a time, f32,
//! full causal attention; no KV cache, since reward features need a single pass.

use candle_core::{Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::config::DecoderConfig;
use super::rope;

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

struct Block {
    input_norm: Tensor,
    attention: Attention,
    post_attention_norm: Tensor,
    mlp: Mlp,
}

/// The decoder stack without any head: token ids in, final-norm hidden states out.
pub struct Transformer {
    embed_tokens: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    eps: f32,
    inv_freq: Vec<f32>,
}

fn linear(
    vb: &VarBuilder,
    in_dim: usize,
    out_dim: usize,
    bias: bool,
) -> candle_core::Result<Linear> {
    let w = vb.get((out_dim, in_dim), "weight")?;
    let b = if bias {
        Some(vb.get(out_dim, "bias")?)
    } else {
        None
    };
    Ok(Linear::new(w, b))
}

impl Attention {
    fn load(vb: &VarBuilder, c: &DecoderConfig) -> candle_core::Result<Self> {
        let (h, kv, d) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        Ok(Attention {
            q: linear(&vb.pp("q_proj"), c.hidden_size, h * d, c.qkv_bias)?,
            k: linear(&vb.pp("k_proj"), c.hidden_size, kv * d, c.qkv_bias)?,
            v: linear(&vb.pp("v_proj"), c.hidden_size, kv * d, c.qkv_bias)?,
            o: linear(&vb.pp("o_proj"), h * d, c.hidden_size, c.o_bias)?,
            n_heads: h,
            n_kv_heads: kv,
            head_dim: d,
        })
    }

    /// `x` is [T, hidden]; `mask` is [T, T] with -inf above the diagonal.
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let t = x.dim(0)?;
        let heads = |proj: &Linear, n: usize| -> candle_core::Result<Tensor> {
            proj.forward(x)?
                .reshape((1, t, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = candle_nn::rotary_emb::rope(&heads(&self.q, self.n_heads)?, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&heads(&self.k, self.n_kv_heads)?, cos, sin)?;
        let v = heads(&self.v, self.n_kv_heads)?;
        let rep = self.n_heads / self.n_kv_heads;
        let k = candle_transformers::utils::repeat_kv(k, rep)?.contiguous()?;
        let v = candle_transformers::utils::repeat_kv(v, rep)?.contiguous()?;
        let scores = (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?.broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((t, self.n_heads * self.head_dim))?;
        self.o.forward(&out)
    }
}

impl Mlp {
    fn load(vb: &VarBuilder, c: &DecoderConfig) -> candle_core::Result<Self> {
        Ok(Mlp {
            gate: linear(
                &vb.pp("gate_proj"),
                c.hidden_size,
                c.intermediate_size,
                c.mlp_bias,
            )?,
            up: linear(
                &vb.pp("up_proj"),
                c.hidden_size,
                c.intermediate_size,
                c.mlp_bias,
            )?,
            down: linear(
                &vb.pp("down_proj"),
                c.intermediate_size,
                c.hidden_size,
                c.mlp_bias,
            )?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let gated = (candle_nn::ops::silu(&self.gate.forward(x)?)? * self.up.forward(x)?)?;
        self.down.forward(&gated)
    }
}

impl Block {
    fn load(vb: &VarBuilder, c: &DecoderConfig) -> candle_core::Result<Self> {
        Ok(Block {
            input_norm: vb.get(c.hidden_size, "input_layernorm.weight")?,
            attention: Attention::load(&vb.pp("self_attn"), c)?,
            post_attention_norm: vb.get(c.hidden_size, "post_attention_layernorm.weight")?,
            mlp: Mlp::load(&vb.pp("mlp"), c)?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        eps: f32,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let h = candle_nn::ops::rms_norm(x, &self.input_norm, eps)?;
        let x = (x + self.attention.forward(&h, cos, sin, mask)?)?;
        let h = candle_nn::ops::rms_norm(&x, &self.post_attention_norm, eps)?;
        x + self.mlp.forward(&h)?
    }
}

impl Transformer {
    /// Loads the stack from `vb`, already pointed at the `model.` prefix when the file has one.
    pub fn load(vb: &VarBuilder, c: &DecoderConfig) -> candle_core::Result<Self> {
        let blocks = (0..c.num_hidden_layers)
            .map(|i| Block::load(&vb.pp(format!("layers.{i}")), c))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Transformer {
            embed_tokens: vb.get((c.vocab_size, c.hidden_size), "embed_tokens.weight")?,
            blocks,
            norm: vb.get(c.hidden_size, "norm.weight")?,
            eps: c.rms_norm_eps as f32,
            inv_freq: rope::inv_freq(c.head_dim, c.rope_theta, c.rope_scaling),
        })
    }

    /// Rows of the embedding matrix: every token id must be below this.
    pub fn vocab_rows(&self) -> usize {
        self.embed_tokens.dims()[0]
    }

    /// Final-norm hidden states [T, hidden] of `ids`; the caller checks ids against
    /// [`Transformer::vocab_rows`].
    pub fn hidden_states(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        let device = self.embed_tokens.device();
        let t = ids.len();
        let ids = Tensor::from_slice(ids, t, device)?;
        let mut x = self.embed_tokens.index_select(&ids, 0)?;
        let (cos, sin) = rope::tables(&self.inv_freq, t, device)?;
        let mask = causal_mask(t, device)?;
        for block in &self.blocks {
            x = block.forward(&x, self.eps, &cos, &sin, &mask)?;
        }
        candle_nn::ops::rms_norm(&x, &self.norm, self.eps)
    }
}

fn causal_mask(t: usize, device: &Device) -> candle_core::Result<Tensor> {
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (t, t), device)
}

/// Row `i` of a [T, hidden] tensor as a vector.
pub fn row(hidden: &Tensor, i: usize) -> candle_core::Result<Vec<f32>> {
    hidden.get(i)?.to_vec1::<f32>()
}

/// Dot product of two equally long vectors, accumulated in f64.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| *x as f64 * *y as f64)
        .sum::<f64>() as f32
}
