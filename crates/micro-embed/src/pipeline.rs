//! `micro embed`: preference pairs in, an embedding cache out. Distinct texts are embedded once,
//! in length-sorted chunks; each finished chunk is kept under `CACHE/.partial/` so an
//! interrupted run resumes, and the cache is written (and the chunks removed) at the end.

use crate::backbone::{Backbone, Item, PromptItem};
use crate::error::{EmbedError, Result};
use crate::partial::{Chunk, Manifest, Partial};
use crate::plan::{Plan, Shard};
use micro_cache::{CacheMeta, Dtype, EmbeddingCache, Matrix};
use micro_data::PrefPair;
use serde::Serialize;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// How to run `micro embed`.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct EmbedOptions {
    /// Storage precision of the cache: f32, f16 or bf16.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = EmbedOptions::default().dtype))]
    pub dtype: Dtype,
    /// Embed only slice i of n (0-based), e.g. `--shard $SLURM_ARRAY_TASK_ID/16`; join the
    /// slices with `micro cache merge`.
    #[cfg_attr(feature = "clap", arg(long))]
    pub shard: Option<Shard>,
    /// Distinct texts per chunk: the unit of progress and of resuming.
    #[cfg_attr(
        feature = "clap",
        arg(long = "chunk", value_name = "CHUNK", default_value_t = EmbedOptions::default().chunk_size)
    )]
    pub chunk_size: usize,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            shard: None,
            dtype: Dtype::F32,
            chunk_size: 512,
        }
    }
}

/// Progress of a run, reported after every chunk.
#[derive(Clone, Copy, Debug)]
pub struct Tick {
    /// Texts done (including those resumed from an earlier run) and in total.
    pub done: usize,
    pub total: usize,
    /// Texts recovered from an earlier run (done without work).
    pub resumed: usize,
}

/// What a run did, also recorded in `meta.json`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EmbedSummary {
    pub pairs: usize,
    pub distinct_responses: usize,
    pub distinct_prompts: usize,
    pub truncated_responses: usize,
    pub truncated_prompts: usize,
    /// Texts taken from an interrupted earlier run.
    pub resumed_texts: usize,
    pub discarded_stale_partial: bool,
    pub seconds: f64,
    /// Texts embedded per second in this run (resumed ones excluded).
    pub texts_per_second: f64,
}

impl EmbedSummary {
    /// What `micro embed` prints once the cache `out` (of `shard`, if one) is written.
    pub fn lines(&self, out: &Path, shard: Option<Shard>) -> Vec<String> {
        let mut lines = vec![format!(
            "wrote {}: {} pairs, {} distinct responses, {} distinct prompts{}, {:.1}s ({:.1} texts/s){}",
            out.display(),
            self.pairs,
            self.distinct_responses,
            self.distinct_prompts,
            shard.map(|s| format!(" (shard {s})")).unwrap_or_default(),
            self.seconds,
            self.texts_per_second,
            if self.resumed_texts > 0 {
                format!(", {} texts resumed", self.resumed_texts)
            } else {
                String::new()
            },
        )];
        if self.truncated_responses + self.truncated_prompts > 0 {
            lines.push(format!(
                "truncated to the model's length: {} responses (oldest prompt text dropped first), {} prompts",
                self.truncated_responses, self.truncated_prompts
            ));
        }
        lines
    }
}

