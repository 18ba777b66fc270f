//! The choice rule: how much a comparison's answer is expected to tell about which head a
//! user or context follows, and the candidate that tells the most.
//!
//! For a candidate pair (a, b) with head margins delta_k = r_k(a) - r_k(b), head k predicts
//! p_k = P(a wins | head k) = sigma(delta_k). Under the current weights w over the heads (the
//! belief that the user follows head k), the answer y in {a, b} is predicted with
//! P(a wins) = p̄ = sum_k w_k p_k, and the information it carries about the head is the mutual
//! information
//!
//! ```text
//! I(y; z) = H(p̄) - sum_k w_k H(p_k),     H(p) = -p ln p - (1 - p) ln(1 - p)   (nats)
//! ```
//!
//! which equals the expected reduction of the entropy of w under the Bayesian update
//! w'_k ∝ w_k p_k^[y = a] (1 - p_k)^[y = b] (the BALD rule of active learning). It is 0 when
//! every head with weight gives the same p (the answer cannot tell them apart, however sure
//! they are), at most ln 2, and the same for (a, b) and (b, a): the rule needs no label, only
//! which two responses are compared. The p_k are clamped to [e^-C, 1 - e^-C], C the loss clip
//! of [`crate::online`], so that the rule and the Hedge update share one likelihood.
//!
//! ```
//! use micro_route::query::{information, Candidates};
//! let w = [0.5, 0.5];
//! // Both heads prefer a: nothing to learn. They disagree strongly: almost ln 2 nats.
//! assert!(information(&w, &[3.0, 3.0]) < 1e-12);
//! assert!((information(&w, &[8.0, -8.0]) - 0.690129).abs() < 1e-6);
//! let c = Candidates::new(&[3.0, 3.0, 8.0, -8.0, 1.0, -1.0], 2).unwrap();
//! assert_eq!(c.best(&w, |_| false, 0).unwrap().index, 1);
//! ```

use crate::error::{Result, RouteError};
use crate::online::LOSS_CLIP;
use serde::{Deserialize, Serialize};

/// Two candidates whose information differs by less than this are tied (broken by the seed).
pub const TIE: f64 = 1e-12;

/// The comparison to ask next and what its answer is expected to tell.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// The candidate's row in the margins given.
    pub index: usize,
    /// I(answer; head) in nats, in [0, ln 2].
    pub information: f64,
    /// P(the first response wins) under the current weights.
    pub p_first: f64,
}

/// Candidate pairs with each head's p_k and H(p_k), computed once: the weights change between
/// questions, these do not.
#[derive(Clone, Debug)]
pub struct Candidates {
    k: usize,
    p: Vec<f64>,
    entropy: Vec<f64>,
}

impl Candidates {
    /// From margins row-major [n, K] (delta_k = r_k(first) - r_k(second) of each candidate).
    pub fn new(margins: &[f32], k: usize) -> Result<Self> {
        check_margins(margins, k)?;
        let p: Vec<f64> = margins.iter().map(|&d| head_prob(d as f64)).collect();
        let entropy = p.iter().map(|&q| binary_entropy(q)).collect();
        Ok(Candidates { k, p, entropy })
    }

    pub fn len(&self) -> usize {
        self.p.len() / self.k
    }

    pub fn is_empty(&self) -> bool {
        self.p.is_empty()
    }

    pub fn k(&self) -> usize {
        self.k
    }

    /// I(y; z) and p̄ of candidate `i` under `weights` (one per head, summing to 1).
    pub fn score(&self, i: usize, weights: &[f64]) -> (f64, f64) {
        let row = i * self.k..(i + 1) * self.k;
        let (mut p_bar, mut h_cond) = (0.0, 0.0);
        for ((w, p), h) in weights
            .iter()
            .zip(&self.p[row.clone()])
            .zip(&self.entropy[row])
        {
            p_bar += w * p;
            h_cond += w * h;
        }
        ((binary_entropy(p_bar) - h_cond).max(0.0), p_bar)
    }

    /// The candidate with the most information among those `skip` does not exclude; ties
    /// within [`TIE`] go to the smallest seeded hash of the index. `None` when every candidate
    /// is skipped.
    pub fn best(
        &self,
        weights: &[f64],
        skip: impl Fn(usize) -> bool,
        seed: u64,
    ) -> Option<Question> {
        let mut best: Option<(Question, u64)> = None;
        for i in (0..self.len()).filter(|&i| !skip(i)) {
            let (information, p_first) = self.score(i, weights);
            let key = tie_key(seed, i as u64);
            let better = match &best {
                None => true,
                Some((b, bk)) => {
                    information > b.information + TIE
                        || (information >= b.information - TIE && key < *bk)
                }
            };
            if better {
                let q = Question {
                    index: i,
                    information,
                    p_first,
                };
                best = Some((q, key));
            }
        }
        best.map(|(q, _)| q)
    }
}

/// I(y; z) of one pair with head margins `margins` under `weights`.
pub fn information(weights: &[f64], margins: &[f32]) -> f64 {
    let p: Vec<f64> = margins.iter().map(|&d| head_prob(d as f64)).collect();
    let p_bar: f64 = weights.iter().zip(&p).map(|(w, q)| w * q).sum();
    let h_cond: f64 = weights
        .iter()
        .zip(&p)
        .map(|(w, q)| w * binary_entropy(*q))
        .sum();
    (binary_entropy(p_bar) - h_cond).max(0.0)
}

