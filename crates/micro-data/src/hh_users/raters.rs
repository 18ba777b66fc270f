//! The raters of the HH-RLHF multi-user set: exact rules over the real response text.

/// Whether a reply ends by asking the user something: its last non-blank character is `?`.
pub fn asks_back(text: &str) -> bool {
    text.trim_end().ends_with('?')
}

/// Whether a reply holds a question mark anywhere.
pub fn has_question(text: &str) -> bool {
    text.contains('?')
}

/// `curious` prefers the reply that ends with a question over one that holds no `?` at all.
/// `Some(true)`: `a`; `Some(false)`: `b`; `None` (indifferent) otherwise: neither or both end
/// with a question, or the other reply also asks something along the way.
pub fn curious(a: &str, b: &str) -> Option<bool> {
    match (asks_back(a), asks_back(b)) {
        (true, false) if !has_question(b) => Some(true),
        (false, true) if !has_question(a) => Some(false),
        _ => None,
    }
}

/// Single words that hedge a claim.
pub const HEDGE_WORDS: [&str; 15] = [
    "maybe",
    "perhaps",
    "possibly",
    "probably",
    "might",
    "may",
    "could",
    "seems",
    "seem",
    "likely",
    "unlikely",
    "unsure",
    "guess",
    "suppose",
    "apparently",
];

/// Word sequences that hedge a claim (none contains a hedge word, so nothing counts twice).
pub const HEDGE_PHRASES: [&[&str]; 7] = [
    &["i", "think"],
    &["not", "sure"],
    &["i", "don't", "know"],
    &["i", "believe"],
    &["sort", "of"],
    &["kind", "of"],
    &["it", "depends"],
];

/// Lower-case words: runs of ASCII letters and apostrophes (curly ones straightened), with
/// apostrophes at either end trimmed (quotes, not contractions).
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace(['\u{2019}', '\u{2018}'], "'")
        .split(|c: char| !(c.is_ascii_lowercase() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Hedge markers in a reply: each occurrence of a hedge word or phrase counts once.
pub fn hedge_markers(text: &str) -> usize {
    let words = words(text);
    let singles = words
        .iter()
        .filter(|w| HEDGE_WORDS.contains(&w.as_str()))
        .count();
    let phrases = (0..words.len())
        .filter(|&i| {
            HEDGE_PHRASES.iter().any(|p| {
                words.len() - i >= p.len() && p.iter().zip(&words[i..]).all(|(a, b)| a == b)
            })
        })
        .count();
    singles + phrases
}

/// The least number of hedge markers a reply needs for `cautious` to prefer it.
pub const MIN_HEDGES: usize = 2;

/// `cautious` prefers a reply with at least [`MIN_HEDGES`] hedge markers over one with none;
/// indifferent otherwise (both hedge, or the hedging one has a single marker).
pub fn cautious(a: &str, b: &str) -> Option<bool> {
    match (hedge_markers(a), hedge_markers(b)) {
        (ha, 0) if ha >= MIN_HEDGES => Some(true),
        (0, hb) if hb >= MIN_HEDGES => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curious_needs_a_closing_question_against_none() {
        assert_eq!(
            curious("Sure. What do you need?", "Here it is."),
            Some(true)
        );
        assert_eq!(curious("Here it is.", "What do you need?  "), Some(false));
        // The other reply asks something along the way: indifferent.
        assert_eq!(curious("What do you need?", "Why? Here it is."), None);
        assert_eq!(curious("Why?", "How?"), None);
        assert_eq!(curious("No.", "Fine."), None);
    }

    #[test]
    fn hedges_count_words_and_phrases_once() {
        assert_eq!(hedge_markers("It is raining."), 0);
        // "maybe" + "i think" + "not sure" (in "I'm not sure").
        assert_eq!(
            hedge_markers("Maybe. I think so, but I\u{2019}m not sure."),
            3
        );
        assert_eq!(hedge_markers("I don't know; it depends."), 2);
        // Quotes are not part of a word; "kind" alone is no hedge.
        assert_eq!(hedge_markers("'Perhaps' is a kind word."), 1);
        assert_eq!(words("Don't 'quote' me"), vec!["don't", "quote", "me"]);
    }

    #[test]
    fn cautious_needs_two_hedges_against_none() {
        assert_eq!(cautious("Maybe, probably.", "Yes."), Some(true));
        assert_eq!(cautious("Yes.", "I think it might."), Some(false));
        assert_eq!(cautious("Maybe.", "Yes."), None);
        assert_eq!(cautious("Maybe, probably.", "Perhaps."), None);
    }
}
