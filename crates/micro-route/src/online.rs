//! Per-user online adaptation: a user's weights over the experts (the heads and the shared
//! predictions beside them, [`crate::experts`]), updated by one Hedge step per piece of feedback
//! (prompt, chosen, rejected). The same state is what offline adaptation by user id makes
//! ([`crate::users`]) and what the server keeps.
//!
//! Every expert is seen through its margin on the pair, m_e with p_e = sigma(m_e) (a head's is
//! r_k(chosen) - r_k(rejected); the gate's the logit of its mixture, [`crate::experts`]). The
//! loss of expert e on a feedback pair is its log-loss -log sigma(m_e), clipped at
//! [`LOSS_CLIP`] nats so that one confidently wrong head cannot be wiped out by a single
//! (possibly mislabelled) pair and the loss stays in the bounded range Hedge's regret bound
//! needs. Without clipping, a fixed rate eta is the paper's Hedge step with tau = 1/eta, and
//! eta = 1 the Bayesian posterior over heads.
//!
//! The state keeps the cumulative clipped loss of every head besides the prior, so the weights
//! are always prior * exp(-eta * L) renormalised: it can be stored (serde), replayed from a
//! feedback log, and two states of one user built from disjoint feedback merge exactly (their
//! losses add). Two rates:
//! - [`Rate::Fixed`]: the classical Hedge; tuned as eta = sqrt(8 ln K / T) / C for a known
//!   horizon T, regret <= C sqrt(T ln K / 2) (Cesa-Bianchi & Lugosi, Thm 2.2).
//! - [`Rate::Anytime`]: eta_t = sqrt(8 ln K / t) / C at round t, no horizon needed, regret
//!   <= C (2 sqrt(T ln K / 2) + sqrt(ln K / 8)) (ibid., Thm 2.3). Used instead of the
//!   doubling trick because it never restarts, so a replayed or merged state is the same value
//!   however the feedback was batched.
//!
//! Regret is measured against the best single head in hindsight, on the clipped losses.

use crate::error::{Result, RouteError};
use crate::likelihood::{log_sigmoid, log_sum_exp};
use serde::{Deserialize, Serialize};

/// C: per-feedback losses are clipped to [0, C] nats (p below 1e-4).
pub const LOSS_CLIP: f64 = 9.210_340_371_976_184;

/// How the learning rate is set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rate {
    /// A constant eta on losses in nats.
    Fixed(f64),
    /// eta_t = sqrt(8 ln K / t) / C.
    Anytime,
}

impl Rate {
    /// The horizon-tuned fixed rate for T rounds and K heads.
    pub fn tuned(horizon: u64, k: usize) -> Rate {
        Rate::Fixed((8.0 * (k.max(1) as f64).ln() / horizon.max(1) as f64).sqrt() / LOSS_CLIP)
    }
}

/// `anytime` (any case) or a positive, finite eta, as `micro serve --rate` takes it.
impl std::str::FromStr for Rate {
    type Err = micro_data::UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Rate, Self::Err> {
        if s.eq_ignore_ascii_case("anytime") {
            return Ok(Rate::Anytime);
        }
        match s.parse::<f64>() {
            Ok(eta) if eta > 0.0 && eta.is_finite() => Ok(Rate::Fixed(eta)),
            _ => Err(micro_data::UnknownValue::new(
                "rate",
                s,
                "a positive number (eta) or `anytime`",
            )),
        }
    }
}

/// The Bayesian update: Hedge at eta = 1 on log-losses, the posterior over experts (up to the
/// clipping). With a prior that holds the shared predictions, a head takes over only when the
/// user's answers say so clearly (`micro adapt` and `micro serve`'s default).
pub const BAYES: Rate = Rate::Fixed(1.0);

