//! The budget study (the paper's Fig. 4 / Table 9): for each budget B and run, sample B labelled
//! pairs per attribute from the train split, adapt the router (Stage 2), evaluate on the test
//! split; report accuracy per attribute as mean ± std over runs. Models without a router (single
//! head, static mixture) keep their Stage 1 weights, as in the paper. HyRe rows reweight a
//! model's heads per attribute from a few labelled test pairs and are evaluated on the rest.
//!
//! Stage 2 itself is supplied through [`Stage2`] (micro-route's implementation is
//! [`crate::RouteStage2`]), so the protocol here is testable on its own.
//!
//! **Selection.** [`budget_sweep_with`] can add, next to each adapted row (B pairs per attribute
//! drawn at random), an active row (`<model>+active`): B pairs per attribute chosen one at a time
//! by the information of their answer about the heads ([`micro_route::query`]), from the same
//! pool and adapted with the same Stage 2 settings. The choice is greedy, so within a run the
//! chosen sets are nested across budgets as the random ones are; runs differ by the seed that
//! breaks ties and orders the pool, and by Stage 2's own seed.

use crate::error::{EvalError, Result};
use crate::evaluate::{evaluate_indices, EvalReport, Gating, SplitSel};
use crate::metrics::Stat;
use micro_cache::EmbeddingCache;
use micro_model::MixtureModel;
use micro_route::budget::group_by_attribute;
use micro_route::query::{choose_from_pools, Selection};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Stage 2 as the sweep needs it.
pub trait Stage2: Sync {
    /// The model with its router adapted on the rows `idx` of `cache` (the sampled labelled
    /// train pairs); `seed` is the run's.
    fn adapt(
        &self,
        model: &MixtureModel,
        cache: &EmbeddingCache,
        idx: &[usize],
        seed: u64,
    ) -> std::result::Result<MixtureModel, String>;
    /// Test-time weights over the heads (on the simplex) from the labelled rows `idx` of one
    /// attribute.
    fn hyre_weights(
        &self,
        model: &MixtureModel,
        cache: &EmbeddingCache,
        idx: &[usize],
    ) -> std::result::Result<Vec<f32>, String>;
}

/// A model and its row name.
#[derive(Clone, Debug)]
pub struct NamedModel {
    pub label: String,
    pub model: MixtureModel,
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

/// How a row's numbers were obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowKind {
    /// Router adapted on B sampled pairs per attribute.
    Adapted,
    /// Stage 1 weights kept (no router, or a static mixture): the same at every budget.
    Fixed,
    /// Per-attribute HyRe weights from `budget` labelled test pairs per attribute.
    Hyre,
}

/// Accuracy at one budget, over runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub budget: usize,
    /// Over runs of the per-run unweighted mean over attributes.
    pub average: Stat,
    pub per_attribute: BTreeMap<String, Stat>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    pub method: String,
    pub kind: RowKind,
    pub points: Vec<SweepPoint>,
    /// How an adapted row's labelled pairs were picked (random for the other kinds).
    #[serde(default)]
    pub selection: Selection,
}

/// The whole study; `rows` in the order the models were given, HyRe rows last.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    pub budgets: Vec<usize>,
    pub runs: usize,
    pub seed: u64,
    pub hyre_shots: usize,
    /// The test attributes, sorted.
    pub attributes: Vec<String>,
    pub rows: Vec<SweepRow>,
    /// Caveats met on the way (short attributes, attributes with no train pairs).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Stage 2 learns to route by context, so where an attribute's train pairs carry one, only
