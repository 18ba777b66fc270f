//! `micro train` (Stage 1 on a cache) and `micro bench train` (seconds per epoch on synthetic data).

use crate::console::{Console, Training};
use anyhow::Context;
use micro_cache::TrainingArrays;
use micro_demo::Observer;
use micro_model::report::{trained_line, SearchTable};
use micro_model::{Heads, TrainOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// The embedding cache folder (from `micro embed` or `micro synth`).
    #[arg(long)]
    pub cache: PathBuf,
    /// Output model folder (model.safetensors + config.json).
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub options: TrainOptions,
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let cfg = a.options.config();
    cfg.validate()?;
    let arrays = TrainingArrays::load(&a.cache, a.options.router_input)
        .with_context(|| format!("loading the cache {}", a.cache.display()))?;
    eprintln!("{}", a.options.router_input_line());
    let mut console = Console::new(Training::Epochs, std::time::Duration::ZERO);
    let (model, report) = match a.options.grid() {
        None => micro_model::train(&arrays, &cfg, |e| console.train("train", e))?,
        Some(grid) => {
            let (model, report, search) =
                micro_model::train_search(&arrays, &cfg, &grid, |e| console.search("train", e))?;
            console.finish();
            let n_holdout = report.n_holdout;
            println!(
                "{}",
                SearchTable {
                    search: &search,
                    n_holdout
                }
            );
            (model, report)
        }
    };
    console.finish();
    let model = if a.options.heads == Some(Heads::Auto) {
        merge_auto(model, &arrays, &report.holdout_rows)?
    } else {
        model
    };
    model
        .save(&a.output)
        .with_context(|| format!("writing the model to {}", a.output.display()))?;
    println!("{}", trained_line(&cfg, &model, &report, &a.output));
    cross_fit(&model, &arrays, a.options.cross_fit, &a.output)
}

/// `--cross-fit F`: each training pair's prediction by a model of the other folds, kept beside
/// the model for Stage 2.
fn cross_fit(
    model: &micro_model::MixtureModel,
    arrays: &TrainingArrays,
    folds: usize,
    output: &std::path::Path,
) -> anyhow::Result<()> {
    let mut console = Console::new(Training::Compact, std::time::Duration::ZERO);
    let start = std::time::Instant::now();
    let evidence = micro_model::cross_fit(arrays, model, folds, |f, e| {
        console.train(&format!("cross-fit {}/{folds}", f + 1), e)
    })?;
    console.finish();
    if let Some(e) = evidence {
        e.save(output)?;
        println!(
            "kept cross-fitted evidence for {} training pairs ({folds} folds, {:.1} s): Stage 2 judges the experts on pairs they did not train on",
            e.meta.rows.len(),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// `--heads auto`: merge the correlated heads of the generously sized model, compared on the
/// training pairs the trainer held out.
fn merge_auto(
    model: micro_model::MixtureModel,
    arrays: &TrainingArrays,
    held: &[usize],
) -> anyhow::Result<micro_model::MixtureModel> {
    let (merged, r) =
        micro_route::auto_heads(&model, arrays, held, micro_route::DEFAULT_MERGE_THRESHOLD)?;
    let line = micro_route::report::auto_heads_line(model.k(), merged.k(), &r);
    println!("{line}");
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use micro_model::{Grid, TrainConfig};

    #[derive(Parser)]
    struct Train {
        #[command(flatten)]
        args: TrainArgs,
    }

    fn parse(flags: &[&str]) -> TrainArgs {
        let argv = ["train", "--cache", "c", "-o", "m"].iter().chain(flags);
        Train::try_parse_from(argv).unwrap().args
    }

    /// `micro train` without flags trains with the library's defaults and searches its grid.
    #[test]
    fn no_flags_give_the_library_defaults() {
        let a = parse(&[]);
        assert_eq!(a.options.config(), TrainConfig::default());
        assert_eq!(a.options.grid(), Some(Grid::default()));
    }

    /// `--batch-size` as every other command names it; `--batch` still reads.
    #[test]
    fn the_batch_size_flag_has_one_name_and_the_old_alias() {
        assert_eq!(parse(&["--batch-size", "8"]).options.config().batch, 8);
        assert_eq!(parse(&["--batch", "16"]).options.config().batch, 16);
    }
}
