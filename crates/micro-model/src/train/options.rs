//! Stage 1 as a user asks for it (`micro train`'s flags with the `clap` feature): the heads as a
//! number or `auto`, the learning rate and alpha left unset to be searched, the router as a
//! layout and a width. [`TrainOptions::config`] and [`TrainOptions::grid`] turn it into what
//! [`crate::train`] and [`crate::train_search`] take.

#[cfg(feature = "clap")]
use super::config::ROUTER_HIDDEN;
use crate::{Activation, Grid, Method, TrainConfig};
use micro_cache::RouterInput;

/// The generous K that `--heads auto` trains before correlated heads are merged.
pub const AUTO_HEADS: usize = 10;

/// How many heads to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heads {
    Fixed(usize),
    /// Train [`AUTO_HEADS`] heads, then merge those whose held-out margins correlate
    /// (micro-route's `auto_heads`).
    Auto,
}

impl std::str::FromStr for Heads {
    type Err = micro_data::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            return Ok(Heads::Auto);
        }
        s.parse::<usize>().map(Heads::Fixed).map_err(|_| {
            micro_data::UnknownValue::new("heads", s, "a number of heads such as 10, or `auto`")
        })
    }
}

/// Router layout on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum RouterLayout {
    /// One hidden layer (the paper's 128-unit MLP).
    Mlp,
    /// softmax(W e + b), as in the authors' code.
    Linear,
}

/// Whether Stage 1 learns a per-user table beside the router ([`crate::UserIds`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum UsersChoice {
    /// Tried beside the plain mixture where training pairs carry user ids; kept if the
    /// held-out NLL says so.
    #[default]
    Auto,
    /// Always (the training pairs must carry user ids).
    On,
    /// Never: user ids are ignored.
    Off,
}

/// Stage 1 options as `micro train` takes them. Every default is [`TrainConfig::default`]'s.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct TrainOptions {
    /// micro, single, static or shared-base.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainConfig::default().method))]
    pub method: Method,
    /// Number of heads K (default 10; 1 for `single`), or `auto`: 10, then correlated heads merged.
    /// MiCRo's K heads are kept only if their held-out NLL beats one head's clearly (else one
    /// head is returned, and the search says why), unless --keep-heads.
    #[cfg_attr(feature = "clap", arg(long))]
    pub heads: Option<Heads>,
    /// Keep the K heads even where one head fits the held-out pairs as well (no comparison).
    #[cfg_attr(feature = "clap", arg(long))]
    pub keep_heads: bool,
    /// A per-user table beside the router, for pairs that carry a `user_id`: auto (tried, kept
    /// if the held-out NLL says so), on, off.
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = UsersChoice::Auto))]
    pub users: UsersChoice,
    /// Maximum epochs; early stopping on the held-out pairs usually ends sooner.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainConfig::default().max_epochs))]
    pub epochs: usize,
    /// Peak learning rate (AdamW, 5% warm-up, cosine decay). Unset: chosen with alpha by the
    /// held-out mixture NLL over 2e-3 (the paper's) and 1e-2.
    #[cfg_attr(feature = "clap", arg(long))]
    pub lr: Option<f32>,
    /// Weight of the negative-entropy regulariser on the router. Unset: chosen with the learning
    /// rate by the held-out mixture NLL over 0.5 (the paper's), 0.05 and 0.005.
    #[cfg_attr(feature = "clap", arg(long))]
    pub alpha: Option<f32>,
    /// The router input of Stage 1: `pair` (e(x, c), each pair's context where it has one) or
    /// `prompt` (e(x), the paper's binary-only Stage 1: contexts ignored even where present,
    /// left to Stage 2). Evaluation and Stage 2 route by e(x, c) either way.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = RouterInput::default()))]
    pub router_input: RouterInput,
    /// Pairs per minibatch (`--batch` is the old name).
    #[cfg_attr(
        feature = "clap",
        arg(long, alias = "batch", default_value_t = TrainConfig::default().batch)
    )]
    pub batch_size: usize,
    #[cfg_attr(
        feature = "clap",
        arg(long, value_enum, default_value_t = RouterLayout::of(&TrainConfig::default()))
    )]
    pub router: RouterLayout,
    /// Hidden units of the MLP router.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = ROUTER_HIDDEN))]
    pub hidden: usize,
    /// relu or tanh (MLP router).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainConfig::default().activation))]
    pub activation: Activation,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainConfig::default().seed))]
    pub seed: u64,
    /// Fraction of the train split held out for early stopping (0: no early stopping).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainConfig::default().holdout))]
    pub holdout: f32,
    /// Epochs without held-out improvement before stopping.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainConfig::default().patience))]
    pub patience: usize,
    /// Epochs always run before early stopping may end training (heads need time to split).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainConfig::default().min_epochs))]
    pub min_epochs: usize,
    /// Fraction of the steps spent warming up.
    #[cfg_attr(
        feature = "clap",
        arg(long, default_value_t = TrainConfig::default().warmup_ratio)
    )]
    pub warmup: f32,
    #[cfg_attr(
        feature = "clap",
        arg(long, default_value_t = TrainConfig::default().weight_decay)
    )]
    pub weight_decay: f32,
    /// Folds of the cross-fit that keeps, beside a MiCRo model, each training pair's prediction
    /// by a model that did not train on it (Stage 2's evidence); 0: none, and Stage 2 judges
    /// the heads in sample. It trains this many more models.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = crate::DEFAULT_FOLDS))]
    pub cross_fit: usize,
}

