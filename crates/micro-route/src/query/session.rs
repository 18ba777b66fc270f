//! Asking one question at a time: a belief over the heads, the candidates not yet asked, the
//! most informative of them ([`crate::query::information`]), the answer, a Bayesian update,
//! and the next question.
//!
//! The belief is a [`UserState`] with the fixed rate eta = 1 (the Bayesian posterior over
//! "which head answers", with the clipped likelihoods of [`crate::online`]). The session only
//! ever sees a candidate as (first, second) response margins; an answer says which of the two
//! won, and the state is updated with the winner-minus-loser margins.
//!
//! For one user online, [`next_question`] applies the same rule to the user's own state (any
//! rate): the server keeps updating the user with its Hedge step as feedback arrives.
//!
//! ```
//! use micro_route::query::ActiveSession;
//! // Two heads that disagree on candidate 1 and agree on candidates 0 and 2.
//! let margins = [2.0, 2.0, 4.0, -4.0, -1.0, -1.0];
//! let mut s = ActiveSession::new(&[0.5, 0.5], &margins, 2, 0).unwrap();
//! let q = s.ask().unwrap();
//! assert_eq!(q.index, 1);
//! s.answer(q.index, false).unwrap(); // the second response won: head 1 was right
//! assert!(s.weights()[1] > 0.98);
//! ```

use crate::error::{Result, RouteError};
use crate::online::{Rate, UserState};
use crate::query::information::{check_margins, tie_key, Candidates, Question};
use micro_model::linalg::{matmul, Op};
use micro_model::MixtureModel;

/// Below this many nats no candidate is worth choosing for: the next pair is drawn at random.
pub const MIN_INFORMATION: f64 = 0.01;

/// A sequence of questions over a fixed set of candidate pairs.
#[derive(Clone, Debug)]
pub struct ActiveSession {
    candidates: Candidates,
    margins: Vec<f32>,
    state: UserState,
    asked: Vec<bool>,
    seed: u64,
    min_information: f64,
    history: Vec<Question>,
}

impl ActiveSession {
    /// A session over candidates with margins [n, K] (first minus second response), starting
    /// from `prior` weights over the K heads; `seed` breaks ties.
    pub fn new(prior: &[f32], margins: &[f32], k: usize, seed: u64) -> Result<Self> {
        check_prior(prior, k)?;
        let candidates = Candidates::new(margins, k)?;
        Ok(ActiveSession {
            asked: vec![false; candidates.len()],
            candidates,
            margins: margins.to_vec(),
            state: UserState::with_rate(prior, Rate::Fixed(1.0)),
            seed,
            min_information: MIN_INFORMATION,
            history: Vec::new(),
        })
    }

    /// The same session with another floor below which a candidate is drawn at random (0: always
    /// the most informative).
    pub fn with_min_information(mut self, nats: f64) -> Self {
        self.min_information = nats;
        self
    }

    /// The most informative candidate not yet asked; when even that one's answer is expected to
    /// tell less than the floor, a candidate drawn at random (seeded) instead. `None` when all
    /// have been asked.
    pub fn ask(&self) -> Option<Question> {
        let w: Vec<f64> = self.state.log_weights.iter().map(|l| l.exp()).collect();
        let best = self.candidates.best(&w, |i| self.asked[i], self.seed)?;
        if best.information >= self.min_information {
            return Some(best);
        }
        let left: Vec<usize> = (0..self.asked.len()).filter(|&i| !self.asked[i]).collect();
        let draw = tie_key(self.seed ^ 0xD2A3, self.history.len() as u64) as usize % left.len();
        let (information, p_first) = self.candidates.score(left[draw], &w);
        Some(Question {
            index: left[draw],
            information,
            p_first,
        })
    }

