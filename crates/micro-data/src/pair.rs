//! The one preference-pair type every loader normalises into.

use serde::{Deserialize, Serialize};

/// One chat turn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A prompt: plain text, or a conversation (the turns before the response).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Messages(Vec<Message>),
}

impl Default for Prompt {
    fn default() -> Self {
        Prompt::Text(String::new())
    }
}

impl Prompt {
    /// The prompt as a message list (a text prompt becomes one user turn).
    pub fn to_messages(&self) -> Vec<Message> {
        match self {
            Prompt::Text(t) => vec![Message::new("user", t.clone())],
            Prompt::Messages(m) => m.clone(),
        }
    }

    /// The prompt as flat text: turns joined by blank lines, each prefixed by its role
    /// when there is more than one turn. Used by encoder backbones and for hashing.
    pub fn to_text(&self) -> String {
        match self {
            Prompt::Text(t) => t.clone(),
            Prompt::Messages(m) if m.len() == 1 => m[0].content.clone(),
            Prompt::Messages(m) => m
                .iter()
                .map(|t| format!("{}: {}", t.role, t.content))
                .collect::<Vec<_>>()
                .join("\n\n"),
        }
    }

    /// The text of the last user turn (or the whole text prompt).
    pub fn last_user_text(&self) -> &str {
        match self {
            Prompt::Text(t) => t,
            Prompt::Messages(m) => m
                .iter()
                .rev()
                .find(|t| t.role == "user")
                .or(m.last())
                .map(|t| t.content.as_str())
                .unwrap_or(""),
        }
    }
}

/// Which split a pair belongs to. `validation`, `val`, `dev` and `eval` read as `Test`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Split {
    Train,
    #[serde(alias = "validation", alias = "val", alias = "dev", alias = "eval")]
    Test,
}

/// A preference: for `prompt`, `chosen` is preferred over `rejected`, optionally under a
/// `context` (a user's criterion or instruction).
///
/// `attribute` is the evaluation group (an attribute, a user type, a subset; without one, the
/// user id). The native
/// on-disk form is one JSON object per line with exactly these field names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrefPair {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub prompt: Prompt,
    pub chosen: String,
    pub rejected: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_rating: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_rating: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl PrefPair {
    /// A pair with only the three required fields set.
    pub fn new(
        prompt: impl Into<String>,
        chosen: impl Into<String>,
        rejected: impl Into<String>,
    ) -> Self {
        PrefPair {
            prompt: Prompt::Text(prompt.into()),
            chosen: chosen.into(),
            rejected: rejected.into(),
            ..Default::default()
        }
    }

    /// The evaluation group: the attribute, else the user id (users known only by id are
    /// evaluated one by one), else `"all"`.
    pub fn group(&self) -> &str {
        self.attribute
            .as_deref()
            .or(self.user_id.as_deref())
            .unwrap_or("all")
    }

    /// Train unless marked test.
    pub fn is_train(&self) -> bool {
        self.split != Some(Split::Test)
    }
}
