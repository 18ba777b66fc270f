//! Work in progress of `micro embed`: finished chunks under `CACHE/.partial/`, with a manifest
//! that says which input and which backbone they belong to, so an interrupted run picks up
//! where it stopped and a run on other input never reuses them.

use crate::error::{EmbedError, Result};
use micro_cache::tensors::{self, TensorData, TensorFile};
use micro_cache::{Dtype, Matrix};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const PARTIAL_DIR: &str = ".partial";
const MANIFEST: &str = "manifest.json";

/// Identifies a run: chunks are reused only under an identical manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub pairs_hash: String,
    pub backbone: micro_cache::BackboneInfo,
    pub description: crate::Description,
    pub chunk_size: usize,
    pub response_chunks: usize,
    pub prompt_chunks: usize,
}

/// One finished chunk.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub features: Matrix,
    pub scores: Option<Vec<f32>>,
    pub truncated: usize,
}

/// The `.partial` folder of a cache being written.
pub struct Partial {
    dir: PathBuf,
}

impl Partial {
    /// Opens (or starts) the partial store for `manifest`; returns it and whether an earlier
    /// run's chunks were found but belonged to other input (and were discarded).
    pub fn open(cache_dir: &Path, manifest: &Manifest) -> Result<(Partial, bool)> {
        let dir = cache_dir.join(PARTIAL_DIR);
        let path = dir.join(MANIFEST);
        let mut discarded = false;
        if path.is_file() {
            let same = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str::<Manifest>(&t).ok())
                .is_some_and(|m| &m == manifest);
            if !same {
                std::fs::remove_dir_all(&dir).map_err(|e| EmbedError::io(&dir, e))?;
                discarded = true;
            }
        }
        std::fs::create_dir_all(&dir).map_err(|e| EmbedError::io(&dir, e))?;
        if !path.is_file() {
            let json = serde_json::to_string_pretty(manifest)
                .map_err(|e| EmbedError::io(&path, e.into()))?;
            std::fs::write(&path, json).map_err(|e| EmbedError::io(&path, e))?;
        }
        Ok((Partial { dir }, discarded))
    }

    fn path(&self, kind: &str, index: usize) -> PathBuf {
        self.dir.join(format!("{kind}-{index:06}.safetensors"))
    }

    /// A chunk written by an earlier run, if complete and of `rows` rows. A damaged file (the
    /// run died mid-write before the rename) is ignored and recomputed.
    pub fn load(&self, kind: &str, index: usize, rows: usize) -> Option<Chunk> {
        let path = self.path(kind, index);
        if !path.is_file() {
            return None;
        }
        let mut f = TensorFile::open(&path).ok()?;
        let features = f.read_matrix("features").ok()?;
        let scores = if f.tensors.contains_key("scores") {
            Some(f.read_vector("scores").ok()?)
        } else {
            None
        };
        let truncated = f
            .metadata
            .get("truncated")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let ok = features.rows == rows && scores.as_ref().is_none_or(|s| s.len() == rows);
        ok.then_some(Chunk {
            features,
            scores,
            truncated,
        })
    }

    /// Stores a finished chunk (f32, written to a temporary file then renamed).
    pub fn save(&self, kind: &str, index: usize, chunk: &Chunk) -> Result<()> {
        let mut list = vec![("features", TensorData::Matrix(&chunk.features))];
        if let Some(s) = &chunk.scores {
            list.push(("scores", TensorData::Vector(s)));
        }
        let meta = HashMap::from([("truncated".to_string(), chunk.truncated.to_string())]);
        tensors::write(&self.path(kind, index), &list, Dtype::F32, Some(meta))?;
        Ok(())
    }

    /// Removes the store once the cache is final.
    pub fn finish(self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir).map_err(|e| EmbedError::io(&self.dir, e))
    }
}
