//! `embed_to_cache` with a cheap deterministic backbone: deduplication, resuming after an
//! interruption, shards and their merge, f16 storage, both router inputs, decoder scores.

use micro_cache::{Dtype, EmbeddingCache, Matrix, RouterInput, TrainingArrays};
use micro_data::PrefPair;
use micro_embed::{
    embed_to_cache, merge_caches, Backbone, Capabilities, ContextMode, Description, EmbedOptions,
    Family, Item, PromptFeatures, PromptItem, ResponseFeatures, Result, Shard, Tick,
};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Features are simple functions of the text, so every row can be checked exactly.
struct Fake {
    decoder: bool,
    calls: AtomicUsize,
    /// Fail on this call (1-based), simulating a crash mid-run.
    fail_at: Option<usize>,
}

fn vec_of(text: &str) -> Vec<f32> {
    let bytes = text.as_bytes();
    vec![
        bytes.len() as f32,
        bytes.iter().map(|&b| b as f32).sum::<f32>(),
        bytes.first().map_or(0.0, |&b| b as f32),
    ]
}

impl Fake {
    fn new(decoder: bool) -> Self {
        Fake {
            decoder,
            calls: AtomicUsize::new(0),
            fail_at: None,
        }
    }
    fn family(&self) -> Family {
        if self.decoder {
            Family::Decoder
        } else {
            Family::Encoder
        }
    }
    fn call(&self) -> Result<()> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if Some(n) == self.fail_at {
            // A backbone that fails mid-run, as a panicked forward pass leaves the encoder.
            return Err(micro_embed::EmbedError::Poisoned);
        }
        Ok(())
    }
}

impl Backbone for Fake {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            family: self.family(),
            response_uses_context: self.decoder,
            scores: false,
        }
    }
    fn info(&self) -> micro_cache::BackboneInfo {
        micro_cache::BackboneInfo {
            name: "fake".into(),
            kind: self.family().as_str().into(),
            ..Default::default()
        }
    }
    fn describe(&self) -> Description {
        Description {
            pooling: "sum".into(),
            normalized: false,
            max_len: 8,
            context: ContextMode::Prefix,
            response_text: "transcript".into(),
            prompt_text: "transcript".into(),
        }
    }
    fn dim(&self) -> usize {
        3
    }
    fn embed_responses(&self, items: &[Item<'_>]) -> Result<ResponseFeatures> {
        self.call()?;
        let rows: Vec<Vec<f32>> = items
            .iter()
            .map(|it| vec_of(&format!("{}|{}", it.prompt.to_text(), it.response)))
            .collect();
        let scores = self
            .decoder
            .then(|| items.iter().map(|it| it.response.len() as f32).collect());
        Ok(ResponseFeatures {
            features: Matrix::from_rows(&rows),
            scores,
            truncated: 0,
        })
    }
    fn embed_prompts(&self, prompts: &[PromptItem<'_>]) -> Result<PromptFeatures> {
        self.call()?;
        let rows: Vec<Vec<f32>> = prompts
            .iter()
            .map(|p| {
                vec_of(&micro_embed::prompt_with_context(
                    p.prompt,
                    p.context,
                    ContextMode::Prefix,
                ))
            })
            .collect();
        Ok(PromptFeatures {
            features: Matrix::from_rows(&rows),
            truncated: 1,
        })
    }
}

fn pairs() -> Vec<PrefPair> {
    (0..23)
        .map(|i| {
            let mut p = PrefPair::new(
                format!("prompt {}", i % 5),
                format!("answer {}", i % 7),
                format!("answer {}", (i + 3) % 7),
            );
            p.context = (i % 2 == 0).then(|| format!("criterion {}", i % 3));
            p.id = Some(i.to_string());
            p
        })
        .collect()
}

fn check_rows(cache: &EmbeddingCache) {
    for (i, p) in cache.pairs.iter().enumerate() {
        assert_eq!(
            cache.chosen.row(i),
            vec_of(&format!("{}|{}", p.prompt.to_text(), p.chosen))
        );
        assert_eq!(
            cache.rejected.row(i),
            vec_of(&format!("{}|{}", p.prompt.to_text(), p.rejected))
        );
        let want =
            micro_embed::prompt_with_context(&p.prompt, p.context.as_deref(), ContextMode::Prefix);
        assert_eq!(cache.routed_input(i), vec_of(&want), "e(x, c)");
        assert_eq!(
            cache.prompt.row(i),
            vec_of(&p.prompt.to_text()),
            "e(x) is the prompt as written"
        );
    }
}

fn opts(chunk: usize) -> EmbedOptions {
    EmbedOptions {
        chunk_size: chunk,
        ..Default::default()
    }
}

#[test]
fn every_pair_gets_its_rows_and_repeats_are_embedded_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut ticks = Vec::new();
    let s = embed_to_cache(
        &Fake::new(false),
        pairs(),
        dir.path(),
        &opts(4),
        &mut |t: Tick| ticks.push(t),
    )
    .unwrap();
    assert_eq!(s.pairs, 23);
    let ps = pairs();
    let responses: std::collections::HashSet<(String, &str)> = ps
        .iter()
        .flat_map(|p| {
            [
                (p.prompt.to_text(), p.chosen.as_str()),
                (p.prompt.to_text(), p.rejected.as_str()),
            ]
        })
        .collect();
    let prompts: std::collections::HashSet<(String, Option<&str>)> = ps
        .iter()
        .flat_map(|p| {
            [
                (p.prompt.to_text(), p.context.as_deref()),
                (p.prompt.to_text(), None),
            ]
        })
        .collect();
    assert_eq!(
        (s.distinct_responses, s.distinct_prompts),
        (responses.len(), prompts.len())
    );
    assert!(s.distinct_responses < 46, "46 responses, many repeated");
    let last = ticks.last().unwrap();
    assert_eq!(
        (last.done, last.total),
        (
            s.distinct_responses + s.distinct_prompts,
            s.distinct_responses + s.distinct_prompts
        )
    );
    let cache = EmbeddingCache::load(dir.path()).unwrap();
    assert_eq!(cache.pairs, pairs());
    check_rows(&cache);
    assert_eq!(cache.meta.backbone.name, "fake");
    assert_eq!(cache.meta.context_insertion.as_deref(), Some("prefix"));
    assert_eq!(
        cache.meta.extra["embed"]["truncated_prompts"],
        s.distinct_prompts.div_ceil(4)
    );
    assert!(
        !dir.path().join(micro_embed::PARTIAL_DIR).exists(),
        "the partial store is removed at the end"
    );
    // The core's training loader reads it.
    let t = TrainingArrays::load(dir.path(), RouterInput::Prompt).unwrap();
    assert_eq!((t.diff.rows, t.diff.cols, t.prompt.cols), (23, 3, 3));
    assert_eq!(t.prompt, cache.prompt);
}

