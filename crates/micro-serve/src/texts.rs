//! What a request needs embedded ([`Texts`]) and why embedding failed ([`EmbedError`]): the
//! contract between the scorer, which asks, and the batcher, which runs the backbone.

use micro_data::Prompt;
#[cfg(feature = "text")]
use std::sync::Arc;

/// What one request needs embedded (read by the batcher, which only a `text` build has).
#[cfg_attr(not(feature = "text"), allow(dead_code))]
#[derive(Clone, Debug)]
pub enum Texts {
    /// Router inputs e(x, c), one row each.
    Prompts(Vec<(Prompt, Option<String>)>),
    /// Reward features h(x, a) of several responses to one prompt, one row each.
    Responses {
        prompt: Prompt,
        context: Option<String>,
        responses: Vec<String>,
    },
}

#[cfg_attr(not(feature = "text"), allow(dead_code))]
impl Texts {
    /// Rows this request gets back.
    pub fn len(&self) -> usize {
        match self {
            Texts::Prompts(p) => p.len(),
            Texts::Responses { responses, .. } => responses.len(),
        }
    }
}

/// Why texts were not embedded. None of these is the client's fault: the texts were checked
/// before they were queued, so each is a server error (see `From<EmbedError> for ApiError`).
#[derive(Clone, Debug, thiserror::Error)]
pub enum EmbedError {
    /// The backbone refused or failed on the batch.
    #[cfg(feature = "text")]
    #[error("the backbone failed: {0}")]
    Backbone(Arc<micro_embed::EmbedError>),
    #[error("the backbone panicked on this batch")]
    Panicked,
    /// The worker threads are gone (the server is stopping, or a thread could not run).
    #[error("the backbone worker has stopped")]
    Stopped,
    #[error("the backbone returned {got} rows for {want} texts")]
    Rows { got: usize, want: usize },
}

#[cfg(feature = "text")]
impl From<micro_embed::EmbedError> for EmbedError {
    fn from(e: micro_embed::EmbedError) -> Self {
        EmbedError::Backbone(Arc::new(e))
    }
}
