//! Opening the safetensors weights (the files [`crate::ModelFolder`] found: one file, or the
//! shards of `model.safetensors.index.json`); tensor names with or without the `model.` prefix.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use super::config::{DecoderConfig, Head};
use super::error::{DecoderError, Result};
use super::model::Transformer;

/// The loaded weights: the transformer stack and, for sequence-classification checkpoints,
/// the first row of `score.weight` (the reward model's own scalar head).
pub struct LoadedWeights {
    pub transformer: Transformer,
    pub score: Option<Vec<f32>>,
}

/// Opens the weight `files` of the checkpoint in `dir` on `device`, its stack in `dtype` (the
/// score row always in f32).
pub fn load(
    dir: &Path,
    files: &[PathBuf],
    config: &DecoderConfig,
    device: &Device,
    dtype: DType,
) -> Result<LoadedWeights> {
    // SAFETY: the files are memory-mapped read-only; like every safetensors reader we rely on
    // them not being modified while the model is loaded (tensors are copied out right away).
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(files, dtype, device) }
        .map_err(|e| DecoderError::weights(dir, format!("cannot open safetensors: {e}")))?;
    let stack = if vb.contains_tensor("model.embed_tokens.weight") {
        vb.pp("model")
    } else if vb.contains_tensor("embed_tokens.weight") {
        vb.clone()
    } else {
        return Err(DecoderError::weights(
            dir,
            "no `model.embed_tokens.weight` or `embed_tokens.weight`: not a Llama/Qwen2 checkpoint",
        ));
    };
    let transformer = Transformer::load(&stack, config).map_err(|e| mismatch(dir, e))?;
    let score = match config.head {
        Head::SequenceClassification => Some(score_row(dir, &vb, config)?),
        Head::None => None,
    };
    Ok(LoadedWeights { transformer, score })
}

fn score_row(dir: &Path, vb: &VarBuilder, config: &DecoderConfig) -> Result<Vec<f32>> {
    if !vb.contains_tensor("score.weight") {
        return Err(DecoderError::weights(
            dir,
            format!(
                "{} needs `score.weight`, which the weights lack",
                config.architecture_name
            ),
        ));
    }
    let w = vb
        .get_unchecked_dtype("score.weight", DType::F32)
        .map_err(|e| mismatch(dir, e))?;
    let dims = w.dims().to_vec();
    if dims.len() != 2 || dims[1] != config.hidden_size || dims[0] == 0 {
        return Err(DecoderError::weights(
            dir,
            format!(
                "`score.weight` has shape {dims:?}, expected [num_labels, {}]",
                config.hidden_size
            ),
        ));
    }
    w.get(0)
        .and_then(|r| r.to_vec1::<f32>())
        .map_err(|e| mismatch(dir, e))
}

fn mismatch(dir: &Path, e: candle_core::Error) -> DecoderError {
    DecoderError::weights(
        dir,
        format!("{e} (do config.json and the weights belong together?)"),
    )
}
