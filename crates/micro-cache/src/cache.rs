//! The embedding cache folder: `embeddings.safetensors`, `pairs.jsonl`, `meta.json`.

use crate::error::{CacheError, Result};
use crate::matrix::Matrix;
use crate::meta::{CacheMeta, Dtype};
use crate::router_input::RouterInput;
use crate::tensors::{self, TensorData, TensorFile};
use micro_data::PrefPair;
use sha2::{Digest, Sha256};
use std::path::Path;

pub const EMBEDDINGS_FILE: &str = "embeddings.safetensors";
pub const PAIRS_FILE: &str = "pairs.jsonl";
pub const META_FILE: &str = "meta.json";
pub const CHOSEN: &str = "chosen_embeddings";
pub const REJECTED: &str = "rejected_embeddings";
/// e(x): the prompt as written (the ArmoRM/MiCRo meaning).
pub const PROMPT: &str = "prompt_embeddings";
/// e(x, c): the prompt with the pair's context inserted; absent when no pair has a context.
pub const CONTEXT_PROMPT: &str = "context_prompt_embeddings";
/// Optional: the backbone's own scalar reward per response (decoder reward models).
pub const CHOSEN_SCORES: &str = "chosen_scores";
pub const REJECTED_SCORES: &str = "rejected_scores";

/// Pairs and their embeddings, row `i` of every array belonging to `pairs[i]`.
#[derive(Clone, Debug)]
pub struct EmbeddingCache {
    pub meta: CacheMeta,
    pub pairs: Vec<PrefPair>,
    /// h(x, a_w): [n, dim]
    pub chosen: Matrix,
    /// h(x, a_l): [n, dim]
    pub rejected: Matrix,
    /// The router input e(x), the prompt alone: [n, prompt_dim]
    pub prompt: Matrix,
    /// The router input e(x, c), the prompt with the pair's context (row i equals `prompt`'s for
    /// a pair without one): [n, prompt_dim]. `None` when the cache carries no contexts, or was
    /// made elsewhere with `prompt_embeddings` alone; then e(x, c) reads as e(x).
    pub context_prompt: Option<Matrix>,
    /// The backbone's scalar scores, when it has a score head.
    pub scores: Option<(Vec<f32>, Vec<f32>)>,
}

/// What training needs, loaded without ever holding both response arrays: h_w - h_l and one of
/// the two router inputs.
#[derive(Clone, Debug)]
pub struct TrainingArrays {
    pub meta: CacheMeta,
    pub pairs: Vec<PrefPair>,
    pub diff: Matrix,
    /// The router input named by `router_input`: [n, prompt_dim].
    pub prompt: Matrix,
    pub router_input: RouterInput,
}

impl EmbeddingCache {
    /// Assembles a cache, checking that every array has one row per pair.
    pub fn new(
        mut meta: CacheMeta,
        pairs: Vec<PrefPair>,
        chosen: Matrix,
        rejected: Matrix,
        prompt: Matrix,
    ) -> Result<Self> {
        let n = pairs.len();
        for (name, m) in [(CHOSEN, &chosen), (REJECTED, &rejected), (PROMPT, &prompt)] {
            if m.rows != n {
                return Err(CacheError::invalid(
                    name,
                    format!("{} rows for {n} pairs", m.rows),
                ));
            }
        }
        if chosen.cols != rejected.cols {
            return Err(CacheError::invalid(
                REJECTED,
                format!(
                    "width {} differs from chosen's {}",
                    rejected.cols, chosen.cols
                ),
            ));
        }
        meta.n = n;
        meta.dim = chosen.cols;
        meta.prompt_dim = prompt.cols;
        meta.pairs_hash = pairs_hash(&pairs);
        Ok(EmbeddingCache {
            meta,
            pairs,
            chosen,
            rejected,
            prompt,
            context_prompt: None,
            scores: None,
        })
    }

