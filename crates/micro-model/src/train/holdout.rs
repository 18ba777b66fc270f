//! Which training rows the optimiser sees: the held-out part of the train split for early
//! stopping (whole prompts at a time), and the check that every row is finite.

use super::TrainError;
use crate::method::Method;
use micro_cache::Matrix;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Each pair's prompt as a group id: pairs of one prompt are held out together.
pub(crate) fn prompt_groups(pairs: &[micro_data::PrefPair]) -> Vec<u64> {
    pairs
        .iter()
        .map(|p| {
            let key = serde_json::to_vec(&p.prompt).unwrap_or_default();
            key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
            })
        })
        .collect()
}

/// Shuffles `rows` and splits off about round(fraction * n) of them for early stopping, keeping
/// at least one pair to train on. With `groups`, whole groups go: groups in a shuffled order
/// until the held-out rows reach the target.
pub(super) fn split_holdout(
    rows: &[usize],
    groups: Option<&[u64]>,
    fraction: f32,
    rng: &mut ChaCha8Rng,
) -> (Vec<usize>, Vec<usize>) {
    let mut all = rows.to_vec();
    all.shuffle(rng);
    let n_held =
        ((fraction as f64 * rows.len() as f64).round() as usize).min(rows.len().saturating_sub(1));
    let Some(groups) = groups else {
        let fit = all.split_off(n_held);
        return (fit, all);
    };
    let mut size: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for &r in rows {
        *size.entry(groups[r]).or_insert(0) += 1;
    }
    // Groups in the order of their first row in the shuffle: a seeded order of groups.
    let mut held_groups = std::collections::HashSet::new();
    let mut held = 0usize;
    for &r in &all {
        if held >= n_held {
            break;
        }
        if held_groups.insert(groups[r]) {
            held += size[&groups[r]];
        }
    }
    let (mut held_rows, fit): (Vec<usize>, Vec<usize>) = all
        .into_iter()
        .partition(|&r| held_groups.contains(&groups[r]));
    if fit.is_empty() {
        // One group only: hold out by pair rather than train on nothing.
        let mut fit = held_rows;
        held_rows = fit.split_off(fit.len() - n_held.min(fit.len().saturating_sub(1)));
        return (fit, held_rows);
    }
    (fit, held_rows)
}

/// Refuses NaN or infinite inputs up front, naming the first offending pair.
pub(super) fn check_finite_rows(
    diff: &Matrix,
    prompt: &Matrix,
    rows: &[usize],
    method: Method,
) -> Result<(), TrainError> {
    for &i in rows {
        let bad = !diff.row(i).iter().all(|v| v.is_finite())
            || (method.reads_router_input() && !prompt.row(i).iter().all(|v| v.is_finite()));
        if bad {
            return Err(TrainError::NotFiniteEmbedding { row: i });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn groups_are_held_out_whole_and_the_split_is_seeded() {
        let rows: Vec<usize> = (0..100).collect();
        let groups: Vec<u64> = (0..100).map(|i| (i / 4) as u64).collect();
        let split = |seed| {
            split_holdout(
                &rows,
                Some(&groups),
                0.1,
                &mut ChaCha8Rng::seed_from_u64(seed),
            )
        };
        let (fit, held) = split(7);
        assert_eq!(fit.len() + held.len(), 100);
        assert!((10..=12).contains(&held.len()), "{}", held.len());
        for h in &held {
            assert!(fit.iter().all(|f| groups[*f] != groups[*h]), "group split");
        }
        assert_eq!(split(7), (fit, held));
        let (fit1, _) = split_holdout(
            &rows[..4],
            Some(&groups),
            0.5,
            &mut ChaCha8Rng::seed_from_u64(1),
        );
        assert!(!fit1.is_empty(), "one group: still something to train on");
    }
}
