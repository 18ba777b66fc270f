//! One story of the demo: a cache in, Stage 1 (MiCRo and the baselines, over several training
//! seeds), Stage 2 at the default budget, the budget study, and a report out.

use crate::observer::Observer;
use anyhow::Context;
use micro_cache::{EmbeddingCache, RouterInput};
use micro_eval::{
    budget_sweep, evaluate_with, pool_sweeps, render_comparison, render_seed_summary, render_sweep,
    summarize_seeds, write_report, Adapted, EvalOptions, EvalReport, Gating, NamedModel, Results,
    RouteStage2, SweepOptions, SweepReport,
};
use micro_model::{
    cross_fit, train_search, Grid, Method, MixtureModel, TrainConfig, DEFAULT_FOLDS,
};
use micro_route::recipe::{adapt_budget, AdaptJob};
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
            tau: micro_route::AdaptConfig::default().tau,
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
        let micro = &models[METHODS.len() - 1];
        let routed = adapt_micro(micro, cache, cfg, seed)?;
        if i == 0 {
            save_models(&models, &routed, &out.join("models"))?;
        }
        let mut reports = Vec::with_capacity(models.len() + 1);
        for m in &models {
            reports.push(evaluate_as(&m.model, cache, &m.label, &Gating::Model)?);
        }
        let users = Gating::Users(&routed.users);
        reports.push(evaluate_as(&routed.model, cache, &routed_label, &users)?);
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
                "  {label:<22} K={} alpha {} lr {} (held-out NLL {:.4})",
                model.k(),
                s1.hyperparameters.alpha,
                s1.hyperparameters.lr,
                s1.best_holdout_nll.unwrap_or(f64::NAN)
            ));
        }
        // MiCRo's experts are judged on evidence they did not train on.
        let evidence = match method {
            Method::Micro => cross_fit(arrays, &model, DEFAULT_FOLDS, |_, _| {})?,
            _ => None,
        };
        models.push(NamedModel {
            evidence,
            ..NamedModel::new(name, model)
        });
    }
    Ok(models)
}

/// MiCRo adapted with up to `cfg.budget` labelled pairs per context and per user known by id,
/// drawn with `seed`.
fn adapt_micro(
    micro: &NamedModel,
    cache: &EmbeddingCache,
    cfg: &StoryConfig,
    seed: u64,
) -> anyhow::Result<Adapted> {
    let job = AdaptJob {
        budget: cfg.budget,
        seed,
        config: AdaptConfig {
            seed,
            tau: cfg.tau,
            ..AdaptJob::default().config
        },
        ..AdaptJob::default()
    };
    let out = adapt_budget(&micro.view(cache)?, &job)?;
    Ok(Adapted {
        model: out.adapted,
        users: out.users,
    })
}

fn evaluate_as(
    model: &MixtureModel,
    cache: &EmbeddingCache,
    label: &str,
    gating: &Gating,
) -> anyhow::Result<EvalReport> {
    let opts = EvalOptions {
        label: Some(label.to_string()),
        ..Default::default()
    };
    Ok(evaluate_with(model, cache, &opts, gating)?)
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

fn save_models(models: &[NamedModel], routed: &Adapted, dir: &Path) -> anyhow::Result<()> {
    for m in models {
        let folder = dir.join(&m.label);
        m.model.save(&folder)?;
        if let Some(e) = &m.evidence {
            e.save(&folder)?;
        }
    }
    let folder = dir.join("micro-routed");
    routed.model.save(&folder)?;
    routed.users.save(&folder)?;
    Ok(())
}