    /// Adds the context-augmented router inputs e(x, c) (one row per pair, `prompt`'s width).
    pub fn with_context_prompt(mut self, context_prompt: Matrix) -> Result<Self> {
        if context_prompt.rows != self.pairs.len() || context_prompt.cols != self.prompt.cols {
            return Err(CacheError::invalid(
                CONTEXT_PROMPT,
                format!(
                    "[{}, {}] for {} pairs of width {}: it must match prompt_embeddings",
                    context_prompt.rows,
                    context_prompt.cols,
                    self.pairs.len(),
                    self.prompt.cols
                ),
            ));
        }
        self.context_prompt = Some(context_prompt);
        Ok(self)
    }

    /// The router inputs `which` names: e(x) or e(x, c) (e(x) where the cache has no contexts).
    pub fn router_inputs(&self, which: RouterInput) -> &Matrix {
        match which {
            RouterInput::Prompt => &self.prompt,
            RouterInput::Pair => self.context_prompt.as_ref().unwrap_or(&self.prompt),
        }
    }

    /// e(x, c) of pair `i`: how Stage 2, evaluation and serving route it.
    pub fn routed_input(&self, i: usize) -> &[f32] {
        self.router_inputs(RouterInput::Pair).row(i)
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Loads and validates a cache folder.
    pub fn load(dir: &Path) -> Result<Self> {
        let (meta, pairs, mut file) = open(dir)?;
        let chosen = file.read_matrix(CHOSEN)?;
        let rejected = file.read_matrix(REJECTED)?;
        let prompt = file.read_matrix(PROMPT)?;
        let context_prompt = file
            .tensors
            .contains_key(CONTEXT_PROMPT)
            .then(|| file.read_matrix(CONTEXT_PROMPT))
            .transpose()?;
        let scores = match (
            file.tensors.contains_key(CHOSEN_SCORES),
            file.tensors.contains_key(REJECTED_SCORES),
        ) {
            (true, true) => Some((
                file.read_vector(CHOSEN_SCORES)?,
                file.read_vector(REJECTED_SCORES)?,
            )),
            _ => None,
        };
        let path = file.path().to_path_buf();
        check_rows(
            &path,
            &pairs,
            &[
                (CHOSEN, chosen.rows),
                (REJECTED, rejected.rows),
                (PROMPT, prompt.rows),
            ],
        )?;
        if let Some((c, r)) = &scores {
            check_rows(
                &path,
                &pairs,
                &[(CHOSEN_SCORES, c.len()), (REJECTED_SCORES, r.len())],
            )?;
        }
        check_dims(&path, &meta, chosen.cols, rejected.cols, prompt.cols)?;
        if let Some(cp) = &context_prompt {
            check_rows(&path, &pairs, &[(CONTEXT_PROMPT, cp.rows)])?;
            check_same_width(&path, prompt.cols, cp.cols)?;
        }
        let meta = complete_meta(meta, &pairs, chosen.cols, prompt.cols);
        Ok(EmbeddingCache {
            meta,
            pairs,
            chosen,
            rejected,
            prompt,
            context_prompt,
            scores,
        })
    }

    /// Writes the folder (creating it), tensors stored as `dtype`.
    pub fn save(&self, dir: &Path, dtype: Dtype) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| CacheError::io(dir, e))?;
        let mut list = vec![
            (CHOSEN, TensorData::Matrix(&self.chosen)),
            (REJECTED, TensorData::Matrix(&self.rejected)),
            (PROMPT, TensorData::Matrix(&self.prompt)),
        ];
        if let Some(cp) = &self.context_prompt {
            list.push((CONTEXT_PROMPT, TensorData::Matrix(cp)));
        }
        if let Some((c, r)) = &self.scores {
            list.push((CHOSEN_SCORES, TensorData::Vector(c)));
            list.push((REJECTED_SCORES, TensorData::Vector(r)));
        }
        tensors::write(&dir.join(EMBEDDINGS_FILE), &list, dtype, None)?;
        micro_data::jsonl::write_pairs(&dir.join(PAIRS_FILE), &self.pairs)?;
        let mut meta = self.meta.clone();
        meta.dtype = dtype;
        meta.pairs_hash = pairs_hash(&self.pairs);
        let json = serde_json::to_string_pretty(&meta)
            .map_err(|e| CacheError::invalid(META_FILE, e.to_string()))?;
        std::fs::write(dir.join(META_FILE), json)
            .map_err(|e| CacheError::io(dir.join(META_FILE), e))
    }

    /// The rows `idx`, in that order, as a new cache.
    pub fn subset(&self, idx: &[usize]) -> EmbeddingCache {
        let pairs: Vec<PrefPair> = idx.iter().map(|&i| self.pairs[i].clone()).collect();
        let mut meta = self.meta.clone();
        meta.n = pairs.len();
        meta.pairs_hash = pairs_hash(&pairs);
        EmbeddingCache {
            meta,
            pairs,
            chosen: self.chosen.select_rows(idx),
            rejected: self.rejected.select_rows(idx),
            prompt: self.prompt.select_rows(idx),
            context_prompt: self.context_prompt.as_ref().map(|m| m.select_rows(idx)),
            scores: self.scores.as_ref().map(|(c, r)| {
                (
                    idx.iter().map(|&i| c[i]).collect(),
                    idx.iter().map(|&i| r[i]).collect(),
                )
            }),
        }
    }

    /// Indices of the pairs for which `keep` holds.
    pub fn indices(&self, keep: impl Fn(&PrefPair) -> bool) -> Vec<usize> {
        (0..self.pairs.len())
            .filter(|&i| keep(&self.pairs[i]))
            .collect()
    }

    /// The training view of an in-memory cache (copies the chosen router inputs).
    pub fn training_arrays(&self, router_input: RouterInput) -> TrainingArrays {
        TrainingArrays {
            meta: self.meta.clone(),
            pairs: self.pairs.clone(),
            diff: self.diff(),
            prompt: self.router_inputs(router_input).clone(),
            router_input,
        }
    }

    /// h_w - h_l for every pair: all the heads ever need.
    pub fn diff(&self) -> Matrix {
        let data = self
            .chosen
            .data
            .iter()
            .zip(&self.rejected.data)
            .map(|(c, r)| c - r)
            .collect();
        Matrix::new(self.chosen.rows, self.chosen.cols, data)
    }
}

