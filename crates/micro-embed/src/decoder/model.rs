//! A thin Llama / Qwen2 transformer that returns final-norm hidden states (candle's own `llama`
//! model returns last-token logits only). Sequences run in right-padded batches: with a causal
//! mask a real token never sees the padding after it, and positions count from 0 in every row,
//! so a sequence's states do not depend on what it is batched with. No KV cache, since reward
//! features need a single pass. Weights and activations are in the weights' dtype (f32 on the
//! CPU, bf16/f16 on a GPU); attention probabilities are always computed in f32.

use candle_core::{DType, Device, Module, Tensor};
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

    /// `x` is [B*T, hidden]: B sequences of T positions, one after the other.
    fn forward(
        &self,
        x: &Tensor,
        shape: BatchShape,
        tables: &BatchTables,
    ) -> candle_core::Result<Tensor> {
        let BatchShape { b, t } = shape;
        let heads = |proj: &Linear, n: usize| -> candle_core::Result<Tensor> {
            proj.forward(x)?
                .reshape((b, t, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (h, kv, d) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let rep = h / kv;
        let q = candle_nn::rotary_emb::rope(&heads(&self.q, h)?, &tables.cos, &tables.sin)?;
        let k = candle_nn::rotary_emb::rope(&heads(&self.k, kv)?, &tables.cos, &tables.sin)?;
        let v = heads(&self.v, kv)?;
        // Grouped-query attention without copying K and V `rep` times: the query heads that
        // share a KV head (consecutive, as in Hugging Face's `repeat_kv`) are stacked along
        // the time axis, so one matmul per KV head serves all of them.
        let q = q.reshape((b, kv, rep * t, d))?;
        let scores = (q.matmul(&k.t()?)? / (d as f64).sqrt())?
            .to_dtype(DType::F32)?
            .reshape((b, kv, rep, t, t))?
            .broadcast_add(&tables.mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?
            .to_dtype(x.dtype())?
            .reshape((b, kv, rep * t, t))?;
        let out = probs
            .matmul(&v)?
            .reshape((b, h, t, d))?
            .transpose(1, 2)?
            .reshape((b * t, h * d))?;
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
        shape: BatchShape,
        tables: &BatchTables,
    ) -> candle_core::Result<Tensor> {
        let h = candle_nn::ops::rms_norm(x, &self.input_norm, eps)?;
        let x = (x + self.attention.forward(&h, shape, tables)?)?;
        let h = candle_nn::ops::rms_norm(&x, &self.post_attention_norm, eps)?;
        x + self.mlp.forward(&h)?
    }
}

/// B sequences, each padded to T positions.
#[derive(Clone, Copy)]
struct BatchShape {
    b: usize,
    t: usize,
}

/// What every layer of one batch shares: rotary tables [T, head_dim / 2] in the model's dtype and
/// the causal mask [T, T] (f32, -inf above the diagonal).
struct BatchTables {
    cos: Tensor,
    sin: Tensor,
    mask: Tensor,
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

    /// The dtype the weights were loaded in (and activations run in).
    pub fn dtype(&self) -> DType {
        self.embed_tokens.dtype()
    }

    /// Final-norm hidden states, as f32 [picks, hidden], of the sequences `seqs` run as one
    /// right-padded batch, at `picks` = (sequence, position) pairs. The caller checks that ids
    /// are below [`Transformer::vocab_rows`], that no sequence is empty and that every position
    /// lies inside its sequence.
    pub fn hidden_at(
        &self,
        seqs: &[&[u32]],
        picks: &[(usize, usize)],
    ) -> candle_core::Result<Tensor> {
        let device = self.embed_tokens.device();
        let shape = BatchShape {
            b: seqs.len(),
            t: seqs.iter().map(|s| s.len()).max().unwrap_or(0),
        };
        let mut ids = Vec::with_capacity(shape.b * shape.t);
        for s in seqs {
            ids.extend_from_slice(s);
            // Any valid id will do: nothing real attends to the padding after it.
            ids.extend(std::iter::repeat_n(0u32, shape.t - s.len()));
        }
        let ids = Tensor::from_vec(ids, shape.b * shape.t, device)?;
        let mut x = self.embed_tokens.index_select(&ids, 0)?;
        let (cos, sin) = rope::tables(&self.inv_freq, shape.t, device)?;
        let tables = BatchTables {
            cos: cos.to_dtype(self.dtype())?,
            sin: sin.to_dtype(self.dtype())?,
            mask: causal_mask(shape.t, device)?,
        };
        for block in &self.blocks {
            x = block.forward(&x, self.eps, shape, &tables)?;
        }
        // The final norm acts row by row, so only the picked rows need it.
        let rows: Vec<u32> = picks
            .iter()
            .map(|&(s, p)| (s * shape.t + p) as u32)
            .collect();
        let rows = Tensor::from_vec(rows, picks.len(), device)?;
        let picked = x.index_select(&rows, 0)?;
        candle_nn::ops::rms_norm(&picked, &self.norm, self.eps)?.to_dtype(DType::F32)
    }

    /// Final-norm hidden states [T, hidden] (f32) of every position of `ids`; the caller checks
    /// ids against [`Transformer::vocab_rows`].
    pub fn hidden_states(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        let picks: Vec<(usize, usize)> = (0..ids.len()).map(|p| (0, p)).collect();
        self.hidden_at(&[ids], &picks)
    }
}

fn causal_mask(t: usize, device: &Device) -> candle_core::Result<Tensor> {
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (t, t), device)
}

/// Dot product of two equally long vectors, accumulated in f64.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| *x as f64 * *y as f64)
        .sum::<f64>() as f32
}