impl RouterLayout {
    /// The layout of `cfg`'s router.
    pub fn of(cfg: &TrainConfig) -> Self {
        match cfg.router_hidden {
            Some(_) => RouterLayout::Mlp,
            None => RouterLayout::Linear,
        }
    }
}

impl TrainOptions {
    /// The training configuration; an unset learning rate or alpha takes the paper's value
    /// (the search of [`TrainOptions::grid`] replaces it).
    pub fn config(&self) -> TrainConfig {
        let k = match self.heads {
            Some(Heads::Fixed(k)) => k,
            Some(Heads::Auto) => AUTO_HEADS,
            None if self.method == Method::Single => 1,
            None => TrainConfig::default().k,
        };
        let defaults = TrainConfig::default();
        TrainConfig {
            method: self.method,
            k,
            lr: self.lr.unwrap_or(defaults.lr),
            warmup_ratio: self.warmup,
            weight_decay: self.weight_decay,
            batch: self.batch_size,
            max_epochs: self.epochs,
            alpha: self.alpha.unwrap_or(defaults.alpha),
            router_hidden: (self.router == RouterLayout::Mlp).then_some(self.hidden),
            activation: self.activation,
            seed: self.seed,
            holdout: self.holdout,
            patience: self.patience,
            min_epochs: self.min_epochs,
            threads: 0,
            users: self.users == UsersChoice::On,
        }
    }

    /// The grid to search: the values the user left unset, and the shapes that compete (none
    /// when alpha, the rate and the shape are all given).
    pub fn grid(&self) -> Option<Grid> {
        let full = Grid::default();
        let grid = Grid {
            alphas: self.alpha.map_or(full.alphas, |a| vec![a]),
            lrs: self.lr.map_or(full.lrs, |l| vec![l]),
            single: !self.keep_heads,
            users: self.users == UsersChoice::Auto,
        };
        let fixed = self.alpha.is_some() && self.lr.is_some() && !grid.single && !grid.users;
        (!fixed).then_some(grid)
    }

    /// `router input: pair (e(x, c), ...)`, the line `micro train` starts with.
    pub fn router_input_line(&self) -> String {
        let what = match self.router_input {
            RouterInput::Prompt => "e(x), the prompt alone",
            RouterInput::Pair => "e(x, c), each pair's prompt with its context",
        };
        format!("router input: {} ({what})", self.router_input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options with every default, as `micro train` parses them without flags (its own
    /// test in micro-cli checks the parse).
    fn options() -> TrainOptions {
        let d = TrainConfig::default();
        TrainOptions {
            method: d.method,
            heads: None,
            keep_heads: false,
            users: UsersChoice::Auto,
            epochs: d.max_epochs,
            lr: None,
            alpha: None,
            router_input: RouterInput::default(),
            batch_size: d.batch,
            router: RouterLayout::of(&d),
            hidden: ROUTER_HIDDEN,
            activation: d.activation,
            seed: d.seed,
            holdout: d.holdout,
            patience: d.patience,
            min_epochs: d.min_epochs,
            warmup: d.warmup_ratio,
            weight_decay: d.weight_decay,
            cross_fit: crate::DEFAULT_FOLDS,
        }
    }

    #[test]
    fn heads_parse_as_a_number_or_auto() {
        assert_eq!("auto".parse::<Heads>(), Ok(Heads::Auto));
        assert_eq!("4".parse::<Heads>(), Ok(Heads::Fixed(4)));
        let e = "many".parse::<Heads>().unwrap_err();
        assert_eq!((e.setting, e.value.as_str()), ("heads", "many"));
        assert_eq!(
            e.to_string(),
            "unknown heads \"many\": use a number of heads such as 10, or `auto`"
        );
    }

    #[test]
    fn the_defaults_are_the_papers_and_unset_values_are_searched() {
        let o = options();
        assert_eq!(o.config(), TrainConfig::default());
        assert_eq!(o.grid(), Some(Grid::default()));
        let single = TrainOptions {
            method: Method::Single,
            ..options()
        };
        assert_eq!(single.config().k, 1);
        let auto = TrainOptions {
            heads: Some(Heads::Auto),
            router: RouterLayout::Linear,
            lr: Some(0.01),
            ..options()
        };
        let c = auto.config();
        assert_eq!((c.k, c.router_hidden, c.lr), (AUTO_HEADS, None, 0.01));
        assert_eq!(
            auto.grid(),
            Some(Grid {
                alphas: vec![0.5, 0.05, 0.005],
                lrs: vec![0.01],
                ..Grid::default()
            })
        );
        // Given alpha and rate, the shapes still compete unless they are fixed too.
        let both = TrainOptions {
            lr: Some(0.01),
            alpha: Some(0.1),
            ..options()
        };
        let g = both.grid().unwrap();
        assert_eq!(
            (g.alphas, g.lrs, g.single, g.users),
            (vec![0.1], vec![0.01], true, true)
        );
        let fixed = TrainOptions {
            keep_heads: true,
            users: UsersChoice::Off,
            ..both.clone()
        };
        assert_eq!(fixed.grid(), None);
        assert_eq!(fixed.config().alpha, 0.1);
        let table = TrainOptions {
            users: UsersChoice::On,
            ..fixed
        };
        assert!(table.config().users);
        assert_eq!(table.grid(), None);
    }

    #[test]
    fn the_router_input_line_says_what_routes() {
        assert_eq!(
            options().router_input_line(),
            "router input: pair (e(x, c), each pair's prompt with its context)"
        );
        let prompt = TrainOptions {
            router_input: RouterInput::Prompt,
            ..options()
        };
        assert_eq!(
            prompt.router_input_line(),
            "router input: prompt (e(x), the prompt alone)"
        );
    }
}
