//! Named f32 tensors from one or more safetensors files (memory-mapped, converted on read).

use crate::error::{EmbedError, Result};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::PathBuf;

/// The weight files of a model, opened.
pub struct WeightStore {
    maps: Vec<(PathBuf, Mmap)>,
    /// Tensor name -> index into `maps`.
    index: HashMap<String, usize>,
    /// A prefix every name carries (`bert.` in checkpoints saved from `BertFor*` heads).
    prefix: String,
}

impl WeightStore {
    pub fn open(files: &[PathBuf]) -> Result<Self> {
        let mut maps = Vec::with_capacity(files.len());
        let mut index = HashMap::new();
        for (i, path) in files.iter().enumerate() {
            let file = std::fs::File::open(path).map_err(|e| EmbedError::io(path, e))?;
            // SAFETY: the file is opened read-only; the model folder is not modified while we run.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| EmbedError::io(path, e))?;
            let st = SafeTensors::deserialize(&map).map_err(|e| {
                EmbedError::invalid(path, format!("not a valid safetensors file: {e}"))
            })?;
            for name in st.names() {
                index.insert(name.to_string(), i);
            }
            maps.push((path.clone(), map));
        }
        Ok(WeightStore {
            maps,
            index,
            prefix: String::new(),
        })
    }

    /// Uses `prefix` for every later lookup when the files' names carry it.
    pub fn detect_prefix(&mut self, probe: &str, candidates: &[&str]) {
        if self.index.contains_key(probe) {
            return;
        }
        if let Some(p) = candidates
            .iter()
            .find(|p| self.index.contains_key(&format!("{p}{probe}")))
        {
            self.prefix = p.to_string();
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(&format!("{}{name}", self.prefix))
    }

    /// The tensor `name` as f32 with its shape, checked against `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let full = format!("{}{name}", self.prefix);
        let &i = self.index.get(&full).ok_or_else(|| {
            EmbedError::invalid(
                &self.maps[0].0,
                format!("missing tensor `{full}`: the weights do not match a BERT encoder"),
            )
        })?;
        let (path, map) = &self.maps[i];
        let st =
            SafeTensors::deserialize(map).map_err(|e| EmbedError::invalid(path, e.to_string()))?;
        let view = st
            .tensor(&full)
            .map_err(|e| EmbedError::invalid(path, e.to_string()))?;
        if view.shape() != shape {
            return Err(EmbedError::invalid(
                path,
                format!(
                    "tensor `{full}` has shape {:?} but config.json implies {shape:?}",
                    view.shape()
                ),
            ));
        }
        to_f32(view.dtype(), view.data()).ok_or_else(|| {
            EmbedError::invalid(
                path,
                format!(
                    "tensor `{full}` has dtype {:?}; supported: F32, F16, BF16",
                    view.dtype()
                ),
            )
        })
    }
}

fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    use half::{bf16, f16};
    Some(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}
