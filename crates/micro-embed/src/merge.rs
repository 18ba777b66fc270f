//! `micro cache merge`: joins caches (typically the shards of one `micro embed --shard i/n`
//! array job) into one, in shard order, refusing caches made by different backbones.

use crate::error::{EmbedError, Result};
use micro_cache::{Dtype, EmbeddingCache};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// What a merge did.
#[derive(Clone, Debug, Default)]
pub struct MergeSummary {
    pub pairs: usize,
    pub inputs: usize,
    /// Shards of an `i/n` series that were not among the inputs (the merge is then partial).
    pub missing_shards: Vec<String>,
}

impl MergeSummary {
    /// `wrote OUT: N pairs from M caches`, as `micro cache merge` prints it.
    pub fn line(&self, out: &Path) -> String {
        format!(
            "wrote {}: {} pairs from {} caches",
            out.display(),
            self.pairs,
            self.inputs
        )
    }

    /// The warning for shards of the series that were not given, if any.
    pub fn warning(&self) -> Option<String> {
        (!self.missing_shards.is_empty()).then(|| {
            format!(
                "warning: shards {} were not given: the merged cache is partial",
                self.missing_shards.join(", ")
            )
        })
    }
}

/// Merges the caches in `inputs` into `out` (stored as `dtype`, or the first input's dtype).
pub fn merge_caches(inputs: &[PathBuf], out: &Path, dtype: Option<Dtype>) -> Result<MergeSummary> {
    if inputs.is_empty() {
        return Err(EmbedError::NothingToMerge);
    }
    let mut caches = inputs
        .iter()
        .map(|p| EmbeddingCache::load(p).map(|c| (p.clone(), c)))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let missing_shards = order_shards(&mut caches)?;
    let (first_path, first) = &caches[0];
    for (path, c) in &caches[1..] {
        check_compatible(first_path, first, path, c)?;
    }
    let dtype = dtype.unwrap_or(first.meta.dtype);
    // A shard whose pairs carry no context has no e(x, c) tensor: its e(x) rows stand in.
    let any_context = caches.iter().any(|(_, c)| c.context_prompt.is_some());
    let mut merged = first.clone();
    if any_context && merged.context_prompt.is_none() {
        merged.context_prompt = Some(merged.prompt.clone());
    }
    for (_, c) in &caches[1..] {
        merged.pairs.extend(c.pairs.iter().cloned());
        merged.chosen.append(&c.chosen);
        merged.rejected.append(&c.rejected);
        merged.prompt.append(&c.prompt);
        if let Some(mc) = &mut merged.context_prompt {
            mc.append(c.context_prompt.as_ref().unwrap_or(&c.prompt));
        }
        if let (Some((mc, mr)), Some((cc, cr))) = (&mut merged.scores, &c.scores) {
            mc.extend_from_slice(cc);
            mr.extend_from_slice(cr);
        }
    }
    merged.meta.n = merged.pairs.len();
    merged.meta.extra.remove("shard");
    merged.meta.extra.remove("embed");
    merged.meta.extra.insert(
        "merged_from".into(),
        json!(inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()),
    );
    merged.meta.extra.insert(
        "truncated_responses".into(),
        json!(sum_extra(&caches, "truncated_responses")),
    );
    merged.meta.extra.insert(
        "truncated_prompts".into(),
        json!(sum_extra(&caches, "truncated_prompts")),
    );
    merged.save(out, dtype)?;
    Ok(MergeSummary {
        pairs: merged.pairs.len(),
        inputs: caches.len(),
        missing_shards,
    })
}

/// The shard `(i, n)` a cache records, if any.
fn shard_of(c: &EmbeddingCache) -> Option<(usize, usize)> {
    let s: crate::plan::Shard = c.meta.extra.get("shard")?.as_str()?.parse().ok()?;
    Some((s.index, s.count))
}

/// Sorts shards of one series by index; checks they belong together. Returns missing shards.
fn order_shards(caches: &mut [(PathBuf, EmbeddingCache)]) -> Result<Vec<String>> {
    let shards: Vec<Option<(usize, usize)>> = caches.iter().map(|(_, c)| shard_of(c)).collect();
    if shards.iter().any(Option::is_none) {
        return Ok(Vec::new()); // plain caches: keep the order given
    }
    let count = shards[0].map_or(0, |s| s.1);
    let source = |c: &EmbeddingCache| c.meta.extra.get("source_pairs_hash").cloned();
    for ((path, c), s) in caches.iter().zip(&shards) {
        if s.map(|s| s.1) != Some(count) || source(c) != source(&caches[0].1) {
            return Err(EmbedError::invalid(
                path,
                "this shard belongs to another series (different n or different input pairs)",
            ));
        }
    }
    caches.sort_by_key(|(_, c)| shard_of(c).map(|s| s.0));
    let mut seen = vec![false; count];
    for (path, c) in caches.iter() {
        let i = shard_of(c).map_or(0, |s| s.0);
        if std::mem::replace(&mut seen[i], true) {
            return Err(EmbedError::invalid(
                path,
                format!("shard {i}/{count} is given twice"),
            ));
        }
    }
    Ok(seen
        .iter()
        .enumerate()
        .filter(|(_, s)| !**s)
        .map(|(i, _)| format!("{i}/{count}"))
        .collect())
}

fn check_compatible(p0: &Path, a: &EmbeddingCache, p: &Path, b: &EmbeddingCache) -> Result<()> {
    let differ = |what: &str, x: String, y: String| {
        EmbedError::invalid(p, format!("{what} is {y} here but {x} in {}: caches from different backbones cannot be merged", p0.display()))
    };
    if a.meta.backbone.name != b.meta.backbone.name
        || a.meta.backbone.weights_sha256 != b.meta.backbone.weights_sha256
    {
        return Err(differ(
            "the backbone",
            format!("{:?}", a.meta.backbone),
            format!("{:?}", b.meta.backbone),
        ));
    }
    if (a.chosen.cols, a.prompt.cols) != (b.chosen.cols, b.prompt.cols) {
        return Err(differ(
            "the width",
            format!("{}/{}", a.chosen.cols, a.prompt.cols),
            format!("{}/{}", b.chosen.cols, b.prompt.cols),
        ));
    }
    if a.meta.recipe() != b.meta.recipe() {
        return Err(differ(
            "how text became vectors (pooling, context insertion, text forms)",
            format!("{:?}", a.meta.recipe()),
            format!("{:?}", b.meta.recipe()),
        ));
    }
    if a.scores.is_some() != b.scores.is_some() {
        return Err(EmbedError::invalid(
            p,
            "one cache has backbone scores and the other not",
        ));
    }
    Ok(())
}

fn sum_extra(caches: &[(PathBuf, EmbeddingCache)], key: &str) -> u64 {
    caches
        .iter()
        .filter_map(|(_, c)| {
            c.meta
                .extra
                .get("embed")
                .and_then(|e| e.get(key))
                .and_then(Value::as_u64)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_output_and_missing_shards() {
        let s = MergeSummary {
            pairs: 120,
            inputs: 3,
            missing_shards: vec![],
        };
        assert_eq!(
            s.line(Path::new("out/all")),
            "wrote out/all: 120 pairs from 3 caches"
        );
        assert_eq!(s.warning(), None);
        let partial = MergeSummary {
            missing_shards: vec!["1/4".into(), "3/4".into()],
            ..s
        };
        assert_eq!(
            partial.warning().unwrap(),
            "warning: shards 1/4, 3/4 were not given: the merged cache is partial"
        );
    }
}
