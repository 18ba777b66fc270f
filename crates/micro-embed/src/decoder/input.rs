//! From (prompt, context, response) to token ids: context insertion, the chat template,
//! tokenization without extra special tokens (the template writes them), the prompt boundary,
//! and truncation that drops the oldest prompt text first and cuts the response only when even
//! the bare question does not leave it room.

use std::path::{Path, PathBuf};

use micro_data::Message;
use tokenizers::Tokenizer;

use super::context::insert_context;
use super::error::{DecoderError, Result};
use super::template::ChatTemplate;
use crate::ContextMode;

/// One rendered, tokenized conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// Tokens of `rendered` (prompt + response).
    pub ids: Vec<u32>,
    /// Tokens of `rendered_prompt`: the index of the first position after the prompt.
    pub prompt_length: usize,
    /// The conversation with the response as the final assistant turn.
    pub rendered: String,
    /// The prompt alone with `add_generation_prompt = true`.
    pub rendered_prompt: String,
    /// Whether text was dropped to fit `max_length`.
    pub truncated: bool,
    /// Whether the response's end had to go too (only once the prompt is down to nothing).
    pub response_cut: bool,
}

/// Renders and tokenizes conversations for one checkpoint.
pub struct InputBuilder {
    template: ChatTemplate,
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    max_length: usize,
    model_max: usize,
    insertion: ContextMode,
}

impl InputBuilder {
    /// Reads the tokenizer file `tokenizer_path` (a folder's `tokenizer.json`); sequences are
    /// kept to `max_length` tokens (at most `model_max`).
    pub fn new(
        tokenizer_path: &Path,
        template: ChatTemplate,
        max_length: usize,
        model_max: usize,
        insertion: ContextMode,
    ) -> Result<Self> {
        let tokenizer_path = tokenizer_path.to_path_buf();
        let tok_err = |m: String| DecoderError::Tokenizer {
            path: tokenizer_path.clone(),
            message: m,
        };
        if !tokenizer_path.is_file() {
            return Err(tok_err(
                "missing (a Hugging Face fast tokenizer file is required)".into(),
            ));
        }
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| tok_err(e.to_string()))?;
        // Padding and truncation configured in the file would change positions silently.
        tokenizer
            .with_padding(None)
            .with_truncation(None)
            .map_err(|e| tok_err(e.to_string()))?;
        Ok(InputBuilder {
            template,
            tokenizer,
            tokenizer_path,
            max_length: max_length.min(model_max),
            model_max,
            insertion,
        })
    }

    /// Token budget per sequence.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The tokenizer's vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Where the tokenizer was read from.
    pub fn tokenizer_path(&self) -> &Path {
        &self.tokenizer_path
    }

    /// The chat template in use.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Tokens of `text` as written: no special tokens are added.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.tokenizer_encode(text)?.get_ids().to_vec())
    }

    fn tokenizer_encode(&self, text: &str) -> Result<tokenizers::Encoding> {
        self.tokenizer
            .encode(text, false)
            .map_err(|e| DecoderError::Tokenizer {
                path: self.tokenizer_path.clone(),
                message: format!("cannot encode text: {e}"),
            })
    }

    /// Renders and tokenizes `prompt` (+ `context`) with `response` in at most `max_length`
    /// tokens: first whole old turns go, then the head of the last user turn, then the prompt's
    /// own system turns, and only then the end of the response. The context is never cut.
    pub fn encode(
        &self,
        prompt: &[Message],
        context: Option<&str>,
        response: &str,
    ) -> Result<Encoded> {
        let mut turns = prompt.to_vec();
        let mut reply = response.to_string();
        loop {
            let mut enc = self.encode_exact(&turns, context, &reply)?;
            if enc.ids.len() <= self.max_length {
                enc.response_cut = reply.len() < response.len();
                enc.truncated = enc.response_cut || turns != prompt;
                return Ok(enc);
            }
            let over = enc.ids.len() - self.max_length;
            let shortened =
                self.shorten_prompt(&mut turns, over)? || self.cut_tail(&mut reply, over)?;
            if !shortened {
                return Err(DecoderError::TooLong {
                    needed: enc.ids.len(),
                    max_length: self.max_length,
                    model_max: self.model_max,
                });
            }
        }
    }

    /// Renders and tokenizes without truncation.
    pub fn encode_exact(
        &self,
        prompt: &[Message],
        context: Option<&str>,
        response: &str,
    ) -> Result<Encoded> {
        let mut messages = insert_context(prompt, context, self.insertion);
        let rendered_prompt = self.template.render(&messages, true)?;
        messages.push(Message::new("assistant", response));
        let rendered = self.template.render(&messages, false)?;
        Ok(Encoded {
            ids: self.tokenize(&rendered)?,
            prompt_length: self.tokenize(&rendered_prompt)?.len(),
            rendered,
            rendered_prompt,
            truncated: false,
            response_cut: false,
        })
    }

    /// One step of prompt truncation for `over` excess tokens: the oldest whole turn, else the
    /// head of the last user turn, else the prompt's system turns. False when nothing is left.
    pub fn shorten_prompt(&self, turns: &mut Vec<Message>, over: usize) -> Result<bool> {
        Ok(drop_oldest_turn(turns) || self.cut_head(turns, over)? || drop_system(turns))
    }

    /// Where contexts go.
    pub fn context_mode(&self) -> ContextMode {
        self.insertion
    }

    /// Drops the first `over` tokens' worth of text from the turn that keeps the question
    /// (the last user turn); false when that turn is already empty.
    fn cut_head(&self, turns: &mut [Message], over: usize) -> Result<bool> {
        let Some(i) = kept_turn(turns) else {
            return Ok(false);
        };
        let content = &turns[i].content;
        if content.is_empty() {
            return Ok(false);
        }
        let enc = self.tokenizer_encode(content)?;
        let offsets = enc.get_offsets();
        let cut = offsets.get(over).map_or(content.len(), |o| o.0).max(1);
        let cut = (cut..=content.len())
            .find(|&c| content.is_char_boundary(c))
            .unwrap_or(content.len());
        turns[i].content = content[cut..].to_string();
        Ok(true)
    }

    /// Drops the last `over` tokens' worth of `text`; false when it is already empty.
    fn cut_tail(&self, text: &mut String, over: usize) -> Result<bool> {
        if text.is_empty() {
            return Ok(false);
        }
        let enc = self.tokenizer_encode(text)?;
        let keep = enc.get_offsets().len().saturating_sub(over);
        let end = if keep == 0 {
            0
        } else {
            enc.get_offsets()[keep - 1].1
        }
        .min(text.len() - 1);
        let end = (0..=end)
            .rev()
            .find(|&c| text.is_char_boundary(c))
            .unwrap_or(0);
        text.truncate(end);
        Ok(true)
    }
}

