//! The simulated users and the text features their preferences are computed from.

/// The four judgements the users are built on; each pair of opposite users shares one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Criterion {
    Length,
    Register,
    Domain,
    Relevance,
}

/// A simulated user: a criterion, a direction on it, and the sentence that describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserType {
    pub name: &'static str,
    pub criterion: Criterion,
    /// `false`: prefers the first side of the criterion (shorter, formal, technical, relevant);
    /// `true`: the reverse.
    pub reversed: bool,
    pub context: &'static str,
}

/// The seven users, in output order. Opposite users follow each other.
pub const USER_TYPES: [UserType; 7] = [
    UserType {
        name: "concise",
        criterion: Criterion::Length,
        reversed: false,
        context: "I am in a hurry: I prefer the shortest reply that does the job, with no extra words.",
    },
    UserType {
        name: "detailed",
        criterion: Criterion::Length,
        reversed: true,
        context: "I like thorough replies: the longer and more elaborate the answer, with extra explanation, the better.",
    },
    UserType {
        name: "formal",
        criterion: Criterion::Register,
        reversed: false,
        context: "I expect a formal, professional register: no contractions, no exclamation marks, no emoticons or slang.",
    },
    UserType {
        name: "playful",
        criterion: Criterion::Register,
        reversed: true,
        context: "I enjoy a casual, chatty tone: contractions, exclamation marks and a bit of slang make a reply feel friendly.",
    },
    UserType {
        name: "tech_fan",
        criterion: Criterion::Domain,
        reversed: false,
        context: "I am a technology enthusiast: I prefer replies about computers, programming, artificial intelligence and science.",
    },
    UserType {
        name: "culture_fan",
        criterion: Criterion::Domain,
        reversed: true,
        context: "I love culture and society: I prefer replies about history, literature, movies, politics, sports, food, money and psychology.",
    },
    UserType {
        name: "relevant",
        criterion: Criterion::Relevance,
        reversed: false,
        context: "Stay on point: the reply must directly answer the question I asked rather than change the subject.",
    },
];

/// Topics (first category of a corpus file, lower-cased) the `tech_fan` prefers.
pub const TECH_TOPICS: [&str; 5] = ["ai", "computers", "coding", "science", "tech support"];
/// Topics the `culture_fan` prefers.
pub const CULTURE_TOPICS: [&str; 8] = [
    "history",
    "literature",
    "movies",
    "politics",
    "sports",
    "food",
    "money",
    "psychology",
];

/// Which side of the domain criterion a topic is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Domain {
    Tech,
    Culture,
    Neither,
}

pub fn domain_of(topic: &str) -> Domain {
    let t = topic.to_lowercase();
    if TECH_TOPICS.contains(&t.as_str()) {
        Domain::Tech
    } else if CULTURE_TOPICS.contains(&t.as_str()) {
        Domain::Culture
    } else {
        Domain::Neither
    }
}

/// Whitespace-separated words.
pub fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Slang and interjections counted as informal (matched as whole lower-case words).
pub const SLANG: [&str; 25] = [
    "yeah", "yep", "yup", "nope", "nah", "gonna", "wanna", "gotta", "kinda", "sorta", "dude",
    "lol", "haha", "hehe", "hey", "wow", "cool", "awesome", "ok", "okay", "oh", "hmm", "ya", "yay",
    "oops",
];

/// Emoticons counted as informal (matched as whole whitespace-separated tokens, so `note:do`
/// is no emoticon).
pub const EMOTICONS: [&str; 11] = [
    ":)", ":-)", ";)", ";-)", ":(", ":-(", ":D", ":P", ":p", "xD", "<3",
];

/// Contraction endings (`don't`, `I'm`, `we're`, `I've`, `you'll`, `I'd`).
const CONTRACTION_SUFFIXES: [&str; 6] = ["n't", "'m", "'re", "'ve", "'ll", "'d"];
/// Words whose `'s` is a contraction of "is"/"has"/"us", not a possessive.
const S_CONTRACTIONS: [&str; 11] = [
    "it's", "that's", "what's", "there's", "here's", "he's", "she's", "let's", "who's", "where's",
    "how's",
];

/// The number of informal markers in `text`: contractions + `!` + emoticons + slang words.
///
/// Capital letters are deliberately not counted: all-MiniLM-L6-v2 lower-cases its input, so a
/// preference on capitalisation would be invisible to any reward head on its embeddings.
pub fn informal_markers(text: &str) -> usize {
    let lower = text.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'");
    let bangs = lower.matches('!').count();
    let emoticons = text
        .split_whitespace()
        .filter(|t| EMOTICONS.contains(&t.trim_end_matches([',', '.'])))
        .count();
    let words = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty());
    let mut lexical = 0;
    for w in words {
        let contraction = CONTRACTION_SUFFIXES
            .iter()
            .any(|s| w.len() > s.len() && w.ends_with(s));
        if contraction || S_CONTRACTIONS.contains(&w) || SLANG.contains(&w) {
            lexical += 1;
        }
    }
    bangs + emoticons + lexical
}

/// Minimum ratio and difference in words for the length users to have a preference.
pub const LENGTH_MIN_RATIO: usize = 2;
pub const LENGTH_MIN_WORDS: usize = 5;

/// Whether the length users judge a pair: the longer has at least twice the words and at least
/// five more. Otherwise they are indifferent.
pub fn length_decisive(words_a: usize, words_b: usize) -> bool {
    let (lo, hi) = (words_a.min(words_b), words_a.max(words_b));
    hi >= LENGTH_MIN_RATIO * lo && hi - lo >= LENGTH_MIN_WORDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn informal_markers_count_each_kind() {
        assert_eq!(informal_markers("The answer is forty-two."), 0);
        assert_eq!(informal_markers("I don't know!"), 2);
        assert_eq!(informal_markers("It\u{2019}s fine :)"), 2);
        assert_eq!(informal_markers("Yeah, gonna do it."), 2);
        // A possessive is not a contraction.
        assert_eq!(informal_markers("The cat's toy is Alice's."), 0);
        assert_eq!(
            informal_markers("I'm sure we've met; you'll see, I'd say."),
            4
        );
    }

    #[test]
    fn length_needs_ratio_and_difference() {
        assert!(length_decisive(1, 6));
        assert!(!length_decisive(1, 5));
        assert!(!length_decisive(10, 19));
        assert!(length_decisive(20, 10));
    }

    #[test]
    fn domains() {
        assert_eq!(domain_of("AI"), Domain::Tech);
        assert_eq!(domain_of("tech support"), Domain::Tech);
        assert_eq!(domain_of("history"), Domain::Culture);
        assert_eq!(domain_of("humor"), Domain::Neither);
    }

    #[test]
    fn opposite_users_share_a_criterion() {
        for w in USER_TYPES.windows(2) {
            if w[0].criterion == w[1].criterion {
                assert!(!w[0].reversed && w[1].reversed);
            }
        }
    }
}
