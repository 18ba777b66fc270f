//! Simulated users online: does asking by [`next_question`] reach a user's preferences in
//! fewer answers than asking at random?
//!
//! Each simulated user follows one head h (user u takes head u mod K): asked about a pair, they
//! prefer the response head h prefers, and give the other answer with probability `noise`.
//! Their answers to every candidate and every held-out pair are drawn once, so both ways of
//! asking meet the same user. Starting from uniform weights, the user's [`UserState`] (the
//! server's Hedge step at `rate`) folds in one answer at a time; after each, the weights
//! predict the held-out answers (P(first wins) = sum_k w_k sigma(delta_k) > 1/2). The figure
//! is the number of answers after which that accuracy first reaches `target` times head h's
//! own accuracy on the same held-out answers.
//!
//! ```
//! use micro_route::query::{simulate_users, SimConfig};
//! // Four heads in two opposite pairs. Of 200 candidate pairs, 190 are ones every head agrees
//! // on (their answers tell nothing); the held-out pairs are of the other kind.
//! let split = |i: usize| {
//!     let (x, y) = ((i as f32).sin() * 3.0, (i as f32 * 1.7).cos() * 3.0);
//!     [x, -x, y, -y]
//! };
//! let candidates: Vec<f32> = (0..200)
//!     .flat_map(|i| if i < 190 { [2.0; 4] } else { split(i) })
//!     .collect();
//! let held_out: Vec<f32> = (1000..1100).flat_map(split).collect();
//! let cfg = SimConfig { users: 8, max_answers: 60, ..SimConfig::default() };
//! let r = simulate_users(&candidates, &held_out, 4, &cfg).unwrap();
//! // Asked by the rule, every user is known after a few answers; at random, the informative
//! // pairs come one time in twenty.
//! assert_eq!(r.suggested_reached, 8);
//! assert!(r.suggested_mean <= 4.0, "{}", r.suggested_mean);
//! assert!(r.random_mean > 3.0 * r.suggested_mean, "{}", r.random_mean);
//! //! ```

use crate::error::{Result, RouteError};
use crate::online::{Rate, UserState};
use crate::query::information::{check_margins, tie_key};
use crate::query::session::next_question;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Settings of [`simulate_users`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    pub users: usize,
    /// Probability that a user answers against their head.
    pub noise: f64,
    /// Questions asked at most per user and way of asking.
    pub max_answers: usize,
    /// The accuracy to reach, as a fraction of the user's head's own accuracy.
    pub target: f64,
    /// The user's update rule (the server's default is [`Rate::Anytime`]).
    pub rate: Rate,
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            users: 20,
            noise: 0.1,
            max_answers: 100,
            target: 0.9,
            rate: Rate::Anytime,
            seed: 0,
        }
    }
}

/// One simulated user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimUser {
    pub head: usize,
    /// Head h's accuracy on the user's held-out answers.
    pub head_accuracy: f64,
    /// Answers until the target was reached, asking by the rule (`None`: not within the cap).
    pub suggested: Option<usize>,
    /// The same, asking at random.
    pub random: Option<usize>,
    /// Held-out accuracy after each answer, asking by the rule.
    pub suggested_curve: Vec<f64>,
    /// The same, asking at random.
    pub random_curve: Vec<f64>,
}

/// Over all users; a user who never reaches the target counts as `max_answers + 1` in the means.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    pub config: SimConfig,
    pub users: Vec<SimUser>,
    pub suggested_mean: f64,
    pub suggested_std: f64,
    pub random_mean: f64,
    pub random_std: f64,
    /// Users who reached the target within `max_answers`, asking by the rule / at random.
    pub suggested_reached: usize,
    pub random_reached: usize,
    /// Users for whom the rule needed fewer answers than random / as many / more.
    pub wins: usize,
    pub ties: usize,
    pub losses: usize,
}

/// Runs the simulation over candidate pairs (`candidates`, margins [n, K], first minus second
/// response) and held-out pairs (`held_out`, the same layout).
pub fn simulate_users(
    candidates: &[f32],
    held_out: &[f32],
    k: usize,
    cfg: &SimConfig,
) -> Result<SimReport> {
    check_margins(candidates, k)?;
    check_margins(held_out, k)?;
    if candidates.is_empty() || held_out.is_empty() {
        return Err(RouteError::NoSimulationPairs);
    }
    if cfg.users == 0 || cfg.max_answers == 0 || !(0.0..0.5).contains(&cfg.noise) {
        return Err(RouteError::Simulation {
            users: cfg.users,
            max_answers: cfg.max_answers,
            noise: cfg.noise,
        });
    }
    let users: Vec<SimUser> = (0..cfg.users)
        .map(|u| simulate_one(candidates, held_out, k, u, cfg))
        .collect::<Result<_>>()?;
    Ok(summarise(users, cfg))
}

