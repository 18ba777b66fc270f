//! Test helpers shared by the integration tests: an in-process server over a fresh SQLite
//! store, and a small deterministic text backbone that records what it is asked to embed.

#![allow(dead_code)] // each test file uses a different part

use micro_cache::Matrix;
use micro_embed::{
    prompt_with_context, Backbone, Capabilities, ContextMode, Description, Family, Item,
    PromptFeatures, PromptItem, ResponseFeatures,
};
use micro_route::Rate;
use micro_serve::store;
use micro_serve::{add_key, AppState, Limits, Running, Scorer, StateStore};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A runtime, a store and the keys of one test.
pub struct Fixture {
    pub rt: tokio::runtime::Runtime,
    pub store: Arc<dyn StateStore>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        Self::open(None)
    }

    /// A fixture over the store at `url`, or a fresh SQLite file when `None`.
    pub fn open(url: Option<&str>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite").display().to_string();
        let store = rt.block_on(store::open(url.unwrap_or(&path))).unwrap();
        Fixture {
            rt,
            store,
            _dir: dir,
        }
    }

    pub fn key(&self, tenant: &str) -> String {
        self.rt
            .block_on(add_key(self.store.as_ref(), tenant, "test"))
            .unwrap()
            .0
    }

    pub fn start(&self, scorer: Scorer, limits: Limits) -> Running {
        let state = Arc::new(AppState::new(
            scorer,
            self.store.clone(),
            limits,
            Rate::Fixed(0.5),
        ));
        self.rt
            .block_on(micro_serve::start(state, "127.0.0.1:0"))
            .unwrap()
    }

    pub fn stop(&self, server: Running) {
        self.rt.block_on(server.stop()).unwrap();
    }
}

/// A stand-in text backbone: each text becomes a normalised bag of hashed character bigrams,
/// so different texts get different vectors and equal texts equal ones. It records the texts
/// it embedded and the calls, and may sleep in each call to stand for a real forward pass.
/// A text that makes [`BagBackbone`] panic.
pub const PANIC: &str = "<make the backbone panic>";

pub struct BagBackbone {
    pub dim: usize,
    pub delay: Duration,
    pub texts: Mutex<Vec<String>>,
    /// Texts per call, in call order.
    pub calls: Mutex<Vec<usize>>,
}

impl BagBackbone {
    pub fn new(dim: usize, delay: Duration) -> Arc<Self> {
        Arc::new(BagBackbone {
            dim,
            delay,
            texts: Mutex::default(),
            calls: Mutex::default(),
        })
    }

    fn embed(&self, texts: Vec<String>) -> Matrix {
        std::thread::sleep(self.delay);
        // The tests of a failing backbone send this text.
        assert!(
            !texts.iter().any(|t| t.contains(PANIC)),
            "the backbone panics on {PANIC}"
        );
        let mut m = Matrix::zeros(texts.len(), self.dim);
        for (i, t) in texts.iter().enumerate() {
            let row = m.row_mut(i);
            let chars: Vec<char> = t.chars().collect();
            for w in chars.windows(2) {
                let h = (w[0] as usize).wrapping_mul(31).wrapping_add(w[1] as usize);
                row[h % self.dim] += 1.0;
            }
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-6);
            row.iter_mut().for_each(|v| *v /= norm);
        }
        self.calls.lock().unwrap().push(texts.len());
        self.texts.lock().unwrap().extend(texts);
        m
    }
}

impl Backbone for BagBackbone {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            family: Family::Encoder,
            response_uses_context: true,
            scores: false,
        }
    }

    fn info(&self) -> micro_cache::BackboneInfo {
        micro_cache::BackboneInfo {
            name: "bag".into(),
            kind: Family::Encoder.as_str().into(),
            ..Default::default()
        }
    }

    fn describe(&self) -> Description {
        Description::default()
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed_responses(&self, items: &[Item<'_>]) -> micro_embed::Result<ResponseFeatures> {
        let texts = items
            .iter()
            .map(|i| format!("{} || {}", i.prompt.to_text(), i.response))
            .collect();
        Ok(ResponseFeatures {
            features: self.embed(texts),
            ..Default::default()
        })
    }

    fn embed_prompts(&self, prompts: &[PromptItem<'_>]) -> micro_embed::Result<PromptFeatures> {
        let texts = prompts
            .iter()
            .map(|p| prompt_with_context(p.prompt, p.context, ContextMode::Prefix))
            .collect();
        Ok(PromptFeatures {
            features: self.embed(texts),
            truncated: 0,
        })
    }
}
