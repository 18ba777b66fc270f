//! Active Stage 2 on data with a known truth, small: a mixed cache (binary-only Stage 1 pairs
//! plus context-labelled pairs of 4 groups), Stage 1 on the binary pairs, then Stage 2 with
//! pairs drawn at random or chosen by the information of their answer.
//!
//! The claim kept here: 5 chosen pairs per group name every group's best head and, with the
//! pool's inputs (`pool_inputs`), reach what 50 random pairs per group reach; 5 random pairs do
//! neither as a rule.

use micro_cache::{EmbeddingCache, RouterInput};
use micro_model::synth::{generate, SynthConfig};
use micro_model::MixtureModel;
use micro_model::{train, TrainConfig};
use micro_route::accuracy::{average, by_attribute, head_accuracy, routed_credit};
use micro_route::budget::group_by_attribute;
use micro_route::likelihood::{head_log_probs, head_margins};
use micro_route::query::choose_budget;
use micro_route::{adapt, draw_budget, AdaptConfig};
use std::collections::BTreeMap;

fn setup() -> (MixtureModel, EmbeddingCache) {
    let synth = SynthConfig {
        pairs: 8_000,
        dim: 16,
        groups: 4,
        seed: 5,
        gate_scale: 3.0,
        unlabelled_fraction: 0.8,
        ..SynthConfig::default()
    };
    let (cache, _) = generate(&synth).unwrap();
    let arrays = cache.training_arrays(RouterInput::Pair);
    let cfg = TrainConfig {
        k: 4,
        alpha: 0.05,
        lr: 1e-2,
        max_epochs: 40,
        seed: 1,
        threads: 1,
        ..TrainConfig::default()
    };
    (train(&arrays, &cfg, |_| {}).unwrap().0, cache)
}

/// Per group, the head Stage 2's context evidence labels it with (most summed log p_k).
fn labelled_heads(m: &MixtureModel, cache: &EmbeddingCache, idx: &[usize]) -> Vec<usize> {
    group_by_attribute(cache, idx)
        .values()
        .map(|rows| {
            let mut sum = vec![0.0f64; m.k()];
            for row in head_log_probs(m, cache, rows).chunks_exact(m.k()) {
                sum.iter_mut().zip(row).for_each(|(s, l)| *s += l);
            }
            (0..m.k())
                .max_by(|&a, &b| sum[a].total_cmp(&sum[b]))
                .unwrap()
        })
        .collect()
}

#[test]
fn five_chosen_pairs_do_what_fifty_random_ones_do() {
    let (model, cache) = setup();
    let test = cache.indices(|p| !p.is_train());
    let groups: BTreeMap<String, Vec<usize>> = group_by_attribute(&cache, &test);
    let best: Vec<usize> = groups
        .values()
        .map(|rows| {
            let acc = head_accuracy(&head_margins(&model, &cache, rows), model.k());
            (0..model.k())
                .max_by(|&a, &b| acc[a].value().total_cmp(&acc[b].value()))
                .unwrap()
        })
        .collect();
    let cfg = AdaptConfig {
        pool_inputs: true,
        ..AdaptConfig::default()
    };
    let accuracy = |idx: &[usize]| {
        let adapted = adapt(
            &micro_route::ExpertView::new(&model, &cache, None).unwrap(),
            idx,
            &cfg,
        )
        .unwrap()
        .0;
        average(&by_attribute(
            &cache,
            &test,
            &routed_credit(&adapted, &cache, &test, &Default::default()),
        ))
    };

    let chosen = choose_budget(
        &micro_route::ExpertView::new(&model, &cache, None).unwrap(),
        5,
        0,
    )
    .unwrap()
    .indices();
    assert_eq!(labelled_heads(&model, &cache, &chosen), best);
    let active5 = accuracy(&chosen);

    let draws = 4;
    let (mut random5, mut random50, mut named) = (0.0, 0.0, 0u64);
    for seed in 0..draws {
        let five = draw_budget(&cache, 5, seed).unwrap().indices();
        named += (labelled_heads(&model, &cache, &five) == best) as u64;
        random5 += accuracy(&five) / draws as f64;
        random50 += accuracy(&draw_budget(&cache, 50, seed).unwrap().indices()) / draws as f64;
    }
    let summary = format!(
        "active B=5 {active5:.4}; random B=5 {random5:.4}, B=50 {random50:.4}; random B=5 named every best head in {named}/{draws} draws"
    );
    println!("{summary}");
    assert!(active5 >= random50 - 0.005, "{summary}");
    assert!(active5 > random5, "{summary}");
    assert!(named < draws, "{summary}");
}
