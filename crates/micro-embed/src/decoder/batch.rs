//! Which sequences run together: sorted by length so that padding stays small, at most
//! `max_seqs` per batch, and at most `max_seqs * TOKENS_PER_SEQ` padded tokens per batch so that
//! long sequences come in smaller batches (activations and the attention scores grow with them).

/// Padded tokens allowed per sequence of the batch size: a batch of 8 holds 8 sequences of up to
/// 512 tokens, or 2 of 2,048, or 1 of any length.
pub const TOKENS_PER_SEQ: usize = 512;

/// Groups the indices of `lengths` into batches, longest sequences first; every index appears
/// exactly once and every batch holds at least one sequence.
pub fn plan(lengths: &[usize], max_seqs: usize) -> Vec<Vec<usize>> {
    let max_seqs = max_seqs.max(1);
    let budget = max_seqs * TOKENS_PER_SEQ;
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Sorted longest first, so the batch's first sequence sets its padded length.
        let padded = current.first().map_or(lengths[i], |&f| lengths[f]);
        if !current.is_empty()
            && (current.len() == max_seqs || (current.len() + 1) * padded > budget)
        {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_sorted_full_and_cover_every_index_once() {
        let lengths = [5, 300, 7, 7, 120, 1, 64];
        let batches = plan(&lengths, 3);
        assert_eq!(batches, vec![vec![1, 4, 6], vec![2, 3, 0], vec![5]]);
        let mut seen: Vec<usize> = batches.concat();
        seen.sort();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
    }

    #[test]
    fn long_sequences_come_in_smaller_batches() {
        // Budget 4 * 512 = 2048 padded tokens: two of 1000, then one of 3000 alone.
        let lengths = [1000, 3000, 1000, 1000, 10];
        let batches = plan(&lengths, 4);
        assert_eq!(batches, vec![vec![1], vec![0, 2], vec![3, 4]]);
        for b in &batches {
            let padded = b.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(b.len() == 1 || b.len() * padded <= 4 * TOKENS_PER_SEQ);
        }
    }

    #[test]
    fn nothing_in_nothing_out_and_a_zero_batch_size_means_one() {
        assert!(plan(&[], 8).is_empty());
        assert_eq!(plan(&[3, 4], 0), vec![vec![1], vec![0]]);
    }
}
