//! `micro demo`: the built-in multi-user data told as the paper's two stories.
//!
//! - **RPR-style**: every pair carries its user's context, Stage 1 reads it (router input
//!   `pair`), and Stage 2 has little left to add.
//! - **HelpSteer2-style**: Stage 1 learns from binary labels alone (router input `prompt`; the
//!   users are latent, their share varies with the prompt's topic); contexts appear only in
//!   Stage 2's budget and the test set, and routing rises with the budget (the paper's Fig. 4).

use crate::cache::embed_cached;
use crate::observer::Observer;
use crate::story::{run_story, StoryConfig, StoryOutput};
use micro_cache::RouterInput;
use micro_data::builtin::{self, BuiltinLayout, BuiltinOptions};
use micro_embed::{load_backbone, BackboneOptions};
use std::path::{Path, PathBuf};

/// How to run the demo.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Working folder: pairs, caches, models, results and reports, one subfolder per story.
    pub out: PathBuf,
    pub backbone: PathBuf,
    pub corpus: PathBuf,
    /// Seed of the built-in data (users, split).
    pub data_seed: u64,
    /// The stories to tell, in order.
    pub layouts: Vec<BuiltinLayout>,
    /// Everything a story needs but its name, title and router input.
    pub story: StoryConfig,
}

/// The story a layout tells: its folder, title and Stage 1 router input. The HelpSteer2-style
/// story is the paper's binary-only Stage 1: neither the contexts nor the ids of the users who
/// labelled its Stage 1 pairs reach Stage 1 (the built-in set records who labelled each pair;
/// with their ids the per-user table personalises Stage 1 itself, README).
pub fn story_for(layout: BuiltinLayout, base: &StoryConfig) -> StoryConfig {
    let (name, title, router_input) = match layout {
        BuiltinLayout::Rpr => (
            "rpr",
            "RPR-style: a context with every pair, Stage 1 reads it",
            RouterInput::Pair,
        ),
        BuiltinLayout::HelpSteer2 => (
            "helpsteer2",
            "HelpSteer2-style: binary-only Stage 1, contexts only in Stage 2's budget",
            RouterInput::Prompt,
        ),
    };
    let binary_only = layout == BuiltinLayout::HelpSteer2;
    StoryConfig {
        name: name.into(),
        title: title.into(),
        router_input,
        grid: (base.grid.clone()).map(|g| micro_model::Grid {
            users: g.users && !binary_only,
            ..g
        }),
        ..base.clone()
    }
}

/// Runs every story; returns their outputs in order.
pub fn run_demo(cfg: &DemoConfig, obs: &mut dyn Observer) -> anyhow::Result<Vec<StoryOutput>> {
    let backbone = load_backbone(&cfg.backbone, &BackboneOptions::default())?;
    let mut outputs = Vec::with_capacity(cfg.layouts.len());
    for (i, &layout) in cfg.layouts.iter().enumerate() {
        let story = story_for(layout, &cfg.story);
        let dir = cfg.out.join(&story.name);
        obs.step(
            2 * i + 1,
            &format!("{}: building and embedding the pairs", story.title),
        );
        let pairs = builtin::build(&BuiltinOptions {
            corpus_dir: Some(cfg.corpus.clone()),
            seed: cfg.data_seed,
            layout,
            ..Default::default()
        })?;
        write_pairs(&dir, &pairs)?;
        obs.line(&format!(
            "  {} pairs -> {}",
            pairs.len(),
            dir.join("pairs.jsonl").display()
        ));
        let cache = embed_cached(backbone.as_ref(), pairs, &dir.join("cache"), obs)?;
        obs.step(
            2 * i + 2,
            &format!(
                "{}: Stage 1 over seeds {:?}, Stage 2 and the budget study",
                story.name, story.seeds
            ),
        );
        outputs.push(run_story(&cache, &story, &dir, obs)?);
    }
    Ok(outputs)
}

fn write_pairs(dir: &Path, pairs: &[micro_data::PrefPair]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    micro_data::jsonl::write_pairs(&dir.join("pairs.jsonl"), pairs)?;
    Ok(())
}