impl TrainingArrays {
    /// Loads h_w - h_l and the router inputs `router_input` names, streaming the rejected array
    /// into the chosen one so that peak memory is two of the arrays.
    pub fn load(dir: &Path, router_input: RouterInput) -> Result<Self> {
        let (meta, pairs, mut file) = open(dir)?;
        let mut diff = file.read_matrix(CHOSEN)?;
        let cols = diff.cols;
        let rejected_shape = file
            .tensors
            .get(REJECTED)
            .map(|t| t.shape.clone())
            .unwrap_or_default();
        if rejected_shape.len() == 2 && rejected_shape != [diff.rows, cols] {
            return Err(CacheError::invalid(
                file.path(),
                format!("rejected_embeddings has shape {rejected_shape:?} but chosen_embeddings [{}, {cols}]", diff.rows),
            ));
        }
        let (rows, rcols) = file.stream_rows(REJECTED, |first, values| {
            let start = first * cols;
            for (d, r) in diff.data[start..start + values.len()]
                .iter_mut()
                .zip(values)
            {
                *d -= r;
            }
            Ok(())
        })?;
        let path = file.path().to_path_buf();
        check_rows(&path, &pairs, &[(CHOSEN, diff.rows), (REJECTED, rows)])?;
        let name = match router_input {
            RouterInput::Pair if file.tensors.contains_key(CONTEXT_PROMPT) => CONTEXT_PROMPT,
            _ => PROMPT,
        };
        let prompt = file.read_matrix(name)?;
        check_rows(&path, &pairs, &[(name, prompt.rows)])?;
        check_dims(&path, &meta, cols, rcols, prompt.cols)?;
        let meta = complete_meta(meta, &pairs, cols, prompt.cols);
        Ok(TrainingArrays {
            meta,
            pairs,
            diff,
            prompt,
            router_input,
        })
    }
}