/// Embeds `pairs` (or the shard's slice of them) with `backbone` into the cache folder `out`.
pub fn embed_to_cache(
    backbone: &dyn Backbone,
    pairs: Vec<PrefPair>,
    out: &Path,
    opts: &EmbedOptions,
    on_tick: &mut dyn FnMut(Tick),
) -> Result<EmbedSummary> {
    let start = Instant::now();
    let source_hash = micro_cache::pairs_hash(&pairs);
    let source_n = pairs.len();
    let pairs = match opts.shard {
        Some(s) => pairs[s.range(pairs.len())].to_vec(),
        None => pairs,
    };
    if pairs.is_empty() {
        return Err(EmbedError::NoPairs);
    }
    let plan = Plan::new(
        &pairs,
        backbone.capabilities().response_uses_context,
        backbone.describe().context,
        opts.chunk_size.max(1),
    );
    let manifest = Manifest {
        version: 1,
        pairs_hash: match opts.shard {
            Some(_) => micro_cache::pairs_hash(&pairs),
            None => source_hash.clone(),
        },
        backbone: backbone.info(),
        description: backbone.describe(),
        chunk_size: opts.chunk_size.max(1),
        response_chunks: plan.response_chunks.len(),
        prompt_chunks: plan.prompt_chunks.len(),
    };
    std::fs::create_dir_all(out).map_err(|e| EmbedError::io(out, e))?;
    let (partial, discarded) = Partial::open(out, &manifest)?;
    let mut runner = Runner {
        backbone,
        partial: &partial,
        plan: &plan,
        done: 0,
        resumed: 0,
        total: plan.responses.len() + plan.prompts.len(),
        on_tick,
    };
    let responses = runner.run_responses()?;
    let prompts = runner.run_prompts()?;
    let resumed = runner.resumed;
    let summary = EmbedSummary {
        pairs: pairs.len(),
        distinct_responses: plan.responses.len(),
        distinct_prompts: plan.prompts.len(),
        truncated_responses: responses.truncated,
        truncated_prompts: prompts.truncated,
        resumed_texts: resumed,
        discarded_stale_partial: discarded,
        seconds: start.elapsed().as_secs_f64(),
        texts_per_second: (runner.total - resumed) as f64 / start.elapsed().as_secs_f64().max(1e-9),
    };
    let cache = assemble(
        backbone,
        &plan,
        pairs.clone(),
        responses,
        prompts,
        &summary,
        opts,
        &source_hash,
        source_n,
    )?;
    cache.save(out, opts.dtype)?;
    partial.finish()?;
    Ok(summary)
}

struct Runner<'r, 'a> {
    backbone: &'r dyn Backbone,
    partial: &'r Partial,
    plan: &'r Plan<'a>,
    done: usize,
    resumed: usize,
    total: usize,
    on_tick: &'r mut dyn FnMut(Tick),
}

impl Runner<'_, '_> {
    fn tick(&mut self, rows: usize, resumed: bool) {
        self.done += rows;
        if resumed {
            self.resumed += rows;
        }
        (self.on_tick)(Tick {
            done: self.done,
            total: self.total,
            resumed: self.resumed,
        });
    }

    /// All distinct responses, in plan order.
    fn run_responses(&mut self) -> Result<Chunk> {
        let (plan, backbone) = (self.plan, self.backbone);
        let chunks = &plan.response_chunks;
        self.run(
            "responses",
            chunks,
            plan.responses.len(),
            backbone.dim(),
            |rows| {
                let items: Vec<Item> = rows.iter().map(|&r| plan.responses[r]).collect();
                let f = backbone.embed_responses(&items)?;
                check_width(&f.features, backbone.dim(), "reward features")?;
                Ok(Chunk {
                    features: f.features,
                    scores: f.scores,
                    truncated: f.truncated,
                })
            },
        )
    }

    /// All distinct router inputs, in plan order.
    fn run_prompts(&mut self) -> Result<Chunk> {
        let (plan, backbone) = (self.plan, self.backbone);
        let chunks = &plan.prompt_chunks;
        self.run(
            "prompts",
            chunks,
            plan.prompts.len(),
            backbone.prompt_dim(),
            |rows| {
                let items: Vec<PromptItem> = rows.iter().map(|&r| plan.prompts[r]).collect();
                let f = backbone.embed_prompts(&items)?;
                check_width(&f.features, backbone.prompt_dim(), "router inputs")?;
                Ok(Chunk {
                    features: f.features,
                    scores: None,
                    truncated: f.truncated,
                })
            },
        )
    }

    /// Each chunk of `kind` from the `.partial` folder when an earlier run left it, else
    /// from `embed` (and saved there), gathered into `n` rows of width `dim`.
    fn run(
        &mut self,
        kind: &str,
        chunks: &[Vec<usize>],
        n: usize,
        dim: usize,
        mut embed: impl FnMut(&[usize]) -> Result<Chunk>,
    ) -> Result<Chunk> {
        let mut all = Gathered::new(n, dim);
        for (i, rows) in chunks.iter().enumerate() {
            let chunk = match self.partial.load(kind, i, rows.len()) {
                Some(c) => {
                    self.tick(rows.len(), true);
                    c
                }
                None => {
                    let c = embed(rows)?;
                    self.partial.save(kind, i, &c)?;
                    self.tick(rows.len(), false);
                    c
                }
            };
            all.put(rows, chunk)?;
        }
        Ok(all.finish())
    }
}

