//! One story of the demo: a cache in, Stage 1 (MiCRo and the baselines, over several training
//! seeds), Stage 2 at the default budget, the budget study, and a report out.

use crate::observer::Observer;
use anyhow::Context;
use micro_cache::{EmbeddingCache, RouterInput};
use micro_eval::{
    budget_sweep, evaluate, pool_sweeps, render_comparison, render_seed_summary, render_sweep,
    summarize_seeds, write_report, EvalOptions, EvalReport, NamedModel, Results, RouteStage2,
    SweepOptions, SweepReport,
};
use micro_model::{train_search, Grid, Method, MixtureModel, TrainConfig};
use micro_route::AdaptConfig;
use std::path::{Path, PathBuf};

/// The Stage 1 methods a story trains, in table order.
pub const METHODS: [(&str, Method); 4] = [
    ("single", Method::Single),
    ("shared-base", Method::SharedBase),
    ("static", Method::Static),
    ("micro", Method::Micro),
];

/// How to tell one story.
#[derive(Clone, Debug)]
pub struct StoryConfig {
    /// Folder name under the demo's output, e.g. `rpr`.
    pub name: String,
    pub title: String,
    /// Heads K of the multi-head methods.
    pub heads: usize,
    /// Training seeds: Stage 1 figures are mean ± std over them.
    pub seeds: Vec<u64>,
    /// Stage 1's router input.
    pub router_input: RouterInput,
    /// Everything else of Stage 1 (method, K and seed are set per model).
    pub train: TrainConfig,
    /// The hyperparameter search; `None` trains with `train`'s alpha and learning rate.
    pub grid: Option<Grid>,
    /// Stage 2's budget for the routed row (pairs per user).
    pub budget: usize,
    /// Budgets of the study.
    pub budgets: Vec<usize>,
    /// Samples per budget and training seed.
    pub runs: usize,
    /// Stage 2's Hedge temperature.
    pub tau: f64,
}

impl Default for StoryConfig {
    fn default() -> Self {
        StoryConfig {
            name: "story".into(),
            title: "micro demo".into(),
            heads: 8,
            seeds: vec![0, 1, 2],
            router_input: RouterInput::Pair,
            train: TrainConfig::default(),
            grid: Some(Grid::default()),
            budget: 50,
            budgets: vec![0, 10, 25, 50, 100],
            runs: 3,
            tau: 1e-3,
        }
    }
}

/// What a story produced.
pub struct StoryOutput {
    pub results: Results,
    /// The report's `index.html`.
    pub report: PathBuf,
    /// Printable tables: the seed summary, the first seed's comparison, the budget study.
    pub tables: Vec<String>,
}

/// Runs the story on `cache`, writing models, `results.json` and the report under `out`.
pub fn run_story(
    cache: &EmbeddingCache,
    cfg: &StoryConfig,
    out: &Path,
    obs: &mut dyn Observer,
) -> anyhow::Result<StoryOutput> {
    anyhow::ensure!(
        !cfg.seeds.is_empty(),
        "a story needs at least one training seed"
    );
    let router_input = cfg.router_input;
    let arrays = cache.training_arrays(router_input);
    obs.line(&format!("Stage 1 router input: {router_input}"));
    let routed_label = format!("micro (B={})", cfg.budget);
    let mut per_seed = Vec::with_capacity(cfg.seeds.len());
    let mut sweeps = Vec::with_capacity(cfg.seeds.len());
    for (i, &seed) in cfg.seeds.iter().enumerate() {
        let models = train_all(&arrays, cfg, seed, obs)?;
        let micro = &models[METHODS.len() - 1].model;
        let routed = adapt_micro(micro, cache, cfg, seed)?;
        if i == 0 {
            save_models(&models, &routed, &out.join("models"))?;
        }
        let mut reports = Vec::with_capacity(models.len() + 1);
        for m in &models {
            reports.push(evaluate_as(&m.model, cache, &m.label)?);
        }
        reports.push(evaluate_as(&routed, cache, &routed_label)?);
        obs.line(&format!(
            "seed {seed}: MiCRo {:.4} at Stage 1, {:.4} routed (B = {}); best heads {:.4}",
            reports[METHODS.len() - 1].average,
            reports[METHODS.len()].average,
            cfg.budget,
            reports[METHODS.len() - 1].best_head_average
        ));
        sweeps.push(sweep(&models, cache, cfg, seed, obs)?);
        per_seed.push(reports);
    }
    let seeds = summarize_seeds(&cfg.seeds, &per_seed)?;
    let sweep = pool_sweeps(&sweeps)?;
    let results = Results {
        title: cfg.title.clone(),
        source: Some(format!(
            "{} pairs, backbone {}",
            cache.len(),
            cache.meta.backbone.name
        )),
        methods: per_seed[0].clone(),
        sweep: Some(sweep.clone()),
        seeds: Some(seeds.clone()),
        notes: vec![format!(
            "Stage 1 router input: {router_input}; K = {}; training seeds {:?}; Stage 2 tau {}.",
            cfg.heads, cfg.seeds, cfg.tau
        )],
        ..Default::default()
    };
    results.save(&out.join("results.json"))?;
    let files = write_report(&results, &out.join("report"))?;
    Ok(StoryOutput {
        tables: vec![
            render_seed_summary(&seeds),
            render_comparison(&per_seed[0]),
            render_sweep(&sweep),
        ],
        results,
        report: files.index,
    })
}