/// Reads meta.json (optional) and pairs.jsonl, and opens the tensors.
fn open(dir: &Path) -> Result<(Option<CacheMeta>, Vec<PrefPair>, TensorFile)> {
    if !dir.is_dir() {
        return Err(CacheError::invalid(
            dir,
            "not a cache folder (expected a directory with embeddings.safetensors and pairs.jsonl)",
        ));
    }
    let meta_path = dir.join(META_FILE);
    let meta = if meta_path.exists() {
        let text =
            std::fs::read_to_string(&meta_path).map_err(|e| CacheError::io(&meta_path, e))?;
        Some(
            serde_json::from_str::<CacheMeta>(&text)
                .map_err(|e| CacheError::invalid(&meta_path, format!("invalid meta.json: {e}")))?,
        )
    } else {
        None
    };
    let pairs_path = dir.join(PAIRS_FILE);
    if !pairs_path.exists() {
        return Err(CacheError::invalid(
            &pairs_path,
            "missing: a cache needs the pairs' metadata, one JSON object per row",
        ));
    }
    let pairs = micro_data::jsonl::read_pairs(&pairs_path)?;
    let tensors_path = dir.join(EMBEDDINGS_FILE);
    if !tensors_path.exists() {
        return Err(CacheError::invalid(
            &tensors_path,
            "missing: expected chosen_embeddings, rejected_embeddings, prompt_embeddings",
        ));
    }
    let file = TensorFile::open(&tensors_path)?;
    Ok((meta, pairs, file))
}

fn check_rows(path: &Path, pairs: &[PrefPair], arrays: &[(&str, usize)]) -> Result<()> {
    for (name, rows) in arrays {
        if *rows != pairs.len() {
            return Err(CacheError::invalid(
                path,
                format!("tensor `{name}` has {rows} rows but pairs.jsonl has {} pairs: they must match row for row", pairs.len()),
            ));
        }
    }
    Ok(())
}

fn check_dims(
    path: &Path,
    meta: &Option<CacheMeta>,
    chosen: usize,
    rejected: usize,
    prompt: usize,
) -> Result<()> {
    if chosen != rejected {
        return Err(CacheError::invalid(
            path,
            format!("chosen_embeddings has width {chosen} but rejected_embeddings {rejected}"),
        ));
    }
    if chosen == 0 || prompt == 0 {
        return Err(CacheError::invalid(path, "embeddings have width 0"));
    }
    if let Some(m) = meta {
        if m.dim != 0 && m.dim != chosen {
            return Err(CacheError::invalid(
                path,
                format!(
                    "meta.json says dim {} but the tensors have width {chosen}",
                    m.dim
                ),
            ));
        }
        if m.prompt_dim != 0 && m.prompt_dim != prompt {
            return Err(CacheError::invalid(
                path,
                format!(
                    "meta.json says prompt_dim {} but prompt_embeddings has width {prompt}",
                    m.prompt_dim
                ),
            ));
        }
    }
    Ok(())
}

fn check_same_width(path: &Path, prompt: usize, context_prompt: usize) -> Result<()> {
    if prompt != context_prompt {
        return Err(CacheError::invalid(
            path,
            format!("{CONTEXT_PROMPT} has width {context_prompt} but {PROMPT} {prompt}: both are router inputs of one backbone"),
        ));
    }
    Ok(())
}

/// Fills what a minimal (or absent) meta.json leaves out.
fn complete_meta(
    meta: Option<CacheMeta>,
    pairs: &[PrefPair],
    dim: usize,
    prompt_dim: usize,
) -> CacheMeta {
    let mut meta = meta.unwrap_or_else(|| CacheMeta {
        backbone: crate::meta::BackboneInfo {
            name: "external".into(),
            kind: "external".into(),
            ..Default::default()
        },
        ..Default::default()
    });
    meta.dim = dim;
    meta.prompt_dim = prompt_dim;
    meta.n = pairs.len();
    if meta.pairs_hash.is_empty() {
        meta.pairs_hash = pairs_hash(pairs);
    }
    meta
}

/// sha256 over the pairs in canonical JSONL form (our serialisation, not the file's bytes, so
/// reformatting pairs.jsonl does not change it).
pub fn pairs_hash(pairs: &[PrefPair]) -> String {
    let mut h = Sha256::new();
    for p in pairs {
        h.update(serde_json::to_vec(p).unwrap_or_default());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}