fn check_width(m: &Matrix, want: usize, what: &'static str) -> Result<()> {
    if m.cols != want {
        return Err(EmbedError::Width {
            what,
            got: m.cols,
            want,
        });
    }
    Ok(())
}

/// Chunks scattered back into plan order.
struct Gathered {
    out: Chunk,
}

impl Gathered {
    fn new(n: usize, dim: usize) -> Self {
        Gathered {
            out: Chunk {
                features: Matrix::zeros(n, dim),
                scores: None,
                truncated: 0,
            },
        }
    }

    fn put(&mut self, rows: &[usize], c: Chunk) -> Result<()> {
        if c.features.rows != rows.len() {
            return Err(EmbedError::Rows {
                rows: c.features.rows,
                texts: rows.len(),
            });
        }
        for (k, &r) in rows.iter().enumerate() {
            self.out
                .features
                .row_mut(r)
                .copy_from_slice(c.features.row(k));
        }
        if let Some(s) = &c.scores {
            let n = self.out.features.rows;
            let dst = self.out.scores.get_or_insert_with(|| vec![0.0; n]);
            for (k, &r) in rows.iter().enumerate() {
                dst[r] = s[k];
            }
        }
        self.out.truncated += c.truncated;
        Ok(())
    }

    fn finish(self) -> Chunk {
        self.out
    }
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    backbone: &dyn Backbone,
    plan: &Plan<'_>,
    pairs: Vec<PrefPair>,
    responses: Chunk,
    prompts: Chunk,
    summary: &EmbedSummary,
    opts: &EmbedOptions,
    source_hash: &str,
    source_n: usize,
) -> Result<EmbeddingCache> {
    let chosen = responses.features.select_rows(&plan.chosen);
    let rejected = responses.features.select_rows(&plan.rejected);
    let prompt = prompts.features.select_rows(&plan.prompt);
    let context_prompt = plan
        .context_prompt
        .as_ref()
        .map(|rows| prompts.features.select_rows(rows));
    let d = backbone.describe();
    let mut meta = CacheMeta {
        backbone: backbone.info(),
        pooling: Some(d.pooling.clone()),
        context_insertion: Some(d.context.as_str().to_string()),
        response_text: Some(d.response_text.clone()),
        prompt_text: Some(d.prompt_text.clone()),
        ..Default::default()
    };
    let extra = &mut meta.extra;
    extra.insert("normalized".into(), json!(d.normalized));
    extra.insert("max_len".into(), json!(d.max_len));
    extra.insert(
        "embed".into(),
        serde_json::to_value(summary).unwrap_or_default(),
    );
    extra.insert("source_pairs_hash".into(), json!(source_hash));
    extra.insert("source_pairs".into(), json!(source_n));
    if let Some(s) = opts.shard {
        extra.insert("shard".into(), json!(s.to_string()));
    }
    let mut cache = EmbeddingCache::new(meta, pairs, chosen, rejected, prompt)?;
    if let Some(cp) = context_prompt {
        cache = cache.with_context_prompt(cp)?;
    }
    if let Some(scores) = &responses.scores {
        let pick = |idx: &[usize]| idx.iter().map(|&i| scores[i]).collect::<Vec<f32>>();
        cache.scores = Some((pick(&plan.chosen), pick(&plan.rejected)));
    }
    Ok(cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_reads_as_micro_embed_prints_it() {
        let s = EmbedSummary {
            pairs: 10,
            distinct_responses: 18,
            distinct_prompts: 5,
            seconds: 2.04,
            texts_per_second: 11.53,
            ..Default::default()
        };
        let shard = "1/4".parse::<Shard>().ok();
        assert_eq!(
            s.lines(Path::new("out/c"), shard),
            ["wrote out/c: 10 pairs, 18 distinct responses, 5 distinct prompts (shard 1/4), 2.0s (11.5 texts/s)"]
        );
        let s = EmbedSummary {
            resumed_texts: 7,
            truncated_responses: 2,
            ..s
        };
        assert_eq!(
            s.lines(Path::new("c"), None),
            [
                "wrote c: 10 pairs, 18 distinct responses, 5 distinct prompts, 2.0s (11.5 texts/s), 7 texts resumed",
                "truncated to the model's length: 2 responses (oldest prompt text dropped first), 0 prompts"
            ]
        );
    }
}