fn simulate_one(
    candidates: &[f32],
    held_out: &[f32],
    k: usize,
    u: usize,
    cfg: &SimConfig,
) -> Result<SimUser> {
    let head = u % k;
    let mut rng = ChaCha8Rng::seed_from_u64(tie_key(cfg.seed, u as u64));
    let mut answers = |m: &[f32]| -> Vec<bool> {
        m.chunks_exact(k)
            .map(|row| (row[head] > 0.0) != (rng.random::<f64>() < cfg.noise))
            .collect()
    };
    let asked_answers = answers(candidates);
    let held_answers = answers(held_out);
    let head_accuracy = accuracy(held_out, &held_answers, k, &one_hot(k, head));
    let goal = cfg.target * head_accuracy;
    let mut order: Vec<usize> = (0..candidates.len() / k).collect();
    order.shuffle(&mut rng);
    let seed = tie_key(cfg.seed ^ 0xA5, u as u64);
    let ask =
        |ask_next: &mut dyn FnMut(&UserState, &[usize]) -> Result<usize>| -> Result<Vec<f64>> {
            let mut state = UserState::with_rate(&vec![1.0 / k as f32; k], cfg.rate);
            let mut left: Vec<usize> = (0..candidates.len() / k).collect();
            let mut curve = Vec::new();
            while curve.len() < cfg.max_answers && !left.is_empty() {
                let pos = ask_next(&state, &left)?;
                let i = left.swap_remove(pos);
                let sign = if asked_answers[i] { 1.0 } else { -1.0 };
                let won: Vec<f32> = candidates[i * k..(i + 1) * k]
                    .iter()
                    .map(|d| sign * d)
                    .collect();
                state.update(&won);
                let w: Vec<f64> = state.log_weights.iter().map(|l| l.exp()).collect();
                curve.push(accuracy(held_out, &held_answers, k, &w));
            }
            Ok(curve)
        };
    let suggested_curve = ask(&mut |state, left| {
        let m: Vec<f32> = left
            .iter()
            .flat_map(|&i| candidates[i * k..(i + 1) * k].iter().copied())
            .collect();
        Ok(next_question(state, &m, seed)?.index)
    })?;
    let mut next_random = order.into_iter();
    let random_curve = ask(&mut |_, left| {
        let i = next_random.next().unwrap_or(left[0]);
        Ok(left.iter().position(|&j| j == i).unwrap_or(0))
    })?;
    let reached = |curve: &[f64]| curve.iter().position(|&a| a >= goal).map(|t| t + 1);
    Ok(SimUser {
        head,
        head_accuracy,
        suggested: reached(&suggested_curve),
        random: reached(&random_curve),
        suggested_curve,
        random_curve,
    })
}

fn one_hot(k: usize, h: usize) -> Vec<f64> {
    (0..k).map(|j| if j == h { 1.0 } else { 0.0 }).collect()
}

/// Fraction of pairs whose answer the weights predict, by micro-model's accuracy rule (the
/// mixture's margin toward the answer strictly positive; a tie is wrong).
fn accuracy(margins: &[f32], answers: &[bool], k: usize, w: &[f64]) -> f64 {
    micro_model::pairwise_accuracy(margins.chunks_exact(k).zip(answers).map(|(row, &first)| {
        let m = micro_model::mixture_margin(w.iter().copied(), row);
        if first {
            m
        } else {
            -m
        }
    }))
}

fn summarise(users: Vec<SimUser>, cfg: &SimConfig) -> SimReport {
    let cap = cfg.max_answers + 1;
    let count = |f: fn(&SimUser) -> Option<usize>| -> Vec<f64> {
        users.iter().map(|u| f(u).unwrap_or(cap) as f64).collect()
    };
    let (s, r) = (count(|u| u.suggested), count(|u| u.random));
    let (sm, ss) = mean_std(&s);
    let (rm, rs) = mean_std(&r);
    let wins = s.iter().zip(&r).filter(|(a, b)| a < b).count();
    let ties = s.iter().zip(&r).filter(|(a, b)| a == b).count();
    SimReport {
        config: cfg.clone(),
        suggested_reached: users.iter().filter(|u| u.suggested.is_some()).count(),
        random_reached: users.iter().filter(|u| u.random.is_some()).count(),
        wins,
        ties,
        losses: users.len() - wins - ties,
        users,
        suggested_mean: sm,
        suggested_std: ss,
        random_mean: rm,
        random_std: rs,
    }
}

/// Mean and population standard deviation.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// K heads of a random linear model on random pair differences.
    fn margins(n: usize, heads: &[Vec<f32>], rng: &mut ChaCha8Rng) -> Vec<f32> {
        let d = heads[0].len();
        (0..n)
            .flat_map(|_| {
                let x: Vec<f32> = (0..d).map(|_| rng.random_range(-1.0..1.0f32)).collect();
                heads
                    .iter()
                    .map(move |h| h.iter().zip(&x).map(|(a, b)| a * b).sum::<f32>())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The small version of the online claim: over 20 users who answer by one of 6 heads with
    /// 10% noise, questions chosen by the rule reach 90% of the head's accuracy in fewer
    /// answers than random questions.
    #[test]
    fn suggested_questions_need_fewer_answers_than_random_ones() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (k, d) = (6, 8);
        let heads: Vec<Vec<f32>> = (0..k)
            .map(|_| (0..d).map(|_| rng.random_range(-2.0..2.0f32)).collect())
            .collect();
        let cand = margins(300, &heads, &mut rng);
        let held = margins(300, &heads, &mut rng);
        let cfg = SimConfig {
            max_answers: 60,
            ..SimConfig::default()
        };
        let r = simulate_users(&cand, &held, k, &cfg).unwrap();
        assert_eq!(r.users.len(), 20);
        assert!(r.users.iter().all(|u| u.head_accuracy > 0.8));
        assert!(
            r.suggested_mean < r.random_mean && r.wins > r.losses,
            "suggested {} ± {}, random {} ± {} (wins {} ties {} losses {})",
            r.suggested_mean,
            r.suggested_std,
            r.random_mean,
            r.random_std,
            r.wins,
            r.ties,
            r.losses
        );
        assert_eq!(r.suggested_reached, 20);
    }

    #[test]
    fn bad_settings_are_refused() {
        let m = [1.0f32, -1.0];
        let cfg = SimConfig::default();
        assert!(simulate_users(&m, &[], 2, &cfg).is_err());
        assert!(simulate_users(
            &m,
            &m,
            2,
            &SimConfig {
                noise: 0.5,
                ..cfg.clone()
            }
        )
        .is_err());
        assert!(simulate_users(&m, &m, 3, &cfg).is_err());
    }
}
