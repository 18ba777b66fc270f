//! `micro eval`: accuracy per attribute and per head of one or more models on a cache, and the
//! Stage 2 budget study (`--budget-sweep`).

use anyhow::Context;
use micro_cache::EmbeddingCache;
use micro_eval::{
    budget_sweep_with, evaluate_with, load_models, model_specs, render_comparison, render_sweep,
    render_table, write_json, EvalError, EvalOptions, Gating, NamedModel, Results, RouteStage2,
    SplitSel, SweepOptions,
};
use micro_route::query::Selection;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A model folder, or LABEL=FOLDER to name its row; repeat to compare several models.
    #[arg(long = "model", value_name = "[LABEL=]DIR")]
    pub models: Vec<String>,
    /// A folder of model folders (each sub-folder with a config.json), labelled by their names.
    #[arg(long = "models", value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
    /// The embedding cache to evaluate on.
    #[arg(long)]
    pub cache: PathBuf,
    /// Which pairs to evaluate: test, train or all (the budget sweep always samples train and
    /// evaluates test).
    #[arg(long, default_value = "test")]
    pub split: SplitSel,
    /// Write the results as JSON (one model: its report; several or a sweep: a results file
    /// that `micro report` reads).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Budget study: labelled train pairs per attribute, comma-separated (e.g. 0,10,25,50,100).
    #[arg(long, value_delimiter = ',', value_name = "B,B,...")]
    pub budget_sweep: Option<Vec<usize>>,
    /// Runs per budget, each with its own sample.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// How the sweep picks each attribute's labelled pairs, comma-separated: `random` (drawn at
    /// random, the paper) and/or `active` (one at a time, the pair whose answer tells most
    /// about the heads; rows `<model>+active`), e.g. `random,active`.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "S,S",
        default_value = "random"
    )]
    pub select: Vec<Selection>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Labelled test pairs per attribute for the HyRe rows of the sweep (0: none).
    #[arg(long, default_value_t = micro_route::HYRE_PAIRS)]
    pub hyre_shots: usize,
    /// Stage 2 Hedge temperature tau (default: micro adapt's).
    #[arg(long)]
    pub tau: Option<f64>,
    /// Stage 2 epochs (default: micro adapt's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Stage 2 peak learning rate (default: micro adapt's).
    #[arg(long)]
    pub lr: Option<f32>,
    /// Stage 2 trains only the router's output layer.
    #[arg(long)]
    pub output_layer_only: bool,
    /// Stage 2 also fits the router on the other training pairs sharing a labelled pair's
    /// context (labels never read; see `micro adapt --pool-inputs`). Default: on.
    #[arg(long, action = clap::ArgAction::Set)]
    pub pool_inputs: Option<bool>,
    /// No per-run progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let specs = model_specs(&a.models, a.models_dir.as_deref()).map_err(in_flags)?;
    let cache = EmbeddingCache::load(&a.cache)
        .with_context(|| format!("loading the cache {}", a.cache.display()))?;
    let models = load_models(&specs, &cache)?;
    let mut reports = Vec::new();
    for m in &models {
        let opts = EvalOptions {
            split: a.split,
            label: Some(m.label.clone()),
        };
        // A model folder with adapted users scores their pairs with their own weights.
        let r = evaluate_with(&m.model, &cache, &opts, &Gating::Users(&m.users))
            .with_context(|| format!("evaluating `{}`", m.label))?;
        println!("{}", render_table(&r));
        reports.push(r);
    }
    if reports.len() > 1 {
        println!("{}", render_comparison(&reports));
    }
    let sweep = match &a.budget_sweep {
        Some(budgets) => Some(run_sweep(&a, budgets, &models, &cache)?),
        None => None,
    };
    if let Some(path) = &a.json {
        if reports.len() == 1 && sweep.is_none() {
            write_json(path, &reports[0])?;
        } else {
            let source = Some(a.cache.display().to_string());
            write_json(
                path,
                &Results {
                    source,
                    methods: reports,
                    sweep,
                    ..Default::default()
                },
            )?;
        }
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn run_sweep(
    a: &EvalArgs,
    budgets: &[usize],
    models: &[NamedModel],
    cache: &EmbeddingCache,
) -> anyhow::Result<micro_eval::SweepReport> {
    let mut stage2 = RouteStage2::default();
    let cfg = &mut stage2.adapt;
    cfg.tau = a.tau.unwrap_or(cfg.tau);
    cfg.epochs = a.epochs.unwrap_or(cfg.epochs);
    cfg.lr = a.lr.unwrap_or(cfg.lr);
    cfg.train_hidden = !a.output_layer_only;
    if let Some(p) = a.pool_inputs {
        cfg.pool_inputs = p;
    }
    stage2.adapt.check().context("Stage 2 settings")?;
    let opts = SweepOptions {
        budgets: budgets.to_vec(),
        runs: a.runs,
        seed: a.seed,
        hyre_shots: a.hyre_shots,
    };
    let quiet = a.quiet;
    let mut selections: Vec<Selection> = Vec::new();
    for s in &a.select {
        if !selections.contains(s) {
            selections.push(*s);
        }
    }
    let sw = budget_sweep_with(models, cache, &opts, &selections, &stage2, &|line| {
        if !quiet {
            eprintln!("{line}");
        }
    })?;
    println!("{}", render_sweep(&sw));
    for n in &sw.notes {
        println!("note: {n}");
    }
    Ok(sw)
}

/// The library says what is wrong with the models given; the command says it in its flags.
fn in_flags(e: EvalError) -> anyhow::Error {
    match e {
        EvalError::NoModel => {
            anyhow::anyhow!(
                "no model given: pass --model DIR (or LABEL=DIR, repeatable) or --models DIR"
            )
        }
        EvalError::SameLabel { label } => {
            anyhow::anyhow!("two models are labelled `{label}`: name them with --model LABEL=DIR")
        }
        e => e.into(),
    }
}

#[cfg(test)]
mod flag_tests {
    use super::*;

    #[test]
    fn the_models_given_are_refused_in_the_commands_flags() {
        let none = in_flags(model_specs(&[], None).unwrap_err()).to_string();
        assert!(
            none.contains("--model DIR") && none.contains("--models DIR"),
            "{none}"
        );
        let same = model_specs(&["x=/a".into(), "x=/b".into()], None).unwrap_err();
        let same = in_flags(same).to_string();
        assert!(same.contains("--model LABEL=DIR"), "{same}");
    }
}