    /// Folds in the answer to candidate `index`: whether its first response won.
    pub fn answer(&mut self, index: usize, first_won: bool) -> Result<()> {
        if index >= self.asked.len() {
            return Err(RouteError::NoSuchCandidate {
                index,
                candidates: self.asked.len(),
            });
        }
        if self.asked[index] {
            return Err(RouteError::AlreadyAnswered { index });
        }
        let w: Vec<f64> = self.state.log_weights.iter().map(|l| l.exp()).collect();
        let (information, p_first) = self.candidates.score(index, &w);
        let k = self.candidates.k();
        let row = &self.margins[index * k..(index + 1) * k];
        let sign = if first_won { 1.0 } else { -1.0 };
        let won: Vec<f32> = row.iter().map(|d| sign * d).collect();
        self.state.update(&won);
        self.asked[index] = true;
        self.history.push(Question {
            index,
            information,
            p_first,
        });
        Ok(())
    }

    /// The current belief over the heads.
    pub fn weights(&self) -> Vec<f32> {
        self.state.weights()
    }

    /// The questions answered so far, in order, each with its information when it was asked.
    pub fn history(&self) -> &[Question] {
        &self.history
    }
}

/// The candidate to ask a user next, by the information its answer carries about which head
/// the user follows under the user's current weights; `margins` is [n, K], each row the heads'
/// r_k(first) - r_k(second) of one candidate pair. Ties within 1e-12 nats go by `seed`.
///
/// Errors: no candidates, margins of the wrong shape or not finite.
pub fn next_question(state: &UserState, margins: &[f32], seed: u64) -> Result<Question> {
    check_margins(margins, state.k())?;
    if margins.is_empty() {
        return Err(RouteError::NoCandidates);
    }
    let w: Vec<f64> = state.log_weights.iter().map(|l| l.exp()).collect();
    let c = Candidates::new(margins, state.k())?;
    c.best(&w, |_| false, seed).ok_or(RouteError::NoCandidates)
}

/// The heads' margins r_k(first) - r_k(second) of `n` candidate pairs from their response
/// embeddings (`first`, `second`: [n, d] row-major), as one product W (h_first - h_second)^T:
/// what a server computes before [`next_question`] when it holds the embeddings.
///
/// Errors: embeddings whose widths differ from the model's or whose row counts differ.
pub fn pair_margins(model: &MixtureModel, first: &[f32], second: &[f32]) -> Result<Vec<f32>> {
    let d = model.config().dim;
    if d == 0 || first.len() != second.len() || !first.len().is_multiple_of(d) {
        return Err(RouteError::CandidateShape {
            dim: d,
            first: first.len(),
            second: second.len(),
        });
    }
    let n = first.len() / d;
    let diff: Vec<f32> = first.iter().zip(second).map(|(a, b)| a - b).collect();
    let k = model.k();
    let mut out = vec![0.0f32; n * k];
    matmul(
        &mut out,
        &diff,
        Op::N,
        &model.heads().data,
        Op::T,
        n,
        d,
        k,
        false,
        1,
    );
    Ok(out)
}

