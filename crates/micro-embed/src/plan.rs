//! What to embed for a list of pairs: each distinct response and each distinct router input
//! once, in length-sorted chunks (the unit of work and of resuming), and which row each pair
//! takes from them. Every pair has two router inputs, e(x) (its prompt alone) and e(x, c) (its
//! prompt with its context); both are prompt items of their own.

use crate::backbone::{active_context, ContextMode, Item, PromptItem};
use micro_data::PrefPair;
use std::collections::HashMap;

/// `--shard i/n`: the `i`-th (0-based) of `n` contiguous slices of the pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The row range of this shard among `n` pairs (contiguous, so merging in shard order
    /// restores the input order).
    pub fn range(&self, n: usize) -> std::ops::Range<usize> {
        (self.index * n / self.count)..((self.index + 1) * n / self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = micro_data::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            micro_data::UnknownValue::new(
                "shard",
                s,
                "i/n with 0 <= i < n, e.g. 0/4 (i is 0-based, like SLURM_ARRAY_TASK_ID)",
            )
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// The distinct texts of a set of pairs and how pairs map onto them.
pub struct Plan<'a> {
    /// Distinct (prompt, context, response) items.
    pub responses: Vec<Item<'a>>,
    /// Distinct router inputs: (prompt, no context) and (prompt, context).
    pub prompts: Vec<PromptItem<'a>>,
    /// Per pair: (chosen row, rejected row) in `responses`, and its row of e(x) in `prompts`.
    pub chosen: Vec<usize>,
    pub rejected: Vec<usize>,
    pub prompt: Vec<usize>,
    /// Per pair, its row of e(x, c) in `prompts` (its e(x) row when it has no context); `None`
    /// when no pair's context is inserted.
    pub context_prompt: Option<Vec<usize>>,
    /// Chunks of rows of `responses` / `prompts`, longest texts first.
    pub response_chunks: Vec<Vec<usize>>,
    pub prompt_chunks: Vec<Vec<usize>>,
}

impl<'a> Plan<'a> {
    /// Deduplicates: responses by (prompt, response) plus the context when `response_uses_context`;
    /// router inputs by (prompt, context as `mode` inserts it).
    pub fn new(
        pairs: &'a [PrefPair],
        response_uses_context: bool,
        mode: ContextMode,
        chunk_size: usize,
    ) -> Plan<'a> {
        let mut responses = Vec::new();
        let mut prompts = Vec::new();
        let mut response_ids: HashMap<(String, Option<&str>, &str), usize> = HashMap::new();
        let mut prompt_ids: HashMap<(String, Option<&str>), usize> = HashMap::new();
        let (mut chosen, mut rejected, mut prompt) = (Vec::new(), Vec::new(), Vec::new());
        let mut context_prompt = Vec::new();
        for p in pairs {
            let key = serde_json::to_string(&p.prompt).unwrap_or_default();
            let context = active_context(p.context.as_deref(), mode);
            let rctx = if response_uses_context { context } else { None };
            let mut intern = |response: &'a str| {
                *response_ids
                    .entry((key.clone(), rctx, response))
                    .or_insert_with(|| {
                        responses.push(Item {
                            prompt: &p.prompt,
                            context,
                            response,
                        });
                        responses.len() - 1
                    })
            };
            chosen.push(intern(&p.chosen));
            rejected.push(intern(&p.rejected));
            let mut router_row = |context: Option<&'a str>| {
                *prompt_ids.entry((key.clone(), context)).or_insert_with(|| {
                    prompts.push(PromptItem {
                        prompt: &p.prompt,
                        context,
                    });
                    prompts.len() - 1
                })
            };
            prompt.push(router_row(None));
            context_prompt.push(router_row(context));
        }
        let any_context = prompt != context_prompt;
        let rlen = |it: &Item| {
            prompt_len(it.prompt)
                + it.response.len()
                + if response_uses_context {
                    it.context.map_or(0, str::len)
                } else {
                    0
                }
        };
        let response_chunks = chunks(responses.iter().map(rlen).collect(), chunk_size);
        let plen = |it: &PromptItem| prompt_len(it.prompt) + it.context.map_or(0, str::len);
        let prompt_chunks = chunks(prompts.iter().map(plen).collect(), chunk_size);
        Plan {
            responses,
            prompts,
            chosen,
            rejected,
            prompt,
            context_prompt: any_context.then_some(context_prompt),
            response_chunks,
            prompt_chunks,
        }
    }
}

fn prompt_len(p: &micro_data::Prompt) -> usize {
    match p {
        micro_data::Prompt::Text(t) => t.len(),
        micro_data::Prompt::Messages(m) => {
            m.iter().map(|t| t.content.len() + t.role.len() + 4).sum()
        }
    }
}

/// Row indices sorted by decreasing length (ties by first appearance), cut into chunks:
/// deterministic, so an interrupted run finds the same chunks again.
fn chunks(lens: Vec<usize>, size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(lens[i]), i));
    order.chunks(size.max(1)).map(<[usize]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_tile_the_rows() {
        let s: Shard = "1/3".parse().unwrap();
        assert_eq!(s, Shard { index: 1, count: 3 });
        assert!(
            "3/3".parse::<Shard>().is_err()
                && "1".parse::<Shard>().is_err()
                && "0/0".parse::<Shard>().is_err()
        );
        let all: Vec<usize> = (0..3)
            .flat_map(|i| Shard { index: i, count: 3 }.range(10))
            .collect();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn repeated_responses_and_prompts_are_embedded_once() {
        let mut pairs = vec![
            PrefPair::new("q", "a", "b"),
            PrefPair::new("q", "b", "c"),
            PrefPair::new("q2", "a", "b"),
        ];
        pairs[1].context = Some("terse".into());
        let plan = Plan::new(&pairs, false, ContextMode::Prefix, 2);
        // (q,a) (q,b) (q,c) (q2,a) (q2,b): the context does not split responses for encoders.
        assert_eq!(plan.responses.len(), 5);
        assert_eq!(
            (plan.chosen.clone(), plan.rejected.clone()),
            (vec![0, 1, 3], vec![1, 2, 4])
        );
        assert_eq!(plan.prompts.len(), 3, "q, (q, terse), q2");
        assert_eq!(plan.prompt, vec![0, 0, 2], "e(x) ignores the context");
        assert_eq!(plan.context_prompt, Some(vec![0, 1, 2]));
        let ignored = Plan::new(&pairs, false, ContextMode::None, 2);
        assert_eq!((ignored.prompts.len(), ignored.context_prompt), (2, None));
        let with_ctx = Plan::new(&pairs, true, ContextMode::Prefix, 2);
        assert_eq!(with_ctx.responses.len(), 6);
        let flat: Vec<usize> = plan.response_chunks.iter().flatten().copied().collect();
        assert_eq!(plan.response_chunks.len(), 3);
        assert_eq!(&flat[..2], &[3, 4], "longest (q2 + response) first");
    }
}
