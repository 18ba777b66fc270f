//! The built-in multi-user preference set: real questions and answers, simulated users.
//!
//! No multi-user preference set can be downloaded here, so this module simulates users over
//! real text, in the open. The text is chatterbot-corpus 1.3.3 (PyPI `chatterbot-corpus`, BSD
//! licence): 21 topic files of English question/answer exchanges, fetched by
//! `scripts/fetch-assets.sh corpus` into `$MICRO_HOME/corpus/chatterbot/english`
//! (`MICRO_HOME` defaults to `~/.cache/micro`).
//!
//! # Text
//! Each conversation contributes its first exchange (first turn = question, second = answer);
//! later turns are ignored because the corpus uses them inconsistently (alternative answers in
//! `emotion.yml`, a continuing dialogue in `conversations.yml`), and entries without two text
//! turns (one bare string in `trivia.yml`) are skipped. Whitespace is normalised and exact
//! duplicates dropped (`tech_support.yml` repeats ten exchanges ~100 times each), leaving
//! about 900 exchanges, 750 distinct questions and 870 distinct answers. A topic is the first
//! `categories:` entry of its file. Questions equal up to case and a trailing `?`, `.` or `!`
//! are one prompt.
//!
//! Every prompt is a real question. For each, [`BuiltinOptions::candidates_per_prompt`] (10)
//! real answers are drawn: one of the question's own answers, one other answer of the same
//! topic, one answer from each of the two domains below that the question is not in, and random
//! answers of other topics for the rest. Each user's pairs come from these candidates, so a
//! prompt's responses are shared by all users and embedded once.
//!
//! # Users
//! Seven user types. `user_id` and `attribute` are the name, `context` the sentence. Three
//! pairs of users reverse each other on exactly the same (prompt, response, response) triples,
//! as in RPR: for any one reward model that does not read the context, the accuracies on two
//! opposite users sum to at most 1 (50% on average), while a head per direction and a router
//! reading the context can serve both.
//!
//! | user | context | rater: prefers | indifferent (pair dropped) when |
//! |---|---|---|---|
//! | `concise` | "I am in a hurry: I prefer the shortest reply that does the job, with no extra words." | fewer words | the longer reply has fewer than 2x the words or fewer than 5 more words, or the two differ in informal markers |
//! | `detailed` | "I like thorough replies: the longer and more elaborate the answer, with extra explanation, the better." | more words (reverse of `concise`) | as `concise` |
//! | `formal` | "I expect a formal, professional register: no contractions, no exclamation marks, no emoticons or slang." | fewer informal markers | same number of markers, or the pair is one `concise` judges (so register pairs have comparable lengths) |
//! | `playful` | "I enjoy a casual, chatty tone: contractions, exclamation marks and a bit of slang make a reply feel friendly." | more informal markers (reverse of `formal`) | as `formal` |
//! | `tech_fan` | "I am a technology enthusiast: I prefer replies about computers, programming, artificial intelligence and science." | the reply from a tech topic (AI, computers, coding, science, tech support) over one from a culture topic | not one tech and one culture reply |
//! | `culture_fan` | "I love culture and society: I prefer replies about history, literature, movies, politics, sports, food, money and psychology." | the culture reply (reverse of `tech_fan`) | as `tech_fan` |
//! | `relevant` | "Stay on point: the reply must directly answer the question I asked rather than change the subject." | the question's own answer over an answer from another topic | anything else (a same-topic answer is neither relevant nor unrelated) |
//!
//! Words are whitespace-separated tokens. Informal markers are counted as: each contraction
//! (a word ending in `n't`, `'m`, `'re`, `'ve`, `'ll`, `'d`, or one of `it's that's what's
//! there's here's he's she's let's who's where's how's`; curly apostrophes count), each `!`,
//! each emoticon token (`:) :-) ;) ;-) :( :-( :D :P :p xD <3`) and each slang word
//! ([`raters::SLANG`]: yeah, yep, gonna, lol, okay, ...). Capitalisation is deliberately not a
//! formality cue: all-MiniLM-L6-v2 lower-cases its input, so no reward head on its embeddings
//! could see it. The length and register raters never judge the same pair, so their heads must
//! learn different directions.
//!
//! # Learnability
//! Length, register and domain are properties of the response text that sentence embeddings of
//! prompt + response carry, so a linear head can learn each. Relevance depends on the prompt
//! and the response together, which a linear head on one joint embedding captures only in
//! part; expect `relevant` to be the hardest user for every method. Measured on seed 0 with
//! all-MiniLM-L6-v2 embeddings of prompt + response and one logistic-regression head per user
//! (test split): concise/detailed 0.96, formal/playful 0.93, tech_fan/culture_fan 0.96,
//! relevant 0.80; one head for all users: 0.66/0.34, 0.63/0.37, 0.50/0.50 and 0.80.
//!
//! # Sizes and split
//! Each criterion's decisive pairs are shuffled and taken round-robin over prompts (each
//! prompt's first pair before any prompt's second) up to [`BuiltinOptions::pairs_per_user`]
//! (600), so users are balanced: 7 x 600 = 4,200 pairs over 2,344 distinct triples, 746
//! prompts, 3,779 distinct prompt + response texts (the reward features of an encoder) and
//! 4,946 distinct router inputs (each prompt alone, and with each user's context): some 8,700
//! texts to embed (seed 0).
//! Prompts are split train/test 80/20 by a seeded
//! shuffle, so no prompt is in both splits; every pair carries its `split`.
//! `chosen_rating`/`rejected_rating` are the rater's score for each reply, higher preferred by
//! that user (`concise`: minus the word count; `detailed`: the word count; `formal`: minus the
//! marker count; `playful`: the marker count; fans: 1 for their domain, 0 for the other;
//! `relevant`: 2 own answer, 0 other topic). The same seed gives the same pairs.
//!
//! # HelpSteer2 layout
//! [`BuiltinLayout::HelpSteer2`] (`micro data builtin --layout helpsteer2`) lays out the train
//! split for the paper's other protocol: Stage 1 learns from binary labels alone, and contexts
//! appear only in Stage 2's budget and in the test split. Same users, raters, candidates and
//! round-robin order as above; the test split is exactly the default layout's.
//! - **Stage 1 pairs** (train, no `context`, no `attribute`; `user_id` kept for audit): the
//!   users' share varies with the prompt's topic. Each topic (of 21) has a dominant user: the
//!   seed orders the topics, and each in turn goes to the user with the fewest Stage 1 pairs so
//!   far among those whose criterion has triples there. A topic's Stage 1 pairs are its
//!   dominant user's criterion's train-prompt triples (at most
//!   [`BuiltinOptions::pairs_per_user`] per user), each labelled by the dominant user with
//!   probability [`BuiltinOptions::majority_share`] (0.9), else by the opposite user (relevance
//!   has none). Opposite users dominate different topics with similar masses, so a model that
//!   ignores the prompt sees the two sides about evenly, while a router that reads the prompt
//!   can learn who is likely to be asking and the heads can split. (A first version gave every
//!   topic one favoured side per criterion, 85%; with the share spread over four criteria per
//!   prompt, Stage 1 from the prompt alone did not split the heads: best heads 0.67 over the
//!   users, routed at B = 50 0.60.)
//! - **Stage 2 pool** (train, `attribute` = user, `context` = the user's sentence):
//!   [`BuiltinOptions::pool_per_user`] (150) pairs per user, taken from the train-prompt triples
//!   of its criterion ahead of the Stage 1 ones and dealt in turn, so opposite users' pool
//!   triples differ from each other and from the Stage 1 triples of their criterion.
//! - **Test**: as the default layout (every user on test prompts, with contexts, opposite users
//!   on the same triples).
//!
//! Sizes on seed 0 (10 candidates per prompt): 3,278 Stage 1 pairs, 1,050 pool pairs, 821 test
//! pairs (114-121 per user): 5,149 in all; the dominant users label about 90% of their topics'
//! pairs (`tests/it/builtin.rs` checks 85-95%, and 35-65% for each side of an opposite pair).
//!
//! ```no_run
//! use micro_data::builtin::{build, BuiltinOptions};
//! let pairs = build(&BuiltinOptions { seed: 7, ..Default::default() })?;
//! assert!(pairs.iter().all(|p| p.context.is_some() && p.split.is_some()));
//! # Ok::<(), micro_data::DataError>(())
//! ```