/// The turn truncation never removes: the last user turn, else the last turn.
fn kept_turn(turns: &[Message]) -> Option<usize> {
    turns
        .iter()
        .rposition(|m| m.role == "user")
        .or(turns.len().checked_sub(1))
}

/// Removes the oldest non-system turn before the kept one, and an assistant turn that would
/// then open the conversation (templates often insist that a user speaks first).
fn drop_oldest_turn(turns: &mut Vec<Message>) -> bool {
    let first_non_system = |t: &[Message]| t.iter().position(|m| m.role != "system");
    let (Some(first), Some(kept)) = (first_non_system(turns), kept_turn(turns)) else {
        return false;
    };
    if first >= kept {
        return false;
    }
    turns.remove(first);
    while let (Some(first), Some(kept)) = (first_non_system(turns), kept_turn(turns)) {
        if first >= kept || turns[first].role == "user" {
            break;
        }
        turns.remove(first);
    }
    true
}

/// Last resort before giving up: the prompt's own system turns go too.
fn drop_system(turns: &mut Vec<Message>) -> bool {
    let before = turns.len();
    turns.retain(|m| m.role != "system");
    turns.len() < before
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_turns_go_first_and_the_last_question_stays() {
        let mut t = vec![
            Message::new("system", "S"),
            Message::new("user", "q1"),
            Message::new("assistant", "a1"),
            Message::new("user", "q2"),
        ];
        assert!(drop_oldest_turn(&mut t));
        assert_eq!(
            t,
            vec![Message::new("system", "S"), Message::new("user", "q2")]
        );
        assert!(!drop_oldest_turn(&mut t));
        assert!(drop_system(&mut t));
        assert_eq!(t, vec![Message::new("user", "q2")]);
        assert!(!drop_system(&mut t));
    }
}