/// sigma(delta) clamped to [e^-C, 1 - e^-C].
pub fn head_prob(delta: f64) -> f64 {
    let floor = (-LOSS_CLIP).exp();
    (1.0 / (1.0 + (-delta).exp())).clamp(floor, 1.0 - floor)
}

/// H(p) in nats; 0 at p in {0, 1}.
pub fn binary_entropy(p: f64) -> f64 {
    let term = |q: f64| if q > 0.0 { -q * q.ln() } else { 0.0 };
    term(p) + term(1.0 - p)
}

/// A candidate's place among ties: splitmix64 of (seed, index), the same on every platform.
pub fn tie_key(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Refuses margins that are not [n, K] with finite values.
pub fn check_margins(margins: &[f32], k: usize) -> Result<()> {
    if k == 0 {
        return Err(RouteError::NoHeads);
    }
    if !margins.len().is_multiple_of(k) {
        return Err(RouteError::MarginRows {
            values: margins.len(),
            k,
        });
    }
    if let Some(j) = margins.iter().position(|m| !m.is_finite()) {
        return Err(RouteError::CandidateMargin {
            candidate: j / k,
            head: j % k,
            margin: margins[j],
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn entropy(w: &[f64]) -> f64 {
        w.iter().filter(|&&x| x > 0.0).map(|x| -x * x.ln()).sum()
    }

    /// Oracle: the expected entropy reduction, by enumerating both answers and forming each
    /// Bayesian posterior.
    fn brute_force(w: &[f64], margins: &[f32]) -> f64 {
        let p: Vec<f64> = margins.iter().map(|&d| head_prob(d as f64)).collect();
        let mut expected = 0.0;
        for first_wins in [true, false] {
            let joint: Vec<f64> = w
                .iter()
                .zip(&p)
                .map(|(wk, pk)| wk * if first_wins { *pk } else { 1.0 - pk })
                .collect();
            let py: f64 = joint.iter().sum();
            let post: Vec<f64> = joint.iter().map(|j| j / py).collect();
            expected += py * entropy(&post);
        }
        entropy(w) - expected
    }

    fn random_weights(rng: &mut ChaCha8Rng, k: usize) -> Vec<f64> {
        let raw: Vec<f64> = (0..k).map(|_| rng.random_range(0.01..1.0)).collect();
        let z: f64 = raw.iter().sum();
        raw.iter().map(|r| r / z).collect()
    }

    #[test]
    fn information_is_the_expected_entropy_reduction_of_the_weights() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for k in [2usize, 3, 5] {
            for _ in 0..200 {
                let w = random_weights(&mut rng, k);
                let m: Vec<f32> = (0..k).map(|_| rng.random_range(-6.0..6.0f32)).collect();
                let got = information(&w, &m);
                let want = brute_force(&w, &m);
                assert!((got - want).abs() < 1e-12, "k {k}: {got} vs {want}");
                assert!((0.0..=2f64.ln() + 1e-12).contains(&got));
            }
        }
    }

    #[test]
    fn agreeing_heads_score_zero_and_order_does_not_matter() {
        let w = [0.2, 0.3, 0.5];
        // Every head gives the same p, sure or unsure: no information.
        assert_eq!(information(&w, &[4.0, 4.0, 4.0]), 0.0);
        assert_eq!(information(&w, &[0.0, 0.0, 0.0]), 0.0);
        // A head with no weight cannot make a pair informative.
        assert!(information(&[1.0, 0.0, 0.0], &[5.0, -5.0, 2.0]) < 1e-12);
        // Swapping the responses flips every margin and changes nothing.
        let m = [1.5f32, -0.4, 3.0];
        let flipped: Vec<f32> = m.iter().map(|d| -d).collect();
        assert!((information(&w, &m) - information(&w, &flipped)).abs() < 1e-15);
    }

    #[test]
    fn best_agrees_with_scoring_every_candidate_and_ties_follow_the_seed() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let k = 4;
        let margins: Vec<f32> = (0..50 * k)
            .map(|_| rng.random_range(-4.0..4.0f32))
            .collect();
        let c = Candidates::new(&margins, k).unwrap();
        let w = random_weights(&mut rng, k);
        let q = c.best(&w, |i| i == 7, 0).unwrap();
        let top = (0..50)
            .filter(|&i| i != 7)
            .map(|i| information(&w, &margins[i * k..(i + 1) * k]))
            .fold(0.0, f64::max);
        assert_eq!(q.information, top);
        assert!((c.score(q.index, &w).1 - q.p_first).abs() < 1e-15);
        // Ten identical candidates: the seed decides, reproducibly, and different seeds differ.
        let same = Candidates::new(&[2.0, -2.0].repeat(10), 2).unwrap();
        let picks: Vec<usize> = (0..20)
            .map(|s| same.best(&[0.5, 0.5], |_| false, s).unwrap().index)
            .collect();
        assert_eq!(
            picks[3],
            same.best(&[0.5, 0.5], |_| false, 3).unwrap().index
        );
        let mut distinct = picks.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 3, "{picks:?}");
        assert!(same.best(&[0.5, 0.5], |_| true, 0).is_none());
    }

    #[test]
    fn bad_margins_are_refused_with_their_place() {
        assert!(matches!(
            Candidates::new(&[1.0, 2.0, 3.0], 2),
            Err(RouteError::MarginRows { values: 3, k: 2 })
        ));
        let e = Candidates::new(&[1.0, 2.0, f32::NAN, 0.0], 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("candidate 1") && e.contains("head 0"), "{e}");
        assert!(matches!(Candidates::new(&[], 0), Err(RouteError::NoHeads)));
    }
}
