//! The Stage 1 trainer: a known logistic-regression solution, a separable mixture, the errors
//! a user can provoke, reproducibility and the saved artefact.

use micro_cache::{CacheMeta, Matrix, TrainingArrays};
use micro_data::{PrefPair, Split};
use micro_model::{train, Gate, Method, MixtureModel, TrainConfig, TrainError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn arrays(diff: Matrix, prompt: Matrix) -> TrainingArrays {
    let pairs = vec![PrefPair::new("q", "a", "b"); diff.rows];
    TrainingArrays {
        meta: CacheMeta {
            dim: diff.cols,
            prompt_dim: prompt.cols,
            n: diff.rows,
            ..Default::default()
        },
        pairs,
        diff,
        prompt,
        router_input: micro_cache::RouterInput::Prompt,
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller: keeps the test free of distribution crates.
    let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random_range(0.0..1.0));
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// Maximises sum_i log sigma(w . u_i) by Newton's method (IRLS) in f64.
fn newton_logistic(u: &[Vec<f64>]) -> Vec<f64> {
    let d = u[0].len();
    let mut w = vec![0.0; d];
    for _ in 0..50 {
        let mut g = vec![0.0; d];
        let mut h = vec![vec![0.0; d]; d];
        for x in u {
            let s = 1.0 / (1.0 + (-x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()).exp());
            for a in 0..d {
                g[a] += (1.0 - s) * x[a];
                for b in 0..d {
                    h[a][b] += s * (1.0 - s) * x[a] * x[b];
                }
            }
        }
        let step = solve(h, g);
        w.iter_mut().zip(&step).for_each(|(w, s)| *w += s);
        if step.iter().map(|s| s * s).sum::<f64>() < 1e-24 {
            break;
        }
    }
    w
}

/// Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap();
        a.swap(c, p);
        b.swap(c, p);
        for r in c + 1..n {
            let f = a[r][c] / a[c][c];
            let pivot_row = a[c].clone();
            for (x, p) in a[r].iter_mut().zip(&pivot_row).skip(c) {
                *x -= f * p;
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        x[r] = (b[r] - (r + 1..n).map(|k| a[r][k] * x[k]).sum::<f64>()) / a[r][r];
    }
    x
}

#[test]
fn single_head_recovers_the_logistic_regression_solution() {
    let (n, d) = (400, 5);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let w_true = [1.0, -0.5, 0.8, 0.0, 0.3];
    let mut rows = Vec::new();
    for _ in 0..n {
        let x: Vec<f64> = (0..d).map(|_| normal(&mut rng)).collect();
        let p = 1.0 / (1.0 + (-x.iter().zip(&w_true).map(|(a, b)| a * b).sum::<f64>()).exp());
        // A pair labelled the other way round is the same pair with chosen and rejected swapped.
        let sign = if rng.random_range(0.0..1.0) < p {
            1.0
        } else {
            -1.0
        };
        rows.push(x.iter().map(|v| v * sign).collect::<Vec<f64>>());
    }
    let want = newton_logistic(&rows);
    let diff = Matrix::from_rows(
        &rows
            .iter()
            .map(|r| r.iter().map(|&v| v as f32).collect())
            .collect::<Vec<_>>(),
    );
    let cfg = TrainConfig {
        method: Method::Single,
        k: 1,
        lr: 0.05,
        batch: n,
        max_epochs: 600,
        holdout: 0.0,
        ..Default::default()
    };
    let (model, report) = train(&arrays(diff, Matrix::zeros(n, 1)), &cfg, |_| {}).unwrap();
    assert_eq!(report.epochs_run, 600);
    let got: Vec<f64> = model.heads().row(0).iter().map(|&v| v as f64).collect();
    let err = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm = want.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!(
        err / norm < 2e-3,
        "trained {got:?} vs Newton {want:?}: relative error {}",
        err / norm
    );
}

/// Two groups, told apart by the prompt, with opposite preferences: a mixture with a router
/// separates them, a single head cannot.
fn two_groups(n: usize, seed: u64) -> TrainingArrays {
    let (d, pd) = (8, 4);
    // The same preference direction for every call; only the pairs depend on the seed.
    let mut wrng = ChaCha8Rng::seed_from_u64(100);
    let w: Vec<f64> = (0..d).map(|_| normal(&mut wrng)).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut diff, mut prompt) = (Vec::new(), Vec::new());
    for i in 0..n {
        let group = i % 2;
        let u: Vec<f64> = (0..d).map(|_| normal(&mut rng)).collect();
        let score: f64 =
            u.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() * if group == 0 { 1.0 } else { -1.0 };
        let sign = if score >= 0.0 { 1.0 } else { -1.0 };
        diff.push(u.iter().map(|v| (v * sign) as f32).collect::<Vec<f32>>());
        let mut e: Vec<f32> = (0..pd).map(|_| 0.3 * normal(&mut rng) as f32).collect();
        e[0] += if group == 0 { 1.0 } else { -1.0 };
        prompt.push(e);
    }
    arrays(Matrix::from_rows(&diff), Matrix::from_rows(&prompt))
}

fn accuracy(model: &MixtureModel, data: &TrainingArrays) -> f64 {
    let right = (0..data.diff.rows)
        .filter(|&i| model.pair_prob(data.prompt.row(i), data.diff.row(i)) > 0.5)
        .count();
    right as f64 / data.diff.rows as f64
}

#[test]
fn micro_separates_opposite_groups_that_a_single_head_cannot() {
    let (train_set, test_set) = (two_groups(1200, 2), two_groups(600, 3));
    let cfg = TrainConfig {
        k: 2,
        router_hidden: Some(16),
        lr: 1e-2,
        max_epochs: 60,
        ..Default::default()
    };
    let (model, report) = train(&train_set, &cfg, |_| {}).unwrap();
    let acc = accuracy(&model, &test_set);
    assert!(acc > 0.9, "MiCRo test accuracy {acc} (report {report:?})");
    let single = TrainConfig {
        method: Method::Single,
        k: 1,
        ..cfg.clone()
    };
    let (model1, _) = train(&train_set, &single, |_| {}).unwrap();
    let acc1 = accuracy(&model1, &test_set);
    assert!(
        acc1 < 0.7,
        "a single head should not fit opposite groups, got {acc1}"
    );
}

#[test]
fn pairs_of_the_test_split_are_not_trained_on() {
    let mut data = two_groups(40, 4);
    for p in data.pairs.iter_mut() {
        p.split = Some(Split::Test);
    }
    let err = train(
        &data,
        &TrainConfig {
            k: 2,
            ..Default::default()
        },
        |_| {},
    )
    .unwrap_err();
    assert_eq!(err, TrainError::NoTrainPairs { pairs: 40 });
    // With only 3 train pairs left, 2 heads still fit but 5 do not.
    for p in data.pairs.iter_mut().take(3) {
        p.split = Some(Split::Train);
    }
    let cfg = TrainConfig {
        k: 2,
        holdout: 0.0,
        max_epochs: 2,
        ..Default::default()
    };
    let (_, report) = train(&data, &cfg, |_| {}).unwrap();
    assert_eq!(report.n_train, 3);
    let err = train(&data, &TrainConfig { k: 5, ..cfg }, |_| {}).unwrap_err();
    assert_eq!(
        err,
        TrainError::TooFewPairs {
            heads: 5,
            pairs: 3,
            held_out: 0
        }
    );
    assert!(
        err.to_string().contains("5 heads for 3 training pairs"),
        "{err}"
    );
}

#[test]
fn bad_settings_and_bad_numbers_are_clear_errors() {
    let data = two_groups(40, 5);
    let err = train(
        &data,
        &TrainConfig {
            k: 0,
            ..Default::default()
        },
        |_| {},
    )
    .unwrap_err();
    assert_eq!(err, TrainError::NoHeads);
    assert!(err.to_string().contains("K = 0"), "{err}");
    let err = train(
        &data,
        &TrainConfig {
            method: Method::Single,
            k: 3,
            ..Default::default()
        },
        |_| {},
    )
    .unwrap_err();
    assert_eq!(err, TrainError::SingleWithHeads { heads: 3 });
    assert!(err.to_string().contains("one head"), "{err}");
    let mut nan = two_groups(40, 5);
    nan.diff.row_mut(7)[2] = f32::NAN;
    let err = train(
        &nan,
        &TrainConfig {
            k: 2,
            ..Default::default()
        },
        |_| {},
    )
    .unwrap_err();
    assert_eq!(err, TrainError::NotFiniteEmbedding { row: 7 });
    assert!(err.to_string().contains("row 7"), "{err}");
    let err = train(
        &data,
        &TrainConfig {
            k: 2,
            lr: 1e30,
            max_epochs: 50,
            holdout: 0.0,
            ..Default::default()
        },
        |_| {},
    );
    assert!(
        matches!(
            err,
            Err(TrainError::NotFiniteLoss {
                epoch: 1..,
                step: 1..,
                ..
            })
        ),
        "an absurd learning rate must be reported, got {:?}",
        err.map(|r| r.1)
    );
}

#[test]
fn a_seed_gives_the_same_model_and_another_seed_another() {
    let data = two_groups(300, 6);
    let cfg = TrainConfig {
        k: 3,
        router_hidden: Some(8),
        max_epochs: 5,
        ..Default::default()
    };
    let (a, ra) = train(&data, &cfg, |_| {}).unwrap();
    let (b, rb) = train(&data, &cfg, |_| {}).unwrap();
    assert_eq!(a.heads(), b.heads());
    assert_eq!(a.gate(), b.gate());
    assert_eq!(ra.best_holdout_nll, rb.best_holdout_nll);
    let (c, _) = train(&data, &TrainConfig { seed: 7, ..cfg }, |_| {}).unwrap();
    assert_ne!(a.heads(), c.heads());
}

#[test]
fn heads_start_apart_and_stay_apart() {
    let data = two_groups(200, 8);
    let (model, _) = train(
        &data,
        &TrainConfig {
            method: Method::SharedBase,
            k: 3,
            max_epochs: 3,
            ..Default::default()
        },
        |_| {},
    )
    .unwrap();
    assert_ne!(model.heads().row(0), model.heads().row(1));
    assert!(matches!(model.gate(), Gate::Static(z) if z == &vec![0.0; 3]));
}

#[test]
fn a_trained_model_saves_and_loads_unchanged_with_its_provenance() {
    let data = two_groups(200, 9);
    let dir = tempfile::tempdir().unwrap();
    for (method, k, hidden) in [
        (Method::Micro, 3, Some(8)),
        (Method::Micro, 2, None),
        (Method::Static, 3, None),
        (Method::Single, 1, None),
    ] {
        let cfg = TrainConfig {
            method,
            k,
            router_hidden: hidden,
            max_epochs: 3,
            ..Default::default()
        };
        let (model, report) = train(&data, &cfg, |_| {}).unwrap();
        let path = dir.path().join(format!("{method}-{k}"));
        model.save(&path).unwrap();
        let back = MixtureModel::load(&path).unwrap();
        assert_eq!(back, model);
        let stage1 = back.config().training.stage1.as_ref().unwrap();
        assert_eq!(stage1.epochs_run, report.epochs_run);
        assert_eq!(stage1.hyperparameters.k, k);
        assert_eq!(back.config().train_pairs_hash.len(), 64);
    }
}

#[test]
fn early_stopping_keeps_the_best_held_out_epoch() {
    let data = two_groups(400, 10);
    let cfg = TrainConfig {
        k: 2,
        router_hidden: Some(8),
        lr: 5e-2,
        max_epochs: 40,
        patience: 3,
        min_epochs: 0,
        ..Default::default()
    };
    let (_, report) = train(&data, &cfg, |_| {}).unwrap();
    let best = report
        .history
        .iter()
        .filter_map(|e| e.holdout_nll)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(report.best_holdout_nll, Some(best));
    assert_eq!(
        report.history[report.best_epoch - 1].holdout_nll,
        Some(best)
    );
    if report.stopped_early {
        assert_eq!(report.epochs_run, report.best_epoch + 3);
    }
}

#[test]
fn early_stopping_waits_for_min_epochs() {
    let data = two_groups(400, 10);
    let cfg = TrainConfig {
        k: 2,
        router_hidden: Some(8),
        lr: 5e-2,
        max_epochs: 40,
        patience: 1,
        min_epochs: 25,
        ..Default::default()
    };
    let (_, report) = train(&data, &cfg, |_| {}).unwrap();
    assert!(
        report.epochs_run >= 25,
        "stopped after {} epochs, before min_epochs",
        report.epochs_run
    );
}
