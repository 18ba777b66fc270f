//! `micro.Cache`: an embedding cache (micro-cache's [`EmbeddingCache`]), opened from a folder
//! or built from numpy arrays, and saved as the folder `micro embed` writes.

use crate::arrays::{self, to_py};
use crate::error::{opened, Error, OrRaise};
use micro_cache::{BackboneInfo, CacheMeta, Dtype, EmbeddingCache, Matrix};
use micro_data::{PrefPair, Prompt, Split, UnknownValue};
use numpy::PyArray2;
use pyo3::prelude::*;
use std::path::PathBuf;

/// Preference pairs and their embeddings: `chosen` and `rejected` (the reward features
/// h(x, a), `[n, dim]`), `prompt` (the router input e(x), `[n, prompt_dim]`) and, where pairs
/// carry contexts, `context_prompt` (e(x, c)), with each pair's prompt, context, attribute,
/// user and split.
///
/// Open a folder with `Cache.load(path)`, or build one with `Cache.from_arrays(...)`; `save`
/// writes the folder `micro embed` writes (`embeddings.safetensors`, `pairs.jsonl`,
/// `meta.json`), which the `micro` commands read.
#[pyclass(module = "micro", name = "Cache", frozen)]
pub struct Cache {
    pub inner: EmbeddingCache,
}

/// The per-pair fields `from_arrays` takes, as given.
#[derive(Default)]
struct Fields {
    prompts: Option<Vec<Prompt>>,
    contexts: Option<Vec<Option<String>>>,
    attributes: Option<Vec<Option<String>>>,
    users: Option<Vec<Option<String>>>,
    splits: Option<Vec<Option<String>>>,
}

impl Fields {
    /// The pairs of `n` rows. A pair without a prompt gets its row number as its prompt, so
    /// that each is a prompt of its own where Stage 1 holds out or folds pairs by prompt.
    fn pairs(self, n: usize) -> Result<Vec<PrefPair>, Error> {
        let check = |name: &'static str, got: Option<usize>| match got {
            Some(got) if got != n => Err(Error::Length {
                name,
                got,
                pairs: n,
            }),
            _ => Ok(()),
        };
        check("prompts", self.prompts.as_ref().map(Vec::len))?;
        check("contexts", self.contexts.as_ref().map(Vec::len))?;
        check("attributes", self.attributes.as_ref().map(Vec::len))?;
        check("users", self.users.as_ref().map(Vec::len))?;
        check("splits", self.splits.as_ref().map(Vec::len))?;
        let at = |v: &Option<Vec<Option<String>>>, i: usize| v.as_ref().and_then(|v| v[i].clone());
        (0..n)
            .map(|i| {
                let prompt = match &self.prompts {
                    Some(p) => p[i].clone(),
                    None => Prompt::Text(i.to_string()),
                };
                Ok(PrefPair {
                    prompt,
                    context: at(&self.contexts, i),
                    attribute: at(&self.attributes, i),
                    user_id: at(&self.users, i),
                    split: at(&self.splits, i).map(|s| split(&s)).transpose()?,
                    ..Default::default()
                })
            })
            .collect()
    }
}

fn split(s: &str) -> Result<Split, UnknownValue> {
    match s.to_ascii_lowercase().as_str() {
        "train" => Ok(Split::Train),
        "test" => Ok(Split::Test),
        _ => Err(UnknownValue::new("split", s, "train or test")),
    }
}

