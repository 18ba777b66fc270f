//! Embedding with reuse: a demo run keeps the cache of an earlier run when it holds exactly
//! the same pairs, embedded by the same backbone the same way (an interrupted run resumes).

use crate::observer::Observer;
use micro_cache::EmbeddingCache;
use micro_data::PrefPair;
use micro_embed::{Backbone, EmbedOptions};
use std::path::Path;

/// The cache of `pairs` under `dir`, embedded by `backbone` unless already there.
pub fn embed_cached(
    backbone: &dyn Backbone,
    pairs: Vec<PrefPair>,
    dir: &Path,
    obs: &mut dyn Observer,
) -> anyhow::Result<EmbeddingCache> {
    if let Ok(cache) = EmbeddingCache::load(dir) {
        if is_current(&cache, &pairs, backbone) {
            obs.line(&format!(
                "  reusing {} ({} pairs)",
                dir.display(),
                cache.len()
            ));
            return Ok(cache);
        }
    }
    let s =
        micro_embed::embed_to_cache(backbone, pairs, dir, &EmbedOptions::default(), &mut |t| {
            obs.embed(t)
        })?;
    obs.line(&format!(
        "  {} pairs, {} distinct responses, {} distinct prompts in {:.0} s ({:.0} texts/s)",
        s.pairs, s.distinct_responses, s.distinct_prompts, s.seconds, s.texts_per_second
    ));
    Ok(EmbeddingCache::load(dir)?)
}

/// Same pairs, same backbone, same text forms and context insertion.
fn is_current(cache: &EmbeddingCache, pairs: &[PrefPair], backbone: &dyn Backbone) -> bool {
    let d = backbone.describe();
    cache.meta.pairs_hash == micro_cache::pairs_hash(pairs)
        && cache.meta.backbone.name == backbone.info().name
        && cache.meta.response_text.as_deref() == Some(d.response_text.as_str())
        && cache.meta.prompt_text.as_deref() == Some(d.prompt_text.as_str())
        && cache.meta.context_insertion.as_deref() == Some(d.context.as_str())
}
