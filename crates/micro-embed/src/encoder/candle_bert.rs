//! The same encoder through candle's `BertModel`: the path for CUDA GPUs (`cuda` feature), and an
//! independent implementation the hand-written CPU forward is tested against.

use crate::error::{EmbedError, Result};
use crate::folder::{ModelFolder, CONFIG};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

pub struct CandleBert {
    model: BertModel,
    device: Device,
    hidden: usize,
}

impl CandleBert {
    pub fn load(folder: &ModelFolder, device: Device) -> Result<Self> {
        let cfg: Config = serde_json::from_value(folder.config.clone()).map_err(|e| {
            EmbedError::invalid(folder.dir.join(CONFIG), format!("not a BERT config: {e}"))
        })?;
        // SAFETY: the weight files are mapped read-only and not modified while the model lives.
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&folder.weights, DType::F32, &device) }?;
        let model = BertModel::load(vb, &cfg).map_err(|e| {
            EmbedError::invalid(&folder.weights[0], format!("cannot load BERT weights: {e}"))
        })?;
        let hidden = folder.config_usize("hidden_size")?;
        Ok(CandleBert {
            model,
            device,
            hidden,
        })
    }

    /// Final hidden states of the sequences, packed end to end: `[sum of lengths, hidden]`.
    pub fn forward(&self, seqs: &[Vec<u32>]) -> Result<Vec<f32>> {
        let max = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(seqs.len() * max);
        let mut mask = Vec::with_capacity(seqs.len() * max);
        for s in seqs {
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(0, max - s.len()));
            mask.extend(std::iter::repeat_n(1u32, s.len()));
            mask.extend(std::iter::repeat_n(0u32, max - s.len()));
        }
        let shape = (seqs.len(), max);
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let types = ids.zeros_like()?;
        let out = self.model.forward(&ids, &types, Some(&mask))?;
        let out: Vec<Vec<Vec<f32>>> = out.to_vec3()?;
        let mut packed = Vec::with_capacity(seqs.iter().map(Vec::len).sum::<usize>() * self.hidden);
        for (s, rows) in seqs.iter().zip(out) {
            for row in rows.into_iter().take(s.len()) {
                packed.extend(row);
            }
        }
        Ok(packed)
    }
}