#[test]
fn an_interrupted_run_resumes_from_its_finished_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let crashing = Fake {
        fail_at: Some(4),
        ..Fake::new(false)
    };
    let err = embed_to_cache(&crashing, pairs(), dir.path(), &opts(4), &mut |_| {}).unwrap_err();
    assert!(matches!(err, micro_embed::EmbedError::Poisoned), "{err}");
    assert!(dir
        .path()
        .join(micro_embed::PARTIAL_DIR)
        .join("manifest.json")
        .is_file());
    let again = Fake::new(false);
    let s = embed_to_cache(&again, pairs(), dir.path(), &opts(4), &mut |_| {}).unwrap();
    assert_eq!(
        s.resumed_texts, 12,
        "three chunks of 4 were done before the crash"
    );
    let total_chunks = s.distinct_responses.div_ceil(4) + s.distinct_prompts.div_ceil(4);
    assert_eq!(again.calls.load(Ordering::SeqCst), total_chunks - 3);
    check_rows(&EmbeddingCache::load(dir.path()).unwrap());
}

#[test]
fn unfinished_work_for_other_input_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let crashing = Fake {
        fail_at: Some(2),
        ..Fake::new(false)
    };
    assert!(embed_to_cache(&crashing, pairs(), dir.path(), &opts(4), &mut |_| {}).is_err());
    let other: Vec<PrefPair> = pairs().into_iter().take(10).collect();
    let s = embed_to_cache(&Fake::new(false), other, dir.path(), &opts(4), &mut |_| {}).unwrap();
    assert!(s.discarded_stale_partial);
    assert_eq!(s.resumed_texts, 0);
    check_rows(&EmbeddingCache::load(dir.path()).unwrap());
}