/// A user's mixture over E experts: w_e ∝ prior_e * exp(-eta * L_e), L_e the expert's
/// cumulative clipped log-loss on the user's feedback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    /// Current normalised log weights (log-sum-exp = 0).
    pub log_weights: Vec<f64>,
    /// Normalised log prior (e.g. the router's f(x, c) for the user's context).
    pub log_prior: Vec<f64>,
    /// L_e: each expert's cumulative clipped loss, in nats (`head_loss` in states stored before
    /// experts other than heads).
    #[serde(alias = "head_loss")]
    pub expert_loss: Vec<f64>,
    pub rate: Rate,
    /// Number of feedback events folded in.
    pub updates: u64,
    /// Cumulative log-loss of the mixture's prediction before each update (for monitoring).
    pub cumulative_loss: f64,
    /// Hedge's own cumulative expected clipped loss, sum_t <w_t, l_t> (for regret).
    pub expected_loss: f64,
    /// The user's context (criterion), when the state was made for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl UserState {
    /// Starts from a prior given as weights, with a fixed rate `eta`.
    pub fn from_prior(prior: &[f32], eta: f64) -> Self {
        Self::with_rate(prior, Rate::Fixed(eta))
    }

    /// Starts from a prior given as weights, with any rate.
    pub fn with_rate(prior: &[f32], rate: Rate) -> Self {
        let logs: Vec<f64> = prior.iter().map(|w| (*w as f64).max(1e-300).ln()).collect();
        let log_prior = normalise(&logs);
        UserState {
            log_weights: log_prior.clone(),
            expert_loss: vec![0.0; prior.len()],
            log_prior,
            rate,
            updates: 0,
            cumulative_loss: 0.0,
            expected_loss: 0.0,
            context: None,
        }
    }

    /// Uniform over `k` heads, fixed rate `eta`.
    pub fn uniform(k: usize, eta: f64) -> Self {
        Self::from_prior(&vec![1.0 / k as f32; k], eta)
    }

    pub fn k(&self) -> usize {
        self.log_weights.len()
    }

    pub fn weights(&self) -> Vec<f32> {
        self.log_weights.iter().map(|l| l.exp() as f32).collect()
    }

    /// The rate the next update's weights are formed with.
    pub fn eta(&self) -> f64 {
        eta_at(self.rate, self.k(), self.updates + 1)
    }

    /// One Hedge step from the experts' margins m_e on a feedback pair (chosen first: a head's
    /// r_k(chosen) - r_k(rejected)). `margins` must have one value per expert (see
    /// [`UserState::try_update`]).
    pub fn update(&mut self, margins: &[f32]) {
        assert_eq!(
            margins.len(),
            self.k(),
            "UserState::update: one margin per expert"
        );
        let losses = clipped_losses(margins);
        let log_p: Vec<f64> = self
            .log_weights
            .iter()
            .zip(&losses)
            .map(|(w, l)| w - l)
            .collect();
        self.cumulative_loss -= log_sum_exp(&log_p);
        self.expected_loss += self
            .log_weights
            .iter()
            .zip(&losses)
            .map(|(w, l)| w.exp() * l)
            .sum::<f64>();
        for (h, l) in self.expert_loss.iter_mut().zip(&losses) {
            *h += l;
        }
        self.updates += 1;
        self.refresh();
    }

    /// [`UserState::update`] for margins from outside: refuses a wrong length or non-finite values.
    pub fn try_update(&mut self, margins: &[f32]) -> Result<()> {
        if margins.len() != self.k() {
            return Err(RouteError::FeedbackLength {
                margins: margins.len(),
                k: self.k(),
            });
        }
        if let Some(i) = margins.iter().position(|m| !m.is_finite()) {
            return Err(RouteError::FeedbackMargin {
                head: i,
                margin: margins[i],
            });
        }
        self.update(margins);
        Ok(())
    }

    /// Replays a feedback log (margins per event) from `self`.
    pub fn replay<'a>(mut self, log: impl IntoIterator<Item = &'a [f32]>) -> Self {
        for m in log {
            self.update(m);
        }
        self
    }

    /// The state after both `self`'s and `other`'s feedback, for two states of one user that
    /// started from the same prior and rate (e.g. on two servers). Exact: head losses add.
    pub fn merge(&self, other: &UserState) -> Result<UserState> {
        if self.k() != other.k() || self.rate != other.rate {
            return Err(RouteError::StatesDiffer);
        }
        if self
            .log_prior
            .iter()
            .zip(&other.log_prior)
            .any(|(a, b)| (a - b).abs() > 1e-9)
        {
            return Err(RouteError::PriorsDiffer);
        }
        let mut out = self.clone();
        for (a, b) in out.expert_loss.iter_mut().zip(&other.expert_loss) {
            *a += b;
        }
        out.updates += other.updates;
        out.cumulative_loss += other.cumulative_loss;
        out.expected_loss += other.expected_loss;
        out.context = self.context.clone().or_else(|| other.context.clone());
        out.refresh();
        Ok(out)
    }

    /// Hedge's cumulative expected loss minus the best expert's, in clipped nats.
    pub fn regret(&self) -> f64 {
        self.expected_loss
            - self
                .expert_loss
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min)
    }

    fn refresh(&mut self) {
        let eta = self.eta();
        let logs: Vec<f64> = self
            .log_prior
            .iter()
            .zip(&self.expert_loss)
            .map(|(p, l)| p - eta * l)
            .collect();
        self.log_weights = normalise(&logs);
    }
}