pub mod candidates;
pub mod corpus;
mod latent;
pub mod raters;
mod select;

use std::path::PathBuf;

pub use corpus::{default_corpus_dir, load_corpus, Corpus, Exchange, FETCH_HINT};
pub use raters::{Criterion, UserType, USER_TYPES};

use crate::{DataError, PrefPair, Result};

/// How the built-in set lays out its train split (the test split is the same in both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BuiltinLayout {
    /// Every user on train and test prompts, every pair with its user's context (RPR-style:
    /// a criterion comes with every pair).
    #[default]
    Rpr,
    /// The paper's HelpSteer2 protocol: Stage 1 pairs without context or attribute, each
    /// labelled by one latent user whose share depends on the prompt's topic, plus a
    /// context-labelled pool per user for Stage 2's budget (see the module docs).
    HelpSteer2,
}

impl std::fmt::Display for BuiltinLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BuiltinLayout::Rpr => "rpr",
            BuiltinLayout::HelpSteer2 => "helpsteer2",
        })
    }
}

impl std::str::FromStr for BuiltinLayout {
    type Err = crate::UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, crate::UnknownValue> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "rpr" => Ok(BuiltinLayout::Rpr),
            "helpsteer2" | "helpsteer" | "hs2" => Ok(BuiltinLayout::HelpSteer2),
            _ => Err(crate::UnknownValue::new("layout", s, "rpr or helpsteer2")),
        }
    }
}

