//! `micro adapt`: Stage 2, context-aware router learning from up to B labelled pairs per
//! context and per-user weights from up to B labelled pairs per user known only by id, drawn at
//! random or chosen one at a time (`--select active`);
//! `micro bench adapt`: its time, and the time of one online feedback update;
//! `micro bench select`: the time to choose the next pair, and simulated users asked by the
//! rule or at random.

use anyhow::Context;
use micro_cache::EmbeddingCache;
use micro_model::{Evidence, MixtureModel};
use micro_route::bench::{self, SelectBenchConfig, SimSource};
use micro_route::recipe::{adapt_budget, AdaptOptions};
use micro_route::report;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct AdaptArgs {
    /// Stage 1 model folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Cache whose training pairs carry a `context` (routed by it) or a `user_id` (each user
    /// gets weights of their own); its test pairs are evaluated. Attributes with neither
    /// (binary-only Stage 1 data) are left out of the budget.
    #[arg(long)]
    pub cache: PathBuf,
    /// Output model folder.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub options: AdaptOptions,
    /// Write the pairs used (row, id, attribute and, for `--select active`, the information
    /// of each when chosen) to this JSON file.
    #[arg(long, value_name = "FILE")]
    pub chosen: Option<PathBuf>,
}

pub fn run(a: AdaptArgs) -> anyhow::Result<()> {
    let model = MixtureModel::load(&a.model)
        .with_context(|| format!("loading model {}", a.model.display()))?;
    let cache = EmbeddingCache::load(&a.cache)
        .with_context(|| format!("loading cache {}", a.cache.display()))?;
    let evidence = Evidence::load(&a.model)
        .with_context(|| format!("loading the evidence kept in {}", a.model.display()))?;
    let view = micro_route::ExpertView::new(&model, &cache, evidence.as_ref())?;
    let out = adapt_budget(&view, &a.options.job())?;
    for line in out.budget_lines(model.k()) {
        println!("{line}");
    }
    if let Some(path) = &a.chosen {
        let rows = report::chosen_json(&cache, &out.rows, out.picked.as_ref());
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!(
            "wrote the {} chosen pairs to {}",
            out.rows.len(),
            path.display()
        );
    }
    for line in out.result_lines(&model, &cache) {
        println!("{line}");
    }
    out.adapted
        .save(&a.output)
        .with_context(|| format!("writing {}", a.output.display()))?;
    // The evidence stays with the heads it was made for, for a later adaptation of the users.
    if let Some(e) = &evidence {
        e.save(&a.output)?;
    }
    out.users.save(&a.output)?;
    println!("wrote {}", a.output.display());
    Ok(())
}

/// `micro bench select`: the time to choose the next pair, then simulated users; each report
/// goes to `out` as soon as it is known.
pub fn bench_select(a: SelectBenchConfig, out: &mut dyn FnMut(String)) -> anyhow::Result<()> {
    out(bench::time_choice(a.candidates, a.dim, a.k, a.repeats)?.to_string());
    if a.users == 0 {
        return Ok(());
    }
    let cfg = a.sim_config();
    let loaded = match (&a.model, &a.cache) {
        (Some(m), Some(c)) => Some(bench::load_sim_model(m, c)?),
        _ => None,
    };
    let source = match &loaded {
        Some((model, cache, name)) => SimSource::Model {
            model,
            cache,
            name: name.clone(),
        },
        None => SimSource::Random {
            k: a.k,
            candidates: a.candidates,
        },
    };
    let pairs = bench::simulation_pairs(&source)?;
    let bar = crate::console::bar(1, "{spinner} simulating users {elapsed}");
    let sim = bench::simulate(pairs, &cfg)?;
    bar.finish_and_clear();
    out(sim.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use micro_route::recipe::AdaptJob;

    #[derive(Parser)]
    struct Adapt {
        #[command(flatten)]
        args: AdaptArgs,
    }

    /// `micro adapt` without flags adapts as the library's default job.
    #[test]
    fn no_flags_give_the_library_defaults() {
        let a = Adapt::try_parse_from(["adapt", "--model", "m", "--cache", "c", "-o", "o"])
            .unwrap()
            .args;
        assert_eq!(a.options.job(), AdaptJob::default());
    }

    #[test]
    fn bench_select_reports_the_timing_then_the_simulated_users() {
        let mut reports = Vec::new();
        bench_select(
            SelectBenchConfig {
                candidates: 50,
                dim: 8,
                k: 3,
                repeats: 1,
                users: 3,
                noise: 0.1,
                max_answers: 5,
                rate: micro_route::Rate::Fixed(1.0),
                model: None,
                cache: None,
                seed: 0,
            },
            &mut |r| reports.push(r),
        )
        .unwrap();
        assert_eq!(reports.len(), 2, "{reports:?}");
        assert!(
            reports[0].starts_with("select: next pair among 50 candidates, d = 8, K = 3"),
            "{}",
            reports[0]
        );
        assert!(
            reports[1].starts_with("simulated users: 3 answering by one of 3 heads"),
            "{}",
            reports[1]
        );
        assert!(reports[1].contains("rate Fixed(1.0)"), "{}", reports[1]);
    }
}
