//! What a cache holds, as `micro cache info` prints it.

use crate::EmbeddingCache;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// A cache's size, widths, backbone, pooling, splits and groups, one `name  value` line each.
pub struct CacheInfo<'a> {
    pub cache: &'a EmbeddingCache,
    /// The folder it was read from.
    pub path: &'a Path,
}

impl fmt::Display for CacheInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (cache, m) = (self.cache, &self.cache.meta);
        writeln!(f, "cache      {}", self.path.display())?;
        writeln!(f, "pairs      {}", m.n)?;
        writeln!(f, "dim        {} (router input {})", m.dim, m.prompt_dim)?;
        writeln!(f, "dtype      {:?}", m.dtype)?;
        let b = &m.backbone;
        let arch = b.architecture.as_ref().map(|a| format!(", {a}"));
        writeln!(
            f,
            "backbone   {} ({}{})",
            b.name,
            b.kind,
            arch.unwrap_or_default()
        )?;
        if let Some(sha) = &b.weights_sha256 {
            writeln!(f, "weights    sha256 {sha}")?;
        }
        if let Some(p) = &m.pooling {
            writeln!(f, "pooling    {p}")?;
        }
        if let Some(c) = &m.context_insertion {
            writeln!(f, "context    {c}")?;
        }
        let scores = if cache.scores.is_some() {
            "yes (backbone reward head)"
        } else {
            "no"
        };
        writeln!(f, "scores     {scores}")?;
        let mut groups = BTreeMap::<&str, usize>::new();
        for p in &cache.pairs {
            *groups.entry(p.group()).or_default() += 1;
        }
        let train = cache.pairs.iter().filter(|p| p.is_train()).count();
        writeln!(
            f,
            "split      {} train, {} test",
            train,
            cache.pairs.len() - train
        )?;
        let list: Vec<String> = groups.iter().map(|(g, n)| format!("{g} {n}")).collect();
        write!(f, "groups     {}", list.join(", "))?;
        for (k, v) in &m.extra {
            write!(f, "\n{k:<10} {v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CacheMeta, Matrix};
    use micro_data::{PrefPair, Split};

    #[test]
    fn info_lists_sizes_splits_groups_and_extras() {
        let mut pairs = vec![PrefPair::new("q", "good", "bad"); 3];
        pairs[0].attribute = Some("safety".into());
        pairs[1].split = Some(Split::Test);
        let m = Matrix::new(3, 2, vec![0.0; 6]);
        let mut cache =
            EmbeddingCache::new(CacheMeta::default(), pairs, m.clone(), m.clone(), m).unwrap();
        cache.meta.pooling = Some("mean".into());
        cache.meta.extra.insert("truncated".into(), 4.into());
        let text = CacheInfo {
            cache: &cache,
            path: Path::new("/c"),
        }
        .to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "cache      /c");
        assert_eq!(lines[1], "pairs      3");
        assert!(lines.contains(&"pooling    mean"));
        assert!(lines.contains(&"scores     no"));
        assert!(lines.contains(&"split      2 train, 1 test"));
        assert!(lines.contains(&"groups     all 2, safety 1"));
        assert_eq!(lines.last(), Some(&"truncated  4"));
    }
}
