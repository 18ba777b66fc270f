//! Texts of a chosen token length for `micro bench embed`: English-like word sequences drawn
//! from a fixed list with a fixed seed, so every run measures the same input.

use crate::error::{EmbedError, Result};
use tokenizers::Tokenizer;

const WORDS: &[&str] = &[
    "the",
    "model",
    "answer",
    "question",
    "people",
    "because",
    "between",
    "should",
    "really",
    "water",
    "history",
    "science",
    "explain",
    "simple",
    "detailed",
    "response",
    "helpful",
    "careful",
    "example",
    "problem",
    "reason",
    "city",
    "music",
    "garden",
    "kitchen",
    "recipe",
    "travel",
    "library",
    "window",
    "morning",
    "evening",
    "friend",
    "family",
    "school",
    "teacher",
    "student",
    "number",
    "system",
    "energy",
    "market",
    "price",
    "quality",
    "safety",
    "health",
    "doctor",
    "medicine",
    "weather",
    "river",
    "mountain",
    "forest",
    "animal",
    "language",
    "computer",
    "program",
    "network",
    "message",
    "letter",
    "story",
    "poem",
    "song",
    "movie",
    "picture",
    "color",
    "light",
    "dark",
    "quick",
    "slow",
    "happy",
    "quiet",
    "loud",
    "small",
    "large",
    "early",
    "late",
    "always",
    "never",
    "often",
    "again",
    "also",
    "which",
    "where",
    "when",
    "while",
    "after",
    "before",
    "during",
    "without",
    "under",
    "over",
    "through",
    "around",
    "please",
    "thanks",
    "sorry",
    "sure",
    "maybe",
    "perhaps",
    "certainly",
    "first",
    "second",
    "third",
    "last",
    "next",
    "every",
    "some",
    "many",
    "few",
    "more",
    "less",
    "most",
    "other",
    "same",
    "different",
    "important",
    "possible",
    "necessary",
    "useful",
    "common",
    "public",
    "private",
    "local",
    "global",
    "write",
    "read",
    "think",
    "know",
    "believe",
    "remember",
    "consider",
    "suggest",
    "provide",
    "include",
    "describe",
    "compare",
    "improve",
    "create",
    "build",
    "cook",
    "bake",
    "grow",
    "learn",
    "teach",
    "help",
    "ask",
    "tell",
];

/// `count` texts of about `tokens` tokens each (special tokens included), with their exact
/// token counts under `tokenizer` (its own padding and truncation switched off).
pub fn bench_texts(
    tokenizer: &Tokenizer,
    tokens: usize,
    count: usize,
) -> Result<Vec<(String, usize)>> {
    let mut tok = tokenizer.clone();
    tok.with_padding(None);
    tok.with_truncation(None).map_err(EmbedError::tokenizer)?;
    let n_tokens = |t: &str| -> Result<usize> {
        tok.encode_fast(t, true)
            .map(|e| e.get_ids().len())
            .map_err(EmbedError::tokenizer)
    };
    let overhead = n_tokens("")?;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next_word = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        WORDS[(state >> 33) as usize % WORDS.len()]
    };
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut words: Vec<&str> = (0..tokens.saturating_sub(overhead).max(1))
            .map(|_| next_word())
            .collect();
        let mut text = sentence(&words);
        let mut n = n_tokens(&text)?;
        while n > tokens && words.len() > 1 {
            words.pop();
            text = sentence(&words);
            n = n_tokens(&text)?;
        }
        while n < tokens {
            words.push(next_word());
            text = sentence(&words);
            n = n_tokens(&text)?;
        }
        out.push((text, n));
    }
    Ok(out)
}

fn sentence(words: &[&str]) -> String {
    words.join(" ")
}