/// those are sampled (as `micro adapt` does). In a cache that mixes binary-only Stage 1 pairs
/// with context-labelled ones, the attributes without any context are Stage 1 data and are not
/// sampled; only a cache with no context at all samples every attribute's pairs.
fn with_context_first(
    cache: &EmbeddingCache,
    groups: BTreeMap<String, Vec<usize>>,
) -> BTreeMap<String, Vec<usize>> {
    let with_context: BTreeMap<String, Vec<usize>> = groups
        .iter()
        .map(|(a, rows)| {
            let with: Vec<usize> = rows
                .iter()
                .copied()
                .filter(|&i| micro_route::budget::has_context(&cache.pairs[i]))
                .collect();
            (a.clone(), with)
        })
        .filter(|(_, with)| !with.is_empty())
        .collect();
    if with_context.is_empty() {
        groups
    } else {
        with_context
    }
}

/// A seed for one (run, purpose): runs never share a random stream.
fn run_seed(seed: u64, run: usize, purpose: u64) -> u64 {
    let mut z = seed
        ^ (run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ purpose.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Each attribute's train rows in a run's random order. Budget B takes the first B of each, so
/// within a run the samples are nested across budgets (less noise along the curve).
pub fn shuffled_train(
    train: &BTreeMap<String, Vec<usize>>,
    seed: u64,
    run: usize,
) -> BTreeMap<String, Vec<usize>> {
    shuffled(train, run_seed(seed, run, 1))
}

fn shuffled(groups: &BTreeMap<String, Vec<usize>>, seed: u64) -> BTreeMap<String, Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    groups
        .iter()
        .map(|(a, rows)| {
            let mut v = rows.clone();
            v.shuffle(&mut rng);
            (a.clone(), v)
        })
        .collect()
}

/// The first `budget` rows of each attribute.
pub fn take_budget(order: &BTreeMap<String, Vec<usize>>, budget: usize) -> Vec<usize> {
    order
        .values()
        .flat_map(|v| v.iter().take(budget).copied())
        .collect()
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
        return Err(EvalError::Options(
            "a budget sweep needs at least one budget, one run and one selection".into(),
        ));
    }
    for m in models {
        m.model
            .check_cache(&cache.meta)
            .map_err(|e| EvalError::Mismatch(format!("model `{}`: {e}", m.label)))?;
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

fn point(budget: usize, reports: &[EvalReport]) -> SweepPoint {
    let mut per: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in reports {
        for (a, v) in &r.per_attribute {
            per.entry(a.clone()).or_default().push(*v);
        }
    }
    SweepPoint {
        budget,
        average: Stat::of(reports.iter().map(|r| r.average).collect()),
        per_attribute: per.into_iter().map(|(a, v)| (a, Stat::of(v))).collect(),
    }
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
                    let groups = choose_from_pools(&m.model, study.cache, &order, max_b, seed)
                        .map_err(|e| EvalError::Stage2 {
                            model: m.label.clone(),
                            budget: max_b,
                            run,
                            message: format!("choosing the pairs to label: {e}"),
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
                    let model = stage2
                        .adapt(&m.model, cache, &sample, run_seed(opts.seed, run, 2))
                        .map_err(|message| EvalError::Stage2 {
                            model: label.clone(),
                            budget,
                            run,
                            message,
                        })?;
                    evaluate_indices(&model, cache, test_idx, &Gating::Model, &m.label)?
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
        return Err(EvalError::Options(format!("HyRe needs more than {shots} test pairs in some attribute; lower --hyre-shots or pass 0")));
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
                    .map_err(|message| EvalError::Stage2 {
                        model: format!("{}+hyre", m.label),
                        budget: shots,
                        run,
                        message,
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
            model: &MixtureModel,
            _: &EmbeddingCache,
            idx: &[usize],
            seed: u64,
        ) -> std::result::Result<MixtureModel, String> {
            self.0
                .lock()
                .map_err(|e| e.to_string())?
                .push((seed, idx.to_vec()));
            Ok(model.clone())
        }
        fn hyre_weights(
            &self,
            model: &MixtureModel,
            _: &EmbeddingCache,
            _: &[usize],
        ) -> std::result::Result<Vec<f32>, String> {
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
        let models = [NamedModel {
            label: "micro".into(),
            model: random_model(6, 3, Some(4), 2),
        }];
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
            &models[0].model,
            &cache,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_nested_across_budgets_and_differ_across_runs() {
        let train: BTreeMap<String, Vec<usize>> = [
            ("a".to_string(), (0..50).collect()),
            ("b".to_string(), (50..60).collect()),
        ]
        .into();
        let o0 = shuffled_train(&train, 7, 0);
        let o1 = shuffled_train(&train, 7, 1);
        assert_ne!(o0, o1);
        assert_eq!(o0, shuffled_train(&train, 7, 0));
        let b5 = take_budget(&o0, 5);
        let b20 = take_budget(&o0, 20);
        assert_eq!(b5.len(), 10);
        // attribute b has only 10 rows: B = 20 takes them all.
        assert_eq!(b20.len(), 30);
        assert!(b5.iter().all(|i| b20.contains(i)));
    }
}

/// Studies of the same design (e.g. one per training seed) as one: each point's runs pooled, so
/// its mean ± std is over every (seed, run). Fails when the studies' rows or budgets differ.
pub fn pool_sweeps(reports: &[SweepReport]) -> Result<SweepReport> {
    let Some(first) = reports.first() else {
        return Err(EvalError::Options("no budget studies to pool".into()));
    };
    let mut out = first.clone();
    for other in &reports[1..] {
        let same_design = other.budgets == first.budgets
            && other.attributes == first.attributes
            && other.rows.len() == first.rows.len();
        if !same_design {
            return Err(EvalError::Options(
                "budget studies with different budgets, attributes or rows cannot be pooled".into(),
            ));
        }
        for (row, o) in out.rows.iter_mut().zip(&other.rows) {
            if row.method != o.method || row.points.len() != o.points.len() {
                return Err(EvalError::Options(format!(
                    "row `{}` does not match `{}` in another study",
                    row.method, o.method
                )));
            }
            for (p, q) in row.points.iter_mut().zip(&o.points) {
                p.average = pooled(&p.average, &q.average);
                for (a, st) in p.per_attribute.iter_mut() {
                    if let Some(qs) = q.per_attribute.get(a) {
                        *st = pooled(st, qs);
                    }
                }
            }
        }
        out.runs += other.runs;
        for n in &other.notes {
            if !out.notes.contains(n) {
                out.notes.push(n.clone());
            }
        }
    }
    Ok(out)
}

fn pooled(a: &Stat, b: &Stat) -> Stat {
    Stat::of(a.values.iter().chain(&b.values).copied().collect())
}

#[cfg(test)]
mod pool_tests {
    use super::*;

    fn study(values: &[f64]) -> SweepReport {
        let point = SweepPoint {
            budget: 10,
            average: Stat::of(values.to_vec()),
            per_attribute: [("u".to_string(), Stat::of(values.to_vec()))].into(),
        };
        SweepReport {
            budgets: vec![10],
            runs: values.len(),
            seed: 0,
            hyre_shots: 0,
            attributes: vec!["u".into()],
            rows: vec![SweepRow {
                method: "micro".into(),
                kind: RowKind::Adapted,
                points: vec![point],
                selection: Selection::Random,
            }],
            notes: vec![],
        }
    }

    #[test]
    fn pooled_points_are_over_every_run_of_every_study() {
        let p = pool_sweeps(&[study(&[0.5, 0.7]), study(&[0.9])]).unwrap();
        let avg = &p.rows[0].points[0].average;
        assert_eq!(p.runs, 3);
        assert!((avg.mean - 0.7).abs() < 1e-12);
        assert!((avg.std - (0.08f64 / 3.0).sqrt()).abs() < 1e-12);
        let mut other = study(&[0.1]);
        other.budgets = vec![20];
        assert!(pool_sweeps(&[study(&[0.5]), other]).is_err());
    }
}