fn check_prior(prior: &[f32], k: usize) -> Result<()> {
    if prior.len() != k {
        return Err(RouteError::PriorLength {
            weights: prior.len(),
            k,
        });
    }
    if prior.iter().any(|w| !w.is_finite() || *w < 0.0) || prior.iter().sum::<f32>() <= 0.0 {
        return Err(RouteError::PriorWeights);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::information::information;

    #[test]
    fn each_answer_is_the_bayesian_update_and_questions_are_not_repeated() {
        let margins = [1.0, -1.0, 0.5, 3.0, -2.0, 0.2, 0.0, 0.0, 0.0];
        let prior = [0.2f32, 0.3, 0.5];
        let mut s = ActiveSession::new(&prior, &margins, 3, 1).unwrap();
        let mut asked = Vec::new();
        let z: f64 = prior.iter().map(|&w| w as f64).sum();
        let mut want: Vec<f64> = prior.iter().map(|&w| w as f64 / z).collect();
        for first_won in [true, false, true] {
            let q = s.ask().unwrap();
            let row = &margins[q.index * 3..q.index * 3 + 3];
            assert!((q.information - information(&want, row)).abs() < 1e-9);
            s.answer(q.index, first_won).unwrap();
            for (w, d) in want.iter_mut().zip(row) {
                let p = 1.0 / (1.0 + (-*d as f64).exp());
                *w *= if first_won { p } else { 1.0 - p };
            }
            let z: f64 = want.iter().sum();
            want.iter_mut().for_each(|w| *w /= z);
            for (got, w) in s.weights().iter().zip(&want) {
                assert!((*got as f64 - w).abs() < 1e-6, "{got} vs {w}");
            }
            asked.push(q.index);
        }
        // The all-zero candidate tells nothing and comes last.
        assert_eq!(asked[2], 2);
        assert!(s.ask().is_none());
        assert_eq!(s.history().len(), 3);
        assert!(matches!(
            s.answer(0, true),
            Err(RouteError::AlreadyAnswered { index: 0 })
        ));
        assert!(matches!(
            s.answer(9, true),
            Err(RouteError::NoSuchCandidate {
                index: 9,
                candidates: 3
            })
        ));
    }

    #[test]
    fn below_the_floor_the_next_pair_is_drawn_at_random() {
        // Margins of 0.05: no answer can tell the heads apart by more than ~1e-3 nats.
        let margins: Vec<f32> = (0..40)
            .flat_map(|i| [0.05 * (i as f32 % 3.0), -0.05])
            .collect();
        let picks: Vec<usize> = (0..8)
            .map(|seed| {
                let s = ActiveSession::new(&[0.5, 0.5], &margins, 2, seed).unwrap();
                let q = s.ask().unwrap();
                assert!(q.information < MIN_INFORMATION);
                q.index
            })
            .collect();
        let mut distinct = picks.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 2, "{picks:?}");
        // Without the floor the rule takes the most informative (a pair with margin 0.1).
        let s = ActiveSession::new(&[0.5, 0.5], &margins, 2, 0)
            .unwrap()
            .with_min_information(0.0);
        assert_eq!(s.ask().unwrap().index % 3, 2);
    }

    #[test]
    fn pair_margins_are_the_heads_reward_differences() {
        let model = crate::fixture::random_model(5, 3, None, 2);
        let first: Vec<f32> = (0..20).map(|i| (i as f32 * 0.3).sin()).collect();
        let second: Vec<f32> = (0..20).map(|i| (i as f32 * 0.7).cos()).collect();
        let m = pair_margins(&model, &first, &second).unwrap();
        for i in 0..4 {
            let ra = model.rewards(&first[i * 5..(i + 1) * 5]);
            let rb = model.rewards(&second[i * 5..(i + 1) * 5]);
            for h in 0..3 {
                assert!((m[i * 3 + h] - (ra[h] - rb[h])).abs() < 1e-5);
            }
        }
        assert!(pair_margins(&model, &first, &second[..15]).is_err());
        assert!(pair_margins(&model, &first[..7], &second[..7]).is_err());
    }

    #[test]
    fn next_question_reads_the_users_weights_and_refuses_bad_input() {
        // Candidate 1 splits the heads, 0 asks what only head 1 is sure of, 2 what both agree on.
        let mut user = UserState::with_rate(&[0.6, 0.4], Rate::Anytime);
        let m = [0.0, 6.0, 6.0, -6.0, 0.3, 0.3];
        let first = next_question(&user, &m, 0).unwrap();
        assert_eq!(first.index, 1);
        // Once the user's weight is on head 0, the same pair still tells most, but less.
        for _ in 0..200 {
            user.update(&[3.0, -3.0]);
        }
        let w: Vec<f64> = user.log_weights.iter().map(|l| l.exp()).collect();
        let q = next_question(&user, &m, 0).unwrap();
        assert_eq!(q.index, 1);
        assert!((q.information - information(&w, &m[2..4])).abs() < 1e-12);
        assert!(q.information < first.information / 4.0);
        assert!(next_question(&user, &[], 0).is_err());
        assert!(next_question(&user, &[1.0, 2.0, 3.0], 0).is_err());
        assert!(next_question(&user, &[1.0, f32::INFINITY], 0).is_err());
        assert!(ActiveSession::new(&[1.0], &[1.0, 2.0], 2, 0).is_err());
        assert!(ActiveSession::new(&[0.0, 0.0], &[1.0, 2.0], 2, 0).is_err());
    }
}
