//! `micro.Backbone`: micro's frozen transformers (BERT-family encoders, Llama/Qwen2 decoders)
//! from a Hugging Face model folder, embedding text into numpy arrays or a cache folder.

use crate::arrays::{self, from_py, to_py};
use crate::cache::Cache;
use crate::error::{opened, OrRaise};
use crate::job::{self, Event};
use micro_cache::{Dtype, EmbeddingCache};
use micro_data::{PrefPair, Prompt};
use micro_embed::{BackboneOptions, EmbedOptions, Item, PromptItem};
use numpy::PyArray2;
use pyo3::prelude::*;
use std::path::PathBuf;

/// A backbone loaded from a model folder (config.json, model.safetensors, tokenizer.json), as
/// `micro embed --model` loads it; the keywords are `micro embed`'s flags with their defaults.
/// Embedding releases the GIL.
#[pyclass(module = "micro", name = "Backbone", frozen)]
pub struct Backbone {
    inner: Box<dyn micro_embed::Backbone>,
}

/// Prompts (text, or lists of `{"role", "content"}` messages) and optional contexts, checked to
/// be one per row.
fn prompts_and_contexts(
    prompts: &Bound<'_, PyAny>,
    contexts: Option<Vec<Option<String>>>,
    n: Option<usize>,
) -> PyResult<(Vec<Prompt>, Vec<Option<String>>)> {
    let prompts: Vec<Prompt> = from_py(prompts, "prompts")?;
    let n = n.unwrap_or(prompts.len());
    let contexts = contexts.unwrap_or_else(|| vec![None; n]);
    for (name, got) in [("prompts", prompts.len()), ("contexts", contexts.len())] {
        if got != n {
            return Err(crate::error::Error::Length {
                name,
                got,
                pairs: n,
            }
            .into());
        }
    }
    Ok((prompts, contexts))
}

#[pymethods]
impl Backbone {
    #[allow(clippy::too_many_arguments)]
    #[staticmethod]
    #[pyo3(signature = (path, *, context="prefix", response_text="last-turn", prompt_text="last-turn", batch_size=BackboneOptions::default().batch_size, max_len=None, device="cpu"))]
    #[pyo3(
        text_signature = "(path, *, context='prefix', response_text='last-turn', prompt_text='last-turn', batch_size=32, max_len=None, device='cpu')"
    )]
    fn load(
        py: Python<'_>,
        path: PathBuf,
        context: &str,
        response_text: &str,
        prompt_text: &str,
        batch_size: usize,
        max_len: Option<usize>,
        device: &str,
    ) -> PyResult<Self> {
        let opts = BackboneOptions {
            context: context.parse().or_raise()?,
            response_text: response_text.parse().or_raise()?,
            prompt_text: prompt_text.parse().or_raise()?,
            batch_size,
            max_len,
            device: device.parse().or_raise()?,
        };
        let loaded = py.detach(|| micro_embed::load_backbone(&path, &opts));
        Ok(Backbone {
            inner: opened(&path, loaded)?,
        })
    }

    /// Width of the reward features h(x, a).
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// Width of the router inputs e(x, c).
    #[getter]
    fn prompt_dim(&self) -> usize {
        self.inner.prompt_dim()
    }

    /// What a cache's `meta.json` records of it: name, kind, architecture, weights' sha256.
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.info())
    }

    /// How it turns text into vectors: pooling, maximum length, context insertion, texts.
    #[getter]
    fn description<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.describe())
    }

    /// The reward features h(x, a) of each response to its prompt (and context): `[n, dim]`.
    #[pyo3(signature = (prompts, responses, contexts=None))]
    fn embed_responses<'py>(
        &self,
        py: Python<'py>,
        prompts: &Bound<'py, PyAny>,
        responses: Vec<String>,
        contexts: Option<Vec<Option<String>>>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (prompts, contexts) = prompts_and_contexts(prompts, contexts, Some(responses.len()))?;
        let items: Vec<Item<'_>> = (0..responses.len())
            .map(|i| Item {
                prompt: &prompts[i],
                context: contexts[i].as_deref(),
                response: &responses[i],
            })
            .collect();
        let features = job::run(py, None, |_| Ok(self.inner.embed_responses(&items)?))?.features;
        arrays::array2(py, features.rows, features.cols, features.data)
    }

    /// The router inputs of each prompt: e(x), or e(x, c) with its context: `[n, prompt_dim]`.
    #[pyo3(signature = (prompts, contexts=None))]
    fn embed_prompts<'py>(
        &self,
        py: Python<'py>,
        prompts: &Bound<'py, PyAny>,
        contexts: Option<Vec<Option<String>>>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (prompts, contexts) = prompts_and_contexts(prompts, contexts, None)?;
        let items: Vec<PromptItem<'_>> = (prompts.iter().zip(&contexts))
            .map(|(prompt, c)| PromptItem {
                prompt,
                context: c.as_deref(),
            })
            .collect();
        let features = job::run(py, None, |_| Ok(self.inner.embed_prompts(&items)?))?.features;
        arrays::array2(py, features.rows, features.cols, features.data)
    }

    /// Embeds preference pairs (dicts with `micro`'s pair fields: `prompt`, `chosen`,
    /// `rejected`, and optionally `context`, `attribute`, `user_id`, `split`...) into the cache
    /// folder `output`, as `micro embed` does (repeated texts embedded once; an interrupted run
    /// into the same folder resumes), and returns the cache. `progress` is called with
    /// `{"event": "embedded", "done", "total"}` (texts).
    #[pyo3(signature = (pairs, output, *, dtype="f32", progress=None))]
    fn embed_pairs(
        &self,
        py: Python<'_>,
        pairs: &Bound<'_, PyAny>,
        output: PathBuf,
        dtype: &str,
        progress: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Cache> {
        let pairs: Vec<PrefPair> = from_py(pairs, "pairs")?;
        let opts = EmbedOptions {
            dtype: dtype.parse::<Dtype>().or_raise()?,
            ..EmbedOptions::default()
        };
        let inner = job::run(py, progress, |tx| {
            micro_embed::embed_to_cache(self.inner.as_ref(), pairs, &output, &opts, &mut |t| {
                let _ = tx.send(Event::Embedded {
                    done: t.done,
                    total: t.total,
                });
            })?;
            Ok(EmbeddingCache::load(&output)?)
        })?;
        Ok(Cache { inner })
    }

    fn __repr__(&self) -> String {
        let info = self.inner.info();
        format!(
            "Backbone(name={:?}, kind={:?}, dim={}, prompt_dim={})",
            info.name,
            info.kind,
            self.inner.dim(),
            self.inner.prompt_dim()
        )
    }
}