/// Every method of [`METHODS`] trained with `seed`, hyperparameters by the search.
fn train_all(
    arrays: &micro_cache::TrainingArrays,
    cfg: &StoryConfig,
    seed: u64,
    obs: &mut dyn Observer,
) -> anyhow::Result<Vec<NamedModel>> {
    let mut models = Vec::with_capacity(METHODS.len());
    for (name, method) in METHODS {
        let train = TrainConfig {
            method,
            k: if method == Method::Single {
                1
            } else {
                cfg.heads
            },
            seed,
            ..cfg.train.clone()
        };
        let label = format!("{name} (seed {seed})");
        let model = match &cfg.grid {
            Some(grid) => train_search(arrays, &train, grid, |e| obs.search(&label, e))?.0,
            None => micro_model::train(arrays, &train, |e| obs.train(&label, e))?.0,
        };
        if let Some(s1) = &model.config().training.stage1 {
            obs.line(&format!(
                "  {label:<22} alpha {} lr {} (held-out NLL {:.4})",
                s1.hyperparameters.alpha,
                s1.hyperparameters.lr,
                s1.best_holdout_nll.unwrap_or(f64::NAN)
            ));
        }
        models.push(NamedModel {
            label: name.to_string(),
            model,
        });
    }
    Ok(models)
}

/// MiCRo's router adapted with `cfg.budget` pairs per user drawn with `seed`.
fn adapt_micro(
    micro: &MixtureModel,
    cache: &EmbeddingCache,
    cfg: &StoryConfig,
    seed: u64,
) -> anyhow::Result<MixtureModel> {
    let idx = micro_route::sample_budget(cache, cfg.budget, seed)?;
    let adapt = AdaptConfig {
        seed,
        tau: cfg.tau,
        ..Default::default()
    };
    Ok(micro_route::adapt(micro, cache, &idx, &adapt)?.0)
}

fn evaluate_as(
    model: &MixtureModel,
    cache: &EmbeddingCache,
    label: &str,
) -> anyhow::Result<EvalReport> {
    Ok(evaluate(
        model,
        cache,
        &EvalOptions {
            label: Some(label.to_string()),
            ..Default::default()
        },
    )?)
}

/// The budget study of the seed's MiCRo and static models.
fn sweep(
    models: &[NamedModel],
    cache: &EmbeddingCache,
    cfg: &StoryConfig,
    seed: u64,
    obs: &mut dyn Observer,
) -> anyhow::Result<SweepReport> {
    let chosen: Vec<NamedModel> = models
        .iter()
        .filter(|m| m.label == "micro" || m.label == "static")
        .cloned()
        .collect();
    let opts = SweepOptions {
        budgets: cfg.budgets.clone(),
        runs: cfg.runs,
        seed,
        ..Default::default()
    };
    let mut stage2 = RouteStage2::default();
    stage2.adapt.tau = cfg.tau;
    let report = budget_sweep(&chosen, cache, &opts, &stage2, &|_| {})
        .with_context(|| format!("the budget study of seed {seed}"))?;
    obs.line(&format!("  budget study of seed {seed} done"));
    Ok(report)
}

fn save_models(models: &[NamedModel], routed: &MixtureModel, dir: &Path) -> anyhow::Result<()> {
    for m in models {
        m.model.save(&dir.join(&m.label))?;
    }
    routed.save(&dir.join("micro-routed"))?;
    Ok(())
}
