//! The budget study's driver: what it is given (models, options, a [`Stage2`]) and how each
//! row is made (fixed, adapted on random or actively chosen pairs, HyRe).

use super::report::{point, RowKind, SweepReport, SweepRow};
use super::sample::{run_seed, shuffled, shuffled_train, take_budget, with_context_first};
use crate::error::{EvalError, Result};
use crate::evaluate::{evaluate_indices, EvalReport, Gating, SplitSel};
use micro_cache::EmbeddingCache;
use micro_model::{Evidence, MixtureModel};
use micro_route::budget::group_by_attribute;
use micro_route::query::{choose_from_pools, Selection};
use micro_route::{ExpertView, UserStates};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Stage 2 as the sweep needs it.
pub trait Stage2: Sync {
    /// The model adapted on the rows `idx` of `cache` (the sampled labelled train pairs): its
    /// router to the contexts among them, and the weights of the users known only by id among
    /// them; `seed` is the run's.
    fn adapt(
        &self,
        model: &NamedModel,
        cache: &EmbeddingCache,
        idx: &[usize],
        seed: u64,
    ) -> micro_route::Result<Adapted>;
    /// Test-time weights over the heads (on the simplex) from the labelled rows `idx` of one
    /// attribute.
    fn hyre_weights(
        &self,
        model: &MixtureModel,
        cache: &EmbeddingCache,
        idx: &[usize],
    ) -> micro_route::Result<Vec<f32>>;
}

/// A model and its row name, with what its folder keeps beside it: the cross-fitted evidence
/// of `micro train` and the users' weights of `micro adapt`.
#[derive(Clone, Debug)]
pub struct NamedModel {
    pub label: String,
    pub model: MixtureModel,
    pub evidence: Option<Evidence>,
    /// Users known only by id, with their adapted weights (evaluated with them).
    pub users: UserStates,
}

impl NamedModel {
    /// `model` named `label`, without evidence or users.
    pub fn new(label: impl Into<String>, model: MixtureModel) -> Self {
        NamedModel {
            label: label.into(),
            model,
            evidence: None,
            users: UserStates::default(),
        }
    }

    /// The model's experts on `cache`, judged on its evidence where it has some.
    pub fn view<'a>(&'a self, cache: &'a EmbeddingCache) -> micro_route::Result<ExpertView<'a>> {
        ExpertView::new(&self.model, cache, self.evidence.as_ref())
    }
}

/// What Stage 2 made of a model: its router adapted to contexts, and the users' weights.
#[derive(Clone, Debug)]
pub struct Adapted {
    pub model: MixtureModel,
    pub users: UserStates,
}

/// Options of [`budget_sweep`].
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Labelled pairs per attribute; 0 evaluates the Stage 1 router as it is.
    pub budgets: Vec<usize>,
    pub runs: usize,
    pub seed: u64,
    /// Labelled test pairs per attribute for HyRe rows (the paper: 16); 0 disables them.
    pub hyre_shots: usize,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            budgets: vec![0, 10, 25, 50, 100],
            runs: 5,
            seed: 0,
            hyre_shots: 16,
        }
    }
}
fn adaptable(m: &MixtureModel) -> bool {
    m.router().is_some() && m.k() > 1
}

