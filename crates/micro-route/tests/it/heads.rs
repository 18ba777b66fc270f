//! The heads as a tool, on constructed models whose answer is known: a duplicated head is
//! merged back, a head that prefers harmful responses is flagged and masked, and HyRe puts its
//! weight on the head that agrees with the labels.

use micro_cache::EmbeddingCache;
use micro_model::MixtureModel;
use micro_route::fixture::{random_cache, random_model};
use micro_route::{audit_heads, hyre_per_attribute, hyre_weights, mask_flagged, merge_correlated};

/// A random 3-head model with head 0 copied (slightly rescaled) as head 3.
fn with_duplicate() -> MixtureModel {
    let base = random_model(12, 3, Some(8), 5);
    let mut m = random_model(12, 4, Some(8), 5);
    for h in 0..3 {
        m.head_mut(h).copy_from_slice(base.heads().row(h));
    }
    let copy: Vec<f32> = base.heads().row(0).iter().map(|v| 1.1 * v).collect();
    m.head_mut(3).copy_from_slice(&copy);
    m
}

/// Relabels every pair so that `head` prefers the chosen response.
fn labelled_by(model: &MixtureModel, head: usize, mut cache: EmbeddingCache) -> EmbeddingCache {
    for i in 0..cache.len() {
        let diff: Vec<f32> = cache
            .chosen
            .row(i)
            .iter()
            .zip(cache.rejected.row(i))
            .map(|(c, r)| c - r)
            .collect();
        if model.margins(&diff)[head] < 0.0 {
            let chosen = cache.chosen.row(i).to_vec();
            let rejected = cache.rejected.row(i).to_vec();
            cache.chosen.row_mut(i).copy_from_slice(&rejected);
            cache.rejected.row_mut(i).copy_from_slice(&chosen);
        }
    }
    cache
}

#[test]
fn a_duplicated_head_is_merged_back() {
    let model = with_duplicate();
    let cache = random_cache(12, 2, 150, 9);
    let idx: Vec<usize> = (0..cache.len()).collect();
    let (merged, report) = merge_correlated(&model, &cache, &idx, 0.9).unwrap();
    assert_eq!(merged.k(), 3, "{:?}", report.clusters);
    let mut pair = report
        .clusters
        .iter()
        .find(|c| c.len() == 2)
        .unwrap()
        .clone();
    pair.sort_unstable();
    assert_eq!(pair, vec![0, 3]);
    assert!((report.correlation[3] - 1.0).abs() < 1e-9);
    assert!(
        matches!(&merged.config().history[..], [micro_model::HistoryEvent::Merge { removed, .. }] if removed.len() == 1),
        "{:?}",
        merged.config().history
    );
    // Nothing correlates above 0.999 except the copy, and nothing at all above 1.
    assert_eq!(
        merge_correlated(&model, &cache, &idx, 1.0).unwrap().0.k(),
        4
    );
    assert!(merge_correlated(&model, &cache, &idx, 1.5).is_err());
}

#[test]
fn a_head_that_prefers_rejected_responses_is_flagged_and_masked() {
    let mut model = random_model(12, 3, Some(8), 2);
    let flipped: Vec<f32> = model.heads().row(0).iter().map(|v| -v).collect();
    model.head_mut(2).copy_from_slice(&flipped);
    let safety = labelled_by(&model, 0, random_cache(12, 1, 200, 4));
    let idx: Vec<usize> = (0..safety.len()).collect();
    let report = audit_heads(&model, &safety, &idx, 0.5).unwrap();
    assert_eq!(report.heads[0].accuracy, 1.0);
    assert_eq!(report.heads[2].accuracy, 0.0);
    assert!(report.flagged().contains(&2) && !report.flagged().contains(&0));
    let masked = mask_flagged(&model, &report, "safety").unwrap();
    assert_eq!(masked.k(), 3 - report.flagged().len());
    assert_eq!(masked.heads().row(0), model.heads().row(0));
    assert!(
        matches!(&masked.config().history[..], [micro_model::HistoryEvent::Mask { removed, .. }] if *removed == report.flagged()),
        "{:?}",
        masked.config().history
    );
    let all_bad = audit_heads(&model, &safety, &idx, 1.01).unwrap();
    let e = mask_flagged(&model, &all_bad, "safety").unwrap_err();
    assert!(
        matches!(e, micro_route::RouteError::EveryHeadFlagged { threshold } if threshold == 1.01),
        "{e}"
    );
    assert!(e.to_string().contains("no head"), "{e}");
}

#[test]
fn hyre_concentrates_on_the_head_that_agrees_with_the_labels() {
    let mut model = random_model(12, 4, Some(8), 3);
    // Confident heads, so 16 pairs are enough evidence to single one out.
    model.scale_heads(8.0);
    let cache = labelled_by(&model, 1, random_cache(12, 2, 60, 6));
    let idx: Vec<usize> = (0..16).collect();
    let w = hyre_weights(&model, &cache, &idx, 1.0);
    assert!(w[1] > 0.9, "{w:?}");
    assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    let all: Vec<usize> = (0..cache.len()).collect();
    let split = hyre_per_attribute(&model, &cache, &all, 16, 1.0, 0).unwrap();
    assert_eq!(split.labelled["attr0"].len(), 16);
    assert_eq!(split.evaluation["attr0"].len(), 44);
    let acc = micro_route::hyre_accuracy(&model, &cache, &split);
    assert!(acc.values().all(|a| a.value() > 0.9), "{acc:?}");
    assert!(hyre_per_attribute(&model, &cache, &all, 16, -1.0, 0).is_err());
}
