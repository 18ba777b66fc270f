use crate::common::{cache, routed_model, sigma, static_model, two_users, Row};
use micro_data::Split;
use micro_eval::{evaluate, evaluate_indices, EvalError, EvalOptions, Gating, SplitSel};
use std::collections::BTreeMap;

/// Five test pairs with a static mixture (0.3, 0.7), and one train pair that must not count.
fn small() -> micro_cache::EmbeddingCache {
    let r = |attribute, split, diff: [f32; 2]| Row {
        attribute,
        split,
        diff: diff.to_vec(),
        prompt: vec![0.0, 0.0],
    };
    cache(&[
        r("x", Split::Test, [2.0, -1.0]),
        r("x", Split::Test, [-1.0, 1.0]),
        r("y", Split::Test, [0.5, 0.5]),
        r("y", Split::Test, [0.0, 0.0]),
        r("y", Split::Test, [3.0, 0.0]),
        r("x", Split::Train, [5.0, 5.0]),
    ])
}

fn weights_03_07() -> micro_model::MixtureModel {
    static_model(2, vec![0.3f32.ln(), 0.7f32.ln()])
}

#[test]
fn accuracy_and_log_loss_match_the_closed_form() {
    let report = evaluate(&weights_03_07(), &small(), &EvalOptions::default()).unwrap();
    let p = |d0: f64, d1: f64| 0.3 * sigma(d0) + 0.7 * sigma(d1);
    let probs = [
        p(2.0, -1.0),
        p(-1.0, 1.0),
        p(0.5, 0.5),
        p(0.0, 0.0),
        p(3.0, 0.0),
    ];
    // 0.4525 wrong, 0.5924 right | 0.6225 right, 0.5 exactly (a tie: wrong), 0.6358 right.
    assert!(probs[0] < 0.5 && probs[1] > 0.5 && probs[2] > 0.5 && probs[4] > 0.5);
    assert_eq!(probs[3], 0.5);
    assert_eq!(report.per_attribute["x"], 0.5);
    assert!((report.per_attribute["y"] - 2.0 / 3.0).abs() < 1e-12);
    assert!((report.average - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    assert_eq!(
        report.n,
        BTreeMap::from([("x".to_string(), 2), ("y".to_string(), 3)])
    );
    assert_eq!(report.n_pairs, 5);
    let want_loss = -probs.iter().map(|p| p.ln()).sum::<f64>() / 5.0;
    assert!(
        (report.log_loss - want_loss).abs() < 1e-6,
        "{} vs {want_loss}",
        report.log_loss
    );
    let want_y = -(probs[2].ln() + probs[3].ln() + probs[4].ln()) / 3.0;
    assert!((report.per_attribute_log_loss["y"] - want_y).abs() < 1e-6);
    assert_eq!(report.split, "test");
}

#[test]
fn per_head_matrix_best_head_and_mean_weights() {
    let report = evaluate(&weights_03_07(), &small(), &EvalOptions::default()).unwrap();
    assert_eq!(report.per_head["x"], vec![0.5, 0.5]);
    let y = &report.per_head["y"];
    assert!((y[0] - 2.0 / 3.0).abs() < 1e-12 && (y[1] - 1.0 / 3.0).abs() < 1e-12);
    // x is a tie between the heads: the first wins.
    assert_eq!(report.best_head["x"], 0);
    assert_eq!(report.best_head["y"], 0);
    assert!((report.best_head_average - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    for w in report.mean_weights.values() {
        assert!((w[0] - 0.3).abs() < 1e-6 && (w[1] - 0.7).abs() < 1e-6);
    }
}

#[test]
fn each_pair_is_routed_by_its_own_prompt() {
    let cache = two_users(0, 8);
    let model = routed_model(2, 2.0);
    let report = evaluate(
        &model,
        &cache,
        &EvalOptions {
            split: SplitSel::Test,
            label: Some("micro".into()),
        },
    )
    .unwrap();
    let (hi, lo) = (sigma(2.0), 1.0 - sigma(2.0));
    assert!(
        (report.mean_weights["a"][0] - hi).abs() < 1e-6
            && (report.mean_weights["a"][1] - lo).abs() < 1e-6
    );
    assert!((report.mean_weights["b"][1] - hi).abs() < 1e-6);
    assert_eq!(report.per_head["a"], vec![1.0, 0.0]);
    assert_eq!(report.per_head["b"], vec![0.0, 1.0]);
    assert_eq!((report.best_head["a"], report.best_head["b"]), (0, 1));
    assert_eq!(report.average, 1.0);
    let want: f64 = (0..8)
        .map(|i| {
            let t = i as f64 / 8.0;
            -(hi * sigma(1.0 + t) + lo * sigma(-(0.5 + t))).ln()
        })
        .sum::<f64>()
        / 8.0;
    assert!((report.per_attribute_log_loss["a"] - want).abs() < 1e-6);
    assert!((report.per_attribute_log_loss["b"] - want).abs() < 1e-6);
    assert_eq!(report.method, "micro");
    assert_eq!(report.model_method, "micro");
}

#[test]
fn fixed_weights_per_attribute_override_the_gate() {
    let cache = two_users(0, 4);
    let model = static_model(2, vec![0.0, 0.0]);
    let idx: Vec<usize> = (0..cache.len()).collect();
    let w = BTreeMap::from([("a".to_string(), vec![0.0, 1.0])]);
    let r = evaluate_indices(&model, &cache, &idx, &Gating::PerAttribute(w), "hyre").unwrap();
    // a is read by head 1 alone (always wrong); b keeps the uniform gate (always right).
    assert_eq!(r.per_attribute["a"], 0.0);
    assert_eq!(r.per_attribute["b"], 1.0);
    assert_eq!(r.mean_weights["a"], vec![0.0, 1.0]);
    let bad = BTreeMap::from([("a".to_string(), vec![1.0])]);
    assert!(matches!(
        evaluate_indices(&model, &cache, &idx, &Gating::PerAttribute(bad), "x"),
        Err(EvalError::GateWeights {
            weights: 1,
            k: 2,
            ..
        })
    ));
}

#[test]
fn backbone_scores_give_a_baseline_with_ties_wrong() {
    let mut cache = small();
    cache.scores = Some((
        vec![1.0, 0.0, 2.0, 1.0, 5.0, 0.0],
        vec![0.0, 1.0, 1.0, 1.0, 4.0, 9.0],
    ));
    let report = evaluate(&weights_03_07(), &cache, &EvalOptions::default()).unwrap();
    let b = report.backbone.expect("scores present");
    assert_eq!(b.per_attribute["x"], 0.5);
    assert!((b.per_attribute["y"] - 2.0 / 3.0).abs() < 1e-12);
    assert!(
        evaluate(&weights_03_07(), &small(), &EvalOptions::default())
            .unwrap()
            .backbone
            .is_none()
    );
}

#[test]
fn split_selection_and_an_empty_split() {
    let all = evaluate(
        &weights_03_07(),
        &small(),
        &EvalOptions {
            split: SplitSel::All,
            label: None,
        },
    )
    .unwrap();
    assert_eq!(all.n["x"], 3);
    assert_eq!(all.per_attribute["x"], 2.0 / 3.0);
    let train = evaluate(
        &weights_03_07(),
        &small(),
        &EvalOptions {
            split: SplitSel::Train,
            label: None,
        },
    )
    .unwrap();
    assert_eq!(train.n_pairs, 1);
    let only_train = two_users(3, 0);
    let err = evaluate(&weights_03_07(), &only_train, &EvalOptions::default()).unwrap_err();
    assert!(matches!(err, EvalError::NoPairs { .. }));
    assert!(err.to_string().contains("the split `all`"), "{err}");
}

#[test]
fn a_mismatched_cache_is_refused_with_the_widths() {
    let model = static_model(3, vec![0.0; 3]);
    let err = evaluate(&model, &small(), &EvalOptions::default()).unwrap_err();
    assert!(matches!(
        &err,
        EvalError::Mismatch {
            cause: micro_model::CacheMismatch::Widths {
                model: (3, _),
                cache: (2, _),
                ..
            },
            ..
        }
    ));
    let msg = err.to_string();
    assert!(msg.contains("3-d") && msg.contains("2-d"), "{msg}");
}

#[test]
fn the_json_has_the_documented_keys() {
    let report = evaluate(&weights_03_07(), &small(), &EvalOptions::default()).unwrap();
    let v: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert!(v["average"].is_f64());
    assert!(v["per_attribute"]["x"].is_f64());
    assert_eq!(v["per_head"]["y"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["n"]["y"].as_u64(), Some(3));
    assert!(v["log_loss"].is_f64());
    assert_eq!(v["best_head"]["x"].as_u64(), Some(0));
    assert_eq!(v["mean_weights"]["x"].as_array().map(Vec::len), Some(2));
    let back: micro_eval::EvalReport = serde_json::from_value(v).unwrap();
    assert_eq!(back, report);
}

#[test]
fn the_table_names_every_attribute_and_head() {
    let mut cache = small();
    cache.scores = Some((vec![1.0; 6], vec![0.0; 6]));
    let report = evaluate(&weights_03_07(), &cache, &EvalOptions::default()).unwrap();
    let t = micro_eval::render_table(&report);
    for needle in [
        "attribute",
        "x ",
        "y ",
        "h0",
        "h1",
        "average",
        "0.5833",
        "backbone",
        "0.5000*",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
    let c = micro_eval::render_comparison(&[report]);
    assert!(
        c.contains("static best head") && c.contains("backbone"),
        "{c}"
    );
}