#[pymethods]
impl Cache {
    /// Opens a cache folder (from `micro embed`, `micro synth` or `Cache.save`).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let loaded = py.detach(|| EmbeddingCache::load(&path));
        Ok(Cache {
            inner: opened(&path, loaded)?,
        })
    }

    /// A cache from numpy arrays, one row per pair: `chosen`, `rejected` `[n, dim]` and
    /// `prompt` `[n, prompt_dim]`, optionally `context_prompt` (e(x, c), `[n, prompt_dim]`,
    /// equal to `prompt`'s row for a pair without a context). Each array is copied once into
    /// the cache, whatever its float type or layout.
    ///
    /// Per-pair lists (each of n entries, `None` for a pair without one): `prompts` (text, or
    /// a list of `{"role", "content"}` messages; pairs of one prompt are held out and
    /// cross-fitted together), `contexts`, `attributes` (evaluation groups), `users` (user
    /// ids) and `splits` (`"train"` or `"test"`). `backbone` names what made the vectors: a
    /// model trained on this cache refuses a cache from another backbone.
    #[staticmethod]
    #[pyo3(signature = (chosen, rejected, prompt, *, context_prompt=None, prompts=None, contexts=None, attributes=None, users=None, splits=None, backbone="external"))]
    #[allow(clippy::too_many_arguments)]
    fn from_arrays(
        chosen: &Bound<'_, PyAny>,
        rejected: &Bound<'_, PyAny>,
        prompt: &Bound<'_, PyAny>,
        context_prompt: Option<&Bound<'_, PyAny>>,
        prompts: Option<&Bound<'_, PyAny>>,
        contexts: Option<Vec<Option<String>>>,
        attributes: Option<Vec<Option<String>>>,
        users: Option<Vec<Option<String>>>,
        splits: Option<Vec<Option<String>>>,
        backbone: &str,
    ) -> PyResult<Self> {
        let chosen = arrays::matrix(chosen, "chosen")?;
        let rejected = arrays::matrix(rejected, "rejected")?;
        let prompt = arrays::matrix(prompt, "prompt")?;
        let context_prompt = context_prompt
            .map(|a| arrays::matrix(a, "context_prompt"))
            .transpose()?;
        let fields = Fields {
            prompts: prompts.map(|p| arrays::from_py(p, "prompts")).transpose()?,
            contexts,
            attributes,
            users,
            splits,
        };
        let pairs = fields.pairs(chosen.rows).or_raise()?;
        Ok(Cache {
            inner: assemble(backbone, pairs, [chosen, rejected, prompt], context_prompt)
                .or_raise()?,
        })
    }

    /// Writes the cache folder (creating it), the tensors stored as `dtype`: `"f32"`, `"f16"`
    /// or `"bf16"`.
    #[pyo3(signature = (path, *, dtype="f32"))]
    fn save(&self, py: Python<'_>, path: PathBuf, dtype: &str) -> PyResult<()> {
        let dtype: Dtype = dtype.parse().or_raise()?;
        py.detach(|| self.inner.save(&path, dtype)).or_raise()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Width of the reward features h(x, a).
    #[getter]
    fn dim(&self) -> usize {
        self.inner.meta.dim
    }

    /// Width of the router inputs e(x), e(x, c).
    #[getter]
    fn prompt_dim(&self) -> usize {
        self.inner.meta.prompt_dim
    }

    /// `meta.json` as a dict: the backbone, how the text became vectors, the pairs' hash.
    #[getter]
    fn meta<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.meta)
    }

    /// The pairs as `pairs.jsonl` holds them: one dict per row.
    #[getter]
    fn pairs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.pairs)
    }

    /// h(x, a_w), `[n, dim]` (a copy).
    #[getter]
    fn chosen<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        arrays::matrix_copy(py, &self.inner.chosen)
    }

    /// h(x, a_l), `[n, dim]` (a copy).
    #[getter]
    fn rejected<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        arrays::matrix_copy(py, &self.inner.rejected)
    }

    /// e(x), `[n, prompt_dim]` (a copy).
    #[getter]
    fn prompt<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        arrays::matrix_copy(py, &self.inner.prompt)
    }

    /// e(x, c), `[n, prompt_dim]` (a copy), or `None` when the cache holds no contexts.
    #[getter]
    fn context_prompt<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArray2<f32>>>> {
        (self.inner.context_prompt.as_ref())
            .map(|m| arrays::matrix_copy(py, m))
            .transpose()
    }

    fn __repr__(&self) -> String {
        let m = &self.inner.meta;
        format!(
            "Cache(pairs={}, dim={}, prompt_dim={}, backbone={:?}, contexts={})",
            self.inner.len(),
            m.dim,
            m.prompt_dim,
            m.backbone.name,
            if self.inner.context_prompt.is_some() {
                "True"
            } else {
                "False"
            }
        )
    }
}

/// The cache of `pairs` and their arrays (chosen, rejected, prompt), refused where a row count
/// or a width disagrees.
fn assemble(
    backbone: &str,
    pairs: Vec<PrefPair>,
    [chosen, rejected, prompt]: [Matrix; 3],
    context_prompt: Option<Matrix>,
) -> Result<EmbeddingCache, Error> {
    let meta = CacheMeta {
        backbone: BackboneInfo {
            name: backbone.to_string(),
            kind: "external".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let cache = EmbeddingCache::new(meta, pairs, chosen, rejected, prompt)?;
    Ok(match context_prompt {
        Some(cp) => cache.with_context_prompt(cp)?,
        None => cache,
    })
}
