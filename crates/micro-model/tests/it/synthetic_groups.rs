//! Stage 1 on data with known truth: four groups in two opposite pairs.
//!
//! The mixture's best head per group must come within 2 points of the Bayes-optimal accuracy;
//! a single BT model cannot (opposite groups pull it to chance), and its test cross-entropy
//! cannot beat the Theorem 3.2 bound.

use micro_cache::EmbeddingCache;
use micro_model::synth::{generate, SynthConfig, Truth};
use micro_model::{log_sigmoid, Method, MixtureModel};
use micro_model::{train, TrainConfig};
use std::collections::BTreeMap;

fn data() -> (EmbeddingCache, Truth) {
    generate(&SynthConfig {
        pairs: 24_000,
        dim: 16,
        groups: 4,
        seed: 7,
        ..Default::default()
    })
    .unwrap()
}

/// Accuracy of each head on each group's test pairs.
fn head_accuracy(model: &MixtureModel, cache: &EmbeddingCache) -> BTreeMap<String, Vec<f64>> {
    let diff = cache.diff();
    let mut out: BTreeMap<String, (Vec<f64>, usize)> = BTreeMap::new();
    for i in cache.indices(|p| !p.is_train()) {
        let margins = model.margins(diff.row(i));
        let entry = out
            .entry(cache.pairs[i].group().to_string())
            .or_insert((vec![0.0; model.k()], 0));
        for (k, m) in margins.iter().enumerate() {
            entry.0[k] += f64::from(u8::from(*m > 0.0));
        }
        entry.1 += 1;
    }
    out.into_iter()
        .map(|(g, (c, n))| (g, c.into_iter().map(|c| c / n as f64).collect()))
        .collect()
}

fn test_log_loss(model: &MixtureModel, cache: &EmbeddingCache) -> f64 {
    let diff = cache.diff();
    let idx = cache.indices(|p| !p.is_train());
    -idx.iter()
        .map(|&i| log_sigmoid(model.margins(diff.row(i))[0]) as f64)
        .sum::<f64>()
        / idx.len() as f64
}

#[test]
fn mixture_recovers_groups_and_single_model_hits_the_bound() {
    let (cache, truth) = data();
    let arrays = cache.training_arrays(micro_cache::RouterInput::Pair);

    let cfg = TrainConfig {
        method: Method::Micro,
        k: 4,
        max_epochs: 60,
        seed: 1,
        ..Default::default()
    };
    let (micro, _) = train(&arrays, &cfg, |_| {}).unwrap();
    let per_head = head_accuracy(&micro, &cache);
    for (group, bayes) in &truth.bayes_accuracy {
        let best = per_head[group].iter().copied().fold(0.0, f64::max);
        assert!(
            best >= bayes - 0.02,
            "{group}: best head {best:.4} vs Bayes-optimal {bayes:.4}"
        );
    }

    let cfg = TrainConfig {
        method: Method::Single,
        k: 1,
        max_epochs: 60,
        seed: 1,
        ..Default::default()
    };
    let (single, _) = train(&arrays, &cfg, |_| {}).unwrap();
    let single_acc = head_accuracy(&single, &cache);
    let worst_gap = truth
        .bayes_accuracy
        .iter()
        .map(|(g, bayes)| bayes - single_acc[g][0])
        .fold(f64::NEG_INFINITY, f64::max);
    assert!(
        worst_gap > 0.02,
        "the single model should miss some group by more than 2 points, gap {worst_gap:.4}"
    );

    let loss = test_log_loss(&single, &cache);
    let bound = truth.theorem_3_2.bound;
    assert!(
        loss >= bound,
        "single BT test cross-entropy {loss:.4} is below the Theorem 3.2 bound {bound:.4}"
    );
    assert!(
        truth.theorem_3_2.variance > 0.0,
        "the data should make the bound's variance term positive"
    );
}

/// The router-input ceiling: with no context signal it is what the prompt alone tells about the
/// group (well below knowing the group); with an overwhelming shift it reaches the per-group
/// Bayes accuracy; it never exceeds it.
#[test]
fn routed_bayes_accuracy_grows_with_the_context_shift() {
    let at = |shift: f64| {
        let cfg = SynthConfig {
            pairs: 4000,
            dim: 16,
            groups: 4,
            seed: 5,
            context_shift: shift,
            ..SynthConfig::default()
        };
        generate(&cfg).unwrap().1
    };
    let (none, some, strong) = (at(0.0), at(3.0), at(20.0));
    for t in [&none, &some, &strong] {
        assert!(t.routed_bayes_average <= t.bayes_average + 1e-12, "{t:?}");
    }
    assert!(
        none.routed_bayes_average < none.bayes_average - 0.15,
        "{none:?}"
    );
    assert!(none.routed_bayes_average < some.routed_bayes_average);
    assert!(some.routed_bayes_average < strong.routed_bayes_average);
    assert!((strong.routed_bayes_average - strong.bayes_average).abs() < 1e-3);
}