/// How to build the built-in set (with the `clap` feature: the flags of `micro data builtin`).
/// The seed drives candidate sampling, pair selection and the train/test split; a user gets
/// fewer pairs only if the corpus has fewer decisive ones; `MICRO_HOME` defaults to
/// `~/.cache/micro`.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct BuiltinOptions {
    /// Folder holding the chatterbot-corpus `*.yml` files (default: `$MICRO_HOME/corpus/chatterbot/english`).
    #[cfg_attr(feature = "clap", arg(long = "corpus", value_name = "CORPUS"))]
    pub corpus_dir: Option<PathBuf>,
    /// Random seed.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = BuiltinOptions::default().seed))]
    pub seed: u64,
    /// Train-split layout: `rpr` (every pair with its user's context) or `helpsteer2` (Stage 1
    /// pairs without context, labelled by latent users whose share depends on the topic, plus
    /// a context-labelled Stage 2 pool per user). The test split is the same in both.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = BuiltinOptions::default().layout))]
    pub layout: BuiltinLayout,
    /// Pairs per user (rpr) or Stage 1 triples per criterion (helpsteer2).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = BuiltinOptions::default().pairs_per_user))]
    pub pairs_per_user: usize,
    /// helpsteer2: context-labelled Stage 2 pairs per user.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = BuiltinOptions::default().pool_per_user))]
    pub pool_per_user: usize,
    /// helpsteer2: the share of a topic's Stage 1 pairs labelled by the user it favours.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = BuiltinOptions::default().majority_share))]
    pub majority_share: f64,
    /// Candidate responses drawn per prompt (at least 3): more gives more pairs per prompt.
    #[cfg_attr(
        feature = "clap",
        arg(long = "candidates", value_name = "CANDIDATES", default_value_t = BuiltinOptions::default().candidates_per_prompt)
    )]
    pub candidates_per_prompt: usize,
    /// Fraction of prompts in the test split.
    #[cfg_attr(feature = "clap", arg(skip = BuiltinOptions::default().test_fraction))]
    pub test_fraction: f64,
}

impl Default for BuiltinOptions {
    fn default() -> Self {
        BuiltinOptions {
            corpus_dir: None,
            seed: 0,
            pairs_per_user: 600,
            test_fraction: 0.2,
            candidates_per_prompt: 10,
            layout: BuiltinLayout::Rpr,
            pool_per_user: 150,
            majority_share: 0.9,
        }
    }
}

/// `wrote N built-in pairs (train A, test B, C attributes, D users) to OUTPUT`.
pub fn wrote_line(s: &crate::DataStats, output: &std::path::Path) -> String {
    format!(
        "wrote {} built-in pairs (train {}, test {}, {} attributes, {} users) to {}",
        s.pairs,
        s.splits.train,
        s.splits.test,
        s.attributes.len(),
        s.users.users,
        output.display()
    )
}

/// Builds the built-in preference pairs (see the module docs for what they are).
pub fn build(opts: &BuiltinOptions) -> Result<Vec<PrefPair>> {
    check(opts)?;
    let dir = match &opts.corpus_dir {
        Some(d) => d.clone(),
        None => default_corpus_dir()?,
    };
    let corpus = load_corpus(&dir)?;
    Ok(select::pairs_from_corpus(&corpus, opts))
}

fn check(opts: &BuiltinOptions) -> Result<()> {
    let bad = |setting, rule, value| {
        Err(DataError::BuiltinSetting {
            setting,
            rule,
            value,
        })
    };
    if !(opts.test_fraction > 0.0 && opts.test_fraction < 1.0) {
        return bad(
            "test fraction",
            "strictly between 0 and 1",
            opts.test_fraction,
        );
    }
    if opts.candidates_per_prompt < 3 {
        let n = opts.candidates_per_prompt as f64;
        return bad("candidates per prompt", "at least 3", n);
    }
    if opts.pairs_per_user == 0 {
        return bad("pairs per user", "at least 1", 0.0);
    }
    if opts.layout == BuiltinLayout::HelpSteer2 {
        if !(opts.majority_share >= 0.5 && opts.majority_share <= 1.0) {
            let share = opts.majority_share;
            return bad("majority share", "between 0.5 and 1", share);
        }
        if opts.pool_per_user == 0 {
            return bad("Stage 2 pool per user", "at least 1", 0.0);
        }
    }
    Ok(())
}