#[test]
fn shards_merged_in_any_order_equal_the_whole() {
    let root = tempfile::tempdir().unwrap();
    let whole = root.path().join("whole");
    embed_to_cache(&Fake::new(false), pairs(), &whole, &opts(4), &mut |_| {}).unwrap();
    let mut parts = Vec::new();
    for i in [2, 0, 1] {
        let dir = root.path().join(format!("part{i}"));
        let o = EmbedOptions {
            shard: Some(Shard { index: i, count: 3 }),
            dtype: Dtype::F32,
            chunk_size: 4,
        };
        embed_to_cache(&Fake::new(false), pairs(), &dir, &o, &mut |_| {}).unwrap();
        parts.push(dir);
    }
    let merged = root.path().join("merged");
    let s = merge_caches(&parts, &merged, None).unwrap();
    assert!(s.missing_shards.is_empty());
    let (a, b) = (
        EmbeddingCache::load(&whole).unwrap(),
        EmbeddingCache::load(&merged).unwrap(),
    );
    assert_eq!(a.pairs, b.pairs);
    assert_eq!(
        (a.chosen.clone(), a.rejected.clone(), a.prompt.clone()),
        (b.chosen, b.rejected, b.prompt)
    );
    assert_eq!(a.context_prompt, b.context_prompt);
    assert_eq!(a.meta.pairs_hash, b.meta.pairs_hash);
    // A missing shard is reported; a shard twice is refused.
    let partial = merge_caches(&parts[..2], &root.path().join("partial"), None).unwrap();
    assert_eq!(partial.missing_shards, vec!["1/3".to_string()]);
    let twice = merge_caches(
        &[parts[0].clone(), parts[0].clone()],
        &root.path().join("twice"),
        None,
    )
    .unwrap_err();
    assert!(twice.to_string().contains("given twice"), "{twice}");
}

#[test]
fn caches_of_different_backbones_do_not_merge() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    embed_to_cache(&Fake::new(false), pairs(), &a, &opts(8), &mut |_| {}).unwrap();
    embed_to_cache(&Fake::new(true), pairs(), &b, &opts(8), &mut |_| {}).unwrap();
    let mut cache = EmbeddingCache::load(&b).unwrap();
    cache.meta.backbone.name = "other".into();
    cache.save(&b, Dtype::F32).unwrap();
    let err = merge_caches(&[a, b], &root.path().join("m"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("different backbones"), "{err}");
}

#[test]
fn decoder_scores_are_stored_and_router_inputs_come_from_prompt_passes() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new(true);
    let o = EmbedOptions {
        dtype: Dtype::F16,
        ..opts(5)
    };
    let s = embed_to_cache(&fake, pairs(), dir.path(), &o, &mut |_| {}).unwrap();
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        s.distinct_responses.div_ceil(5) + s.distinct_prompts.div_ceil(5),
        "router inputs from their own passes, never from a response's"
    );
    let cache = EmbeddingCache::load(dir.path()).unwrap();
    assert_eq!(cache.meta.dtype, Dtype::F16);
    let (c, r) = cache.scores.clone().expect("scores stored");
    for (i, p) in cache.pairs.iter().enumerate() {
        assert_eq!(
            (c[i], r[i]),
            (p.chosen.len() as f32, p.rejected.len() as f32)
        );
        // f16 storage: small integers are exact, sums of bytes within f16 rounding.
        let want = vec_of(&p.prompt.to_text());
        for (g, w) in cache.prompt.row(i).iter().zip(&want) {
            assert!((g - w).abs() <= w.abs() * 1e-3, "{g} vs {w}");
        }
    }
}

#[test]
fn pairs_without_contexts_give_no_second_router_input() {
    let dir = tempfile::tempdir().unwrap();
    let plain: Vec<PrefPair> = pairs()
        .into_iter()
        .map(|mut p| {
            p.context = None;
            p
        })
        .collect();
    embed_to_cache(&Fake::new(false), plain, dir.path(), &opts(4), &mut |_| {}).unwrap();
    let cache = EmbeddingCache::load(dir.path()).unwrap();
    assert!(cache.context_prompt.is_none());
    check_rows(&cache);
}

#[test]
fn an_empty_shard_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let few: Vec<PrefPair> = pairs().into_iter().take(2).collect();
    let o = EmbedOptions {
        shard: Some(Shard { index: 0, count: 5 }),
        ..opts(4)
    };
    let err = embed_to_cache(&Fake::new(false), few, dir.path(), &o, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("no pairs"), "{err}");
}
