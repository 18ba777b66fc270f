use crate::common::{opposed, routed_model, static_model, Toy};
use micro_eval::{budget_sweep, NamedModel, RowKind, SweepOptions};

fn models() -> Vec<NamedModel> {
    vec![
        NamedModel::new("micro", routed_model(2, 0.0)),
        NamedModel::new("static", static_model(2, vec![0.0, 0.0])),
    ]
}

#[test]
fn adapted_rows_improve_fixed_rows_stay_and_hyre_holds_out_labels() {
    let cache = opposed(12, 20);
    let toy = Toy::default();
    let opts = SweepOptions {
        budgets: vec![5, 0, 50],
        runs: 3,
        seed: 11,
        hyre_shots: 4,
    };
    let sw = budget_sweep(&models(), &cache, &opts, &toy, &|_| {}).unwrap();
    assert_eq!(sw.budgets, vec![0, 5, 50]);
    assert_eq!(sw.attributes, vec!["a".to_string(), "b".to_string()]);
    let micro = &sw.rows[0];
    assert_eq!(
        (micro.method.as_str(), micro.kind),
        ("micro", RowKind::Adapted)
    );
    assert_eq!(micro.points.len(), 3);
    // B = 0 is the Stage 1 router (uniform here): right on a, wrong on b.
    assert_eq!(micro.points[0].per_attribute["a"].mean, 1.0);
    assert_eq!(micro.points[0].per_attribute["b"].mean, 0.0);
    assert_eq!(micro.points[0].average.values, vec![0.5; 3]);
    for p in &micro.points[1..] {
        assert_eq!(p.average.mean, 1.0);
        assert_eq!(p.average.values.len(), 3);
    }
    let fixed = &sw.rows[1];
    assert_eq!(fixed.kind, RowKind::Fixed);
    assert!(fixed
        .points
        .iter()
        .all(|p| p.average.mean == 0.5 && p.average.std == 0.0));
    // Budgets 5 and 50, three runs each; 50 exceeds the 12 train pairs per user.
    let calls = toy.adapt_calls.lock().unwrap();
    assert_eq!(calls.len(), 6);
    let mut sizes: Vec<usize> = calls.iter().map(|(_, s)| s.len()).collect();
    sizes.sort();
    assert_eq!(sizes, vec![10, 10, 10, 24, 24, 24]);
    assert!(
        sw.notes.iter().any(|n| n.contains("12 train pairs")),
        "{:?}",
        sw.notes
    );
    // HyRe for both two-head models: 3 runs x 2 users, each from 4 labelled test pairs.
    let hyre: Vec<_> = sw.rows.iter().filter(|r| r.kind == RowKind::Hyre).collect();
    assert_eq!(
        hyre.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        vec!["micro+hyre", "static+hyre"]
    );
    assert_eq!(hyre[0].points[0].budget, 4);
    assert_eq!(hyre[0].points[0].average.mean, 1.0);
    let table = micro_eval::render_sweep(&sw);
    assert!(
        table.contains("any") && table.contains("4*") && table.contains("1.0000±0.0000"),
        "{table}"
    );
    let hc = toy.hyre_calls.lock().unwrap();
    assert_eq!(hc.len(), 12);
    assert!(hc.iter().all(|&(n, test)| n == 4 && test));
}

#[test]
fn runs_draw_different_samples_and_the_seed_reproduces_them() {
    let cache = opposed(30, 6);
    let opts = SweepOptions {
        budgets: vec![3],
        runs: 4,
        seed: 5,
        hyre_shots: 0,
    };
    let samples = |seed| {
        let toy = Toy::default();
        budget_sweep(
            &models()[..1],
            &cache,
            &SweepOptions {
                seed,
                ..opts.clone()
            },
            &toy,
            &|_| {},
        )
        .unwrap();
        let mut c = toy.adapt_calls.into_inner().unwrap();
        c.sort();
        c
    };
    let first = samples(5);
    let distinct: std::collections::BTreeSet<_> = first.iter().map(|(_, s)| s.clone()).collect();
    assert!(distinct.len() > 1, "every run drew the same sample");
    assert_eq!(first, samples(5));
    assert_ne!(first, samples(6));
}

#[test]
fn a_sweep_without_test_pairs_or_budgets_is_refused() {
    let toy = Toy::default();
    let no_test = opposed(5, 0);
    assert!(budget_sweep(&models(), &no_test, &SweepOptions::default(), &toy, &|_| {}).is_err());
    let opts = SweepOptions {
        budgets: vec![],
        ..Default::default()
    };
    assert!(budget_sweep(&models(), &opposed(5, 5), &opts, &toy, &|_| {}).is_err());
}

#[test]
fn micro_route_adapts_the_router_and_reweights_by_hyre() {
    // Each user's pairs carry the user's context: Stage 2 weighs the experts on all of a
    // context's labelled pairs together.
    let mut cache = opposed(30, 20);
    for p in cache.pairs.iter_mut() {
        p.context = p.attribute.clone();
    }
    let mut stage2 = micro_eval::RouteStage2::default();
    // 60 pairs make 2 minibatches an epoch: a large step lets 20 steps move the router.
    stage2.adapt.lr = 0.3;
    let opts = SweepOptions {
        budgets: vec![0, 20],
        runs: 2,
        seed: 3,
        hyre_shots: 4,
    };
    let sw = budget_sweep(&models()[..1], &cache, &opts, &stage2, &|_| {}).unwrap();
    let micro = &sw.rows[0].points;
    assert_eq!(micro[0].average.mean, 0.5);
    assert!(
        micro[1].average.mean > 0.9,
        "adapted accuracy {:?}",
        micro[1].average
    );
    let hyre = &sw.rows[1];
    assert_eq!(
        (hyre.method.as_str(), hyre.kind),
        ("micro+hyre", RowKind::Hyre)
    );
    assert_eq!(hyre.points[0].average.mean, 1.0);
}