/// Runs the study on `cache` (train split for sampling, test split for evaluation).
/// `progress` receives one line per finished step.
pub fn budget_sweep(
    models: &[NamedModel],
    cache: &EmbeddingCache,
    opts: &SweepOptions,
    stage2: &dyn Stage2,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<SweepReport> {
    budget_sweep_with(models, cache, opts, &[Selection::Random], stage2, progress)
}

/// [`budget_sweep`] with one adapted row per model and selection in `selections` (in that
/// order; an active row is labelled `<model>+active`).
pub fn budget_sweep_with(
    models: &[NamedModel],
    cache: &EmbeddingCache,
    opts: &SweepOptions,
    selections: &[Selection],
    stage2: &dyn Stage2,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<SweepReport> {
    if opts.runs == 0 || opts.budgets.is_empty() || selections.is_empty() {
        return Err(EvalError::EmptySweep {
            budgets: opts.budgets.len(),
            runs: opts.runs,
            selections: selections.len(),
        });
    }
    for m in models {
        m.model
            .check_cache(&cache.meta)
            .map_err(|cause| EvalError::Mismatch {
                model: m.label.clone(),
                cause,
            })?;
    }
    let test_idx = SplitSel::Test.nonempty_indices(cache)?;
    let test = group_by_attribute(cache, &test_idx);
    let train = with_context_first(
        cache,
        group_by_attribute(cache, &SplitSel::Train.indices(cache)),
    );
    let mut budgets = opts.budgets.clone();
    budgets.sort_unstable();
    budgets.dedup();
    let mut report = SweepReport {
        budgets: budgets.clone(),
        runs: opts.runs,
        seed: opts.seed,
        hyre_shots: opts.hyre_shots,
        attributes: test.keys().cloned().collect(),
        rows: vec![],
        notes: budget_notes(&test, &train, &budgets),
    };
    for m in models {
        if !adaptable(&m.model) {
            report
                .rows
                .push(fixed_row(m, cache, &test_idx, &budgets, opts.runs)?);
            progress(&format!("{}: done", m.label));
            continue;
        }
        for &selection in selections {
            let study = Study {
                cache,
                test_idx: &test_idx,
                train: &train,
                budgets: &budgets,
                opts,
            };
            let row = adapted_row(m, &study, selection, stage2, progress)?;
            progress(&format!("{}: done", row.method));
            report.rows.push(row);
        }
    }
    if opts.hyre_shots > 0 {
        for m in models.iter().filter(|m| m.model.k() > 1) {
            let (row, notes) = hyre_row(m, cache, &test, opts, stage2)?;
            progress(&format!("{}+hyre: done", m.label));
            report.rows.push(row);
            report.notes.extend(notes);
        }
    }
    Ok(report)
}

fn budget_notes(
    test: &BTreeMap<String, Vec<usize>>,
    train: &BTreeMap<String, Vec<usize>>,
    budgets: &[usize],
) -> Vec<String> {
    let max_b = budgets.iter().copied().max().unwrap_or(0);
    let mut notes = Vec::new();
    for a in test.keys() {
        match train.get(a).map_or(0, Vec::len) {
            0 if max_b > 0 => notes.push(format!(
                "attribute `{a}` has no train pairs: Stage 2 never sees it (an unseen user)"
            )),
            n if n < max_b => notes.push(format!(
                "attribute `{a}` has {n} train pairs: budgets above {n} use all of them"
            )),
            _ => {}
        }
    }
    notes
}

fn fixed_row(
    m: &NamedModel,
    cache: &EmbeddingCache,
    test_idx: &[usize],
    budgets: &[usize],
    runs: usize,
) -> Result<SweepRow> {
    // Nothing is sampled for these models, so every run gives the same figure.
    let r = evaluate_indices(&m.model, cache, test_idx, &Gating::Model, &m.label)?;
    let reports = vec![r; runs];
    Ok(SweepRow {
        method: m.label.clone(),
        kind: RowKind::Fixed,
        points: budgets.iter().map(|&b| point(b, &reports)).collect(),
        selection: Selection::Random,
    })
}

/// What every adapted row of a study shares.
struct Study<'a> {
    cache: &'a EmbeddingCache,
    test_idx: &'a [usize],
    train: &'a BTreeMap<String, Vec<usize>>,
    budgets: &'a [usize],
    opts: &'a SweepOptions,
}

/// Each run's labelling order per attribute: B takes the first B. Random: the run's shuffle.
/// Active: the pairs in the order the rule asks for them, up to the largest budget.
fn label_orders(
    m: &NamedModel,
    study: &Study<'_>,
    selection: Selection,
) -> Result<Vec<BTreeMap<String, Vec<usize>>>> {
    let opts = study.opts;
    let max_b = study.budgets.iter().copied().max().unwrap_or(0);
    (0..opts.runs)
        .into_par_iter()
        .map(|run| {
            let order = shuffled_train(study.train, opts.seed, run);
            match selection {
                Selection::Random => Ok(order),
                Selection::Active => {
                    let seed = run_seed(opts.seed, run, 4);
                    let groups = (m.view(study.cache))
                        .and_then(|view| choose_from_pools(&view, &order, max_b, seed))
                        .map_err(|cause| EvalError::Stage2 {
                            model: m.label.clone(),
                            budget: max_b,
                            run,
                            cause: Box::new(cause),
                        })?;
                    Ok(groups
                        .into_iter()
                        .map(|(a, g)| (a, g.picks.iter().map(|p| p.row).collect()))
                        .collect())
                }
            }
        })
        .collect()
}

fn adapted_row(
    m: &NamedModel,
    study: &Study<'_>,
    selection: Selection,
    stage2: &dyn Stage2,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<SweepRow> {
    let Study {
        cache,
        test_idx,
        budgets,
        opts,
        ..
    } = *study;
    let label = match selection {
        Selection::Random => m.label.clone(),
        Selection::Active => format!("{}+active", m.label),
    };
    let orders = label_orders(m, study, selection)?;
    let jobs: Vec<(usize, usize)> = budgets
        .iter()
        .flat_map(|&b| (0..opts.runs).map(move |r| (b, r)))
        .collect();
    // At B = 0 every run is the Stage 1 model: evaluate it once.
    let stage1 = budgets
        .contains(&0)
        .then(|| evaluate_indices(&m.model, cache, test_idx, &Gating::Model, &m.label))
        .transpose()?;
    let results: Vec<Result<EvalReport>> = jobs
        .par_iter()
        .map(|&(budget, run)| {
            let r = match (&stage1, budget) {
                (Some(r), 0) => r.clone(),
                _ => {
                    let sample = take_budget(&orders[run], budget);
                    let adapted = stage2
                        .adapt(m, cache, &sample, run_seed(opts.seed, run, 2))
                        .map_err(|cause| EvalError::Stage2 {
                            model: label.clone(),
                            budget,
                            run,
                            cause: Box::new(cause),
                        })?;
                    let gating = Gating::Users(&adapted.users);
                    evaluate_indices(&adapted.model, cache, test_idx, &gating, &m.label)?
                }
            };
            progress(&format!(
                "{label}: B={budget} run {run}: average {:.4}",
                r.average
            ));
            Ok(r)
        })
        .collect();
    let results = results.into_iter().collect::<Result<Vec<_>>>()?;
    let points = budgets
        .iter()
        .enumerate()
        .map(|(i, &b)| point(b, &results[i * opts.runs..(i + 1) * opts.runs]))
        .collect();
    Ok(SweepRow {
        method: label,
        kind: RowKind::Adapted,
        points,
        selection,
    })
}

fn hyre_row(
    m: &NamedModel,
    cache: &EmbeddingCache,
    test: &BTreeMap<String, Vec<usize>>,
    opts: &SweepOptions,
    stage2: &dyn Stage2,
) -> Result<(SweepRow, Vec<String>)> {
    let shots = opts.hyre_shots;
    let usable: BTreeMap<String, Vec<usize>> = test
        .iter()
        .filter(|(_, v)| v.len() > shots)
        .map(|(a, v)| (a.clone(), v.clone()))
        .collect();
    let notes = test
        .iter()
        .filter(|(_, v)| v.len() <= shots)
        .map(|(a, v)| format!("{}+hyre: attribute `{a}` has {} test pairs, not more than the {shots} labelled ones: left out", m.label, v.len()))
        .collect();
    if usable.is_empty() {
        return Err(EvalError::HyreShots { shots });
    }
    let runs: Vec<Result<EvalReport>> = (0..opts.runs)
        .into_par_iter()
        .map(|run| {
            let order = shuffled(&usable, run_seed(opts.seed, run, 3));
            let mut weights = BTreeMap::new();
            let mut rest = Vec::new();
            for (a, rows) in &order {
                let w = stage2
                    .hyre_weights(&m.model, cache, &rows[..shots])
                    .map_err(|cause| EvalError::Stage2 {
                        model: format!("{}+hyre", m.label),
                        budget: shots,
                        run,
                        cause: Box::new(cause),
                    })?;
                weights.insert(a.clone(), w);
                rest.extend_from_slice(&rows[shots..]);
            }
            evaluate_indices(
                &m.model,
                cache,
                &rest,
                &Gating::PerAttribute(weights),
                &format!("{}+hyre", m.label),
            )
        })
        .collect();
    let runs = runs.into_iter().collect::<Result<Vec<_>>>()?;
    let row = SweepRow {
        method: format!("{}+hyre", m.label),
        kind: RowKind::Hyre,
        points: vec![point(shots, &runs)],
        selection: Selection::Random,
    };
    Ok((row, notes))
}

#[cfg(test)]
mod active_tests {
    use super::*;
    use micro_data::Split;
    use micro_route::fixture::{random_cache, random_model};
    use std::sync::Mutex;

    /// Records the pairs each adaptation was given and returns the model unchanged.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(u64, Vec<usize>)>>);

    impl Stage2 for Recorder {
        fn adapt(
            &self,
            model: &NamedModel,
            _: &EmbeddingCache,
            idx: &[usize],
            seed: u64,
        ) -> micro_route::Result<Adapted> {
            self.0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push((seed, idx.to_vec()));
            Ok(Adapted {
                model: model.model.clone(),
                users: Default::default(),
            })
        }
        fn hyre_weights(
            &self,
            model: &MixtureModel,
            _: &EmbeddingCache,
            _: &[usize],
        ) -> micro_route::Result<Vec<f32>> {
            Ok(vec![1.0 / model.k() as f32; model.k()])
        }
    }

    #[test]
    fn active_rows_sit_next_to_random_ones_with_nested_choices_from_the_train_pool() {
        let mut cache = random_cache(6, 2, 40, 1);
        for (i, p) in cache.pairs.iter_mut().enumerate() {
            if i % 4 == 0 {
                p.split = Some(Split::Test);
            }
        }
        let models = [NamedModel::new("micro", random_model(6, 3, Some(4), 2))];
        let opts = SweepOptions {
            budgets: vec![0, 4, 8],
            runs: 2,
            seed: 3,
            hyre_shots: 0,
        };
        let rec = Recorder::default();
        let both = [Selection::Random, Selection::Active];
        let sw = budget_sweep_with(&models, &cache, &opts, &both, &rec, &|_| {}).unwrap();
        let methods: Vec<(&str, Selection)> = sw
            .rows
            .iter()
            .map(|r| (r.method.as_str(), r.selection))
            .collect();
        assert_eq!(
            methods,
            vec![
                ("micro", Selection::Random),
                ("micro+active", Selection::Active)
            ]
        );
        assert!(sw.rows.iter().all(|r| r.points.len() == 3));
        let calls = rec.0.lock().unwrap();
        // Two selections x two non-zero budgets x two runs.
        assert_eq!(calls.len(), 8);
        for (_, idx) in calls.iter() {
            assert!(idx.iter().all(|&i| cache.pairs[i].is_train()));
            assert!(idx.len() == 8 || idx.len() == 16);
        }
        // The active choice for B = 4 is the first 4 per attribute of its choice for B = 8.
        let active = micro_route::query::choose_from_pools(
            &models[0].view(&cache).unwrap(),
            &shuffled_train(
                &group_by_attribute(&cache, &SplitSel::Train.indices(&cache)),
                3,
                0,
            ),
            8,
            run_seed(3, 0, 4),
        )
        .unwrap();
        let eight: Vec<usize> = active
            .values()
            .flat_map(|g| g.picks.iter().map(|p| p.row))
            .collect();
        let four: Vec<usize> = active
            .values()
            .flat_map(|g| g.picks.iter().take(4).map(|p| p.row))
            .collect();
        let seed = run_seed(3, 0, 2);
        let got: Vec<&Vec<usize>> = calls
            .iter()
            .filter(|(s, idx)| *s == seed && (idx == &four || idx == &eight))
            .map(|(_, idx)| idx)
            .collect();
        assert_eq!(
            got.len(),
            2,
            "the active rows of run 0 adapt on the chosen pairs"
        );
        assert!(budget_sweep_with(&models, &cache, &opts, &[], &rec, &|_| {}).is_err());
    }
}
