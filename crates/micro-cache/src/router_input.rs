//! Which of a pair's two router inputs a consumer reads.
//!
//! A cache holds two router inputs per pair: `prompt_embeddings`, e(x), the prompt as written
//! (the ArmoRM/MiCRo meaning, and what a cache brought from elsewhere usually carries), and
//! `context_prompt_embeddings`, e(x, c), the prompt with the pair's context inserted (equal to
//! e(x) for a pair without a context). MiCRo's Stage 1 learns f(x) from binary labels alone;
//! Stage 2 and evaluation route by f(x, c).

use serde::{Deserialize, Serialize};

/// The router input of a pair. Stage 1 defaults to [`RouterInput::Pair`]: measured on data of
/// both kinds (README, "Router input"), reading the contexts that come with training pairs never
/// hurt, and it is necessary when users reverse each other on the same prompts (RPR-style data),
/// where a router that sees the prompt alone cannot tell them apart. [`RouterInput::Prompt`]
/// reproduces the paper's binary-only Stage 1 (its HelpSteer2 protocol).
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
    type Err = micro_data::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "prompt" => Ok(RouterInput::Prompt),
            "pair" | "context" => Ok(RouterInput::Pair),
            _ => Err(micro_data::UnknownValue::new(
                "router input",
                s,
                "prompt or pair",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_by_name() {
        assert_eq!("PAIR".parse::<RouterInput>(), Ok(RouterInput::Pair));
        assert_eq!("prompt".parse::<RouterInput>(), Ok(RouterInput::Prompt));
        assert!("both".parse::<RouterInput>().is_err());
        assert_eq!(RouterInput::default(), RouterInput::Pair);
    }
}
