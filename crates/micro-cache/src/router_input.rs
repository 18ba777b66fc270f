//! Which of a pair's two router inputs a consumer reads.
//!
//! A cache holds two router inputs per pair: `prompt_embeddings`, e(x), the prompt as written
//! (the ArmoRM/MiCRo meaning, and what a cache brought from elsewhere usually carries), and
//! `context_prompt_embeddings`, e(x, c), the prompt with the pair's context inserted (equal to
//! e(x) for a pair without a context). MiCRo's Stage 1 learns f(x) from binary labels alone;
//! Stage 2 and evaluation route by f(x, c).

use micro_data::PrefPair;
use serde::{Deserialize, Serialize};

/// The router input of a pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouterInput {
    /// e(x): the prompt alone, contexts ignored even where present (the paper's Stage 1).
    Prompt,
    /// e(x, c): the prompt with the pair's own context where it has one, else e(x).
    #[default]
    Pair,
}

impl RouterInput {
    pub fn as_str(self) -> &'static str {
        match self {
            RouterInput::Prompt => "prompt",
            RouterInput::Pair => "pair",
        }
    }
}

impl std::fmt::Display for RouterInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RouterInput {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "prompt" => Ok(RouterInput::Prompt),
            "pair" | "context" => Ok(RouterInput::Pair),
            _ => Err(format!("unknown router input {s:?}: use prompt or pair")),
        }
    }
}

impl RouterInput {
    /// Stage 1's router input for `--router-input auto`: e(x, c) when every training pair
    /// carries a context (RPR-style data, whose criteria come with every pair), e(x) otherwise
    /// (binary-only Stage 1 data, contexts kept for Stage 2's budget and the test set: the
    /// paper's HelpSteer2 protocol, which a context on some training pairs would leak into).
    pub fn auto(pairs: &[PrefPair]) -> RouterInput {
        let has_context = |p: &PrefPair| p.context.as_deref().is_some_and(|c| !c.trim().is_empty());
        let mut train = pairs.iter().filter(|p| p.is_train()).peekable();
        if train.peek().is_some() && train.all(has_context) {
            RouterInput::Pair
        } else {
            RouterInput::Prompt
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_reads_the_context_only_when_every_training_pair_has_one() {
        let with = |c: Option<&str>| {
            let mut p = PrefPair::new("q", "a", "b");
            p.context = c.map(String::from);
            p
        };
        let mut test_only = with(None);
        test_only.split = Some(micro_data::Split::Test);
        assert_eq!(
            RouterInput::auto(&[with(Some("c")), with(Some("d")), test_only]),
            RouterInput::Pair
        );
        assert_eq!(
            RouterInput::auto(&[with(Some("c")), with(Some(" "))]),
            RouterInput::Prompt
        );
        assert_eq!(RouterInput::auto(&[with(None)]), RouterInput::Prompt);
        assert_eq!("PAIR".parse::<RouterInput>(), Ok(RouterInput::Pair));
        assert!("both".parse::<RouterInput>().is_err());
    }
}