/// min(-log sigma(m_e), C) per expert; a NaN margin counts as the worst loss.
pub fn clipped_losses(margins: &[f32]) -> Vec<f64> {
    margins
        .iter()
        .map(|d| (-log_sigmoid(*d as f64)).min(LOSS_CLIP))
        .collect()
}

fn eta_at(rate: Rate, k: usize, t: u64) -> f64 {
    match rate {
        Rate::Fixed(eta) => eta,
        Rate::Anytime => (8.0 * (k.max(1) as f64).ln() / t.max(1) as f64).sqrt() / LOSS_CLIP,
    }
}

fn normalise(v: &[f64]) -> Vec<f64> {
    let z = log_sum_exp(v);
    v.iter().map(|x| x - z).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn rates_parse_from_their_flag_values() {
        assert_eq!("anytime".parse::<Rate>(), Ok(Rate::Anytime));
        assert_eq!("Anytime".parse::<Rate>(), Ok(Rate::Anytime));
        assert_eq!("0.5".parse::<Rate>(), Ok(Rate::Fixed(0.5)));
        for bad in ["0", "-1", "inf", "NaN", "fast"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
        assert_eq!(
            "fast".parse::<Rate>().unwrap_err().to_string(),
            "unknown rate \"fast\": use a positive number (eta) or `anytime`"
        );
    }

    /// A stream where head `best` is right 70% of the time and the others 50%, with margins of
    /// random size (some large enough to be clipped), and the best head changing at `switch`.
    fn stream(t: usize, k: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..t)
            .map(|s| {
                let best = if s < t / 3 { 1 } else { 3 % k };
                (0..k)
                    .map(|h| {
                        let right = rng.random::<f64>() < if h == best { 0.7 } else { 0.5 };
                        let size = rng.random_range(0.1..12.0f32);
                        if right {
                            size
                        } else {
                            -size
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// Oracle: Hedge's regret bounds for losses in [0, C], which hold for every sequence.
    #[test]
    fn regret_grows_like_sqrt_t_log_k() {
        let k = 8;
        let ln_k = (k as f64).ln();
        let mut ratios = Vec::new();
        for t in [100usize, 300, 1000, 3000, 10_000] {
            for seed in 0..3 {
                let log = stream(t, k, seed);
                let fixed =
                    UserState::with_rate(&vec![1.0 / k as f32; k], Rate::tuned(t as u64, k))
                        .replay(log.iter().map(|m| &m[..]));
                let anytime = UserState::with_rate(&vec![1.0 / k as f32; k], Rate::Anytime)
                    .replay(log.iter().map(|m| &m[..]));
                let scale = (t as f64 * ln_k).sqrt();
                assert!(
                    fixed.regret() <= LOSS_CLIP * (t as f64 * ln_k / 2.0).sqrt() + 1e-9,
                    "T {t}: {}",
                    fixed.regret()
                );
                let anytime_bound =
                    LOSS_CLIP * (2.0 * (t as f64 * ln_k / 2.0).sqrt() + (ln_k / 8.0).sqrt());
                assert!(
                    anytime.regret() <= anytime_bound,
                    "T {t}: {}",
                    anytime.regret()
                );
                ratios.push((
                    t,
                    fixed.regret() / scale,
                    anytime.regret() / scale,
                    anytime.regret() / t as f64,
                ));
            }
        }
        // Sublinear: the average regret per round at T = 10,000 is well below that at T = 100.
        let per_round =
            |t: usize| ratios.iter().filter(|r| r.0 == t).map(|r| r.3).sum::<f64>() / 3.0;
        assert!(per_round(10_000) < per_round(100) / 3.0, "{ratios:?}");
        // Hedge learns: it ends well below the uniform mixture's loss.
        let log = stream(10_000, k, 9);
        let s = UserState::with_rate(&vec![1.0 / k as f32; k], Rate::Anytime)
            .replay(log.iter().map(|m| &m[..]));
        assert!(s.weights()[3] > 0.9, "{:?}", s.weights());
    }

    #[test]
    fn fixed_rate_without_clipping_is_the_bayesian_posterior() {
        let margins: Vec<Vec<f32>> = vec![
            vec![1.0, -0.5, 2.0],
            vec![-1.0, 0.3, 0.2],
            vec![0.5, 0.5, -3.0],
        ];
        let prior = [0.2f32, 0.5, 0.3];
        let s = UserState::from_prior(&prior, 1.0).replay(margins.iter().map(|m| &m[..]));
        let raw: Vec<f64> = (0..3)
            .map(|k| {
                prior[k] as f64
                    * margins
                        .iter()
                        .map(|m| 1.0 / (1.0 + (-m[k] as f64).exp()))
                        .product::<f64>()
            })
            .collect();
        let z: f64 = raw.iter().sum();
        for (w, r) in s.weights().iter().zip(&raw) {
            assert!((*w as f64 - r / z).abs() < 1e-6, "{w} vs {}", r / z);
        }
        assert_eq!(s.updates, 3);
    }

    #[test]
    fn merging_disjoint_feedback_equals_replaying_all_of_it() {
        let log = stream(50, 4, 1);
        let start = UserState::with_rate(&[0.1, 0.2, 0.3, 0.4], Rate::Anytime);
        let all = start.clone().replay(log.iter().map(|m| &m[..]));
        let a = start.clone().replay(log[..20].iter().map(|m| &m[..]));
        let b = start.replay(log[20..].iter().map(|m| &m[..]));
        let merged = a.merge(&b).unwrap();
        for (x, y) in merged.log_weights.iter().zip(&all.log_weights) {
            assert!((x - y).abs() < 1e-9);
        }
        assert_eq!(merged.updates, 50);
        assert!(a.merge(&UserState::uniform(4, 1.0)).is_err());
    }

    #[test]
    fn state_round_trips_through_json_and_survives_extreme_margins() {
        let mut s = UserState::uniform(3, 2.0);
        s.context = Some("be concise".into());
        s.update(&[1e30, -1e30, f32::MAX]);
        assert!(s.log_weights.iter().all(|l| l.is_finite()));
        assert!(s.try_update(&[f32::NAN, 0.0, 0.0]).is_err());
        assert!(s.try_update(&[0.0]).is_err());
        let back: UserState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        // serde_json may round the last bit of an f64: compare the state, not the bits.
        assert_eq!(
            (back.updates, back.rate, &back.context),
            (s.updates, s.rate, &s.context)
        );
        assert!(back
            .log_weights
            .iter()
            .zip(&s.log_weights)
            .all(|(a, b)| (a - b).abs() < 1e-12));
    }
}
