//! Tokenisation for the encoder: texts in segments, each tokenised on its own, then fitted into
//! the model's length by dropping the oldest prompt tokens first and never the response unless
//! the response alone is too long.

use crate::error::{EmbedError, Result};
use std::path::Path;
use tokenizers::Tokenizer;

/// A text to encode, in three parts joined by whitespace (which, for WordPiece and similar
/// pre-tokenisers, tokenises exactly as the joined text would).
#[derive(Clone, Copy, Debug, Default)]
pub struct Segments<'a> {
    /// Kept whole (a criterion before the prompt); cut at its end only if nothing else fits.
    pub head: &'a str,
    /// Cut from the start when too long: the prompt, oldest turns first.
    pub body: &'a str,
    /// Kept whole (the response) unless it alone exceeds the length; then cut at its end.
    pub tail: &'a str,
}

/// The folder's tokenizer, with its fixed padding and truncation switched off (we pack
/// sequences without padding and truncate ourselves).
pub struct TextTokenizer {
    tokenizer: Tokenizer,
    /// Special tokens the post-processor puts around a single sequence (`[CLS]`, `[SEP]`).
    prefix: Vec<u32>,
    suffix: Vec<u32>,
    pub max_len: usize,
}

impl TextTokenizer {
    pub fn new(mut tokenizer: Tokenizer, max_len: usize, path: &Path) -> Result<Self> {
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| EmbedError::invalid(path, format!("cannot switch truncation off: {e}")))?;
        let enc = |add: bool| {
            tokenizer
                .encode_fast("a", add)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| {
                    EmbedError::invalid(path, format!("the tokenizer fails on a plain word: {e}"))
                })
        };
        let (with, core) = (enc(true)?, enc(false)?);
        let at = (0..=with.len().saturating_sub(core.len()))
            .find(|&i| with[i..].starts_with(&core))
            .ok_or_else(|| {
                EmbedError::invalid(
                    path,
                    "the post-processor changes the tokens it wraps; not supported",
                )
            })?;
        let (prefix, suffix) = (with[..at].to_vec(), with[at + core.len()..].to_vec());
        if prefix.len() + suffix.len() >= max_len {
            return Err(EmbedError::invalid(
                path,
                format!("max length {max_len} leaves no room after the special tokens"),
            ));
        }
        Ok(TextTokenizer {
            tokenizer,
            prefix,
            suffix,
            max_len,
        })
    }

    /// The largest id the tokenizer can produce plus one.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    /// Token ids (special tokens included) of each text, and how many texts were truncated.
    pub fn encode(&self, texts: &[Segments<'_>]) -> Result<(Vec<Vec<u32>>, usize)> {
        let mut parts: Vec<&str> = Vec::with_capacity(texts.len() * 3);
        for t in texts {
            parts.extend([t.head, t.body, t.tail]);
        }
        let encoded = self
            .tokenizer
            .encode_batch_fast(parts, false)
            .map_err(EmbedError::tokenizer)?;
        let mut truncated = 0;
        let ids = encoded
            .chunks_exact(3)
            .map(|e| {
                let (ids, cut) = self.fit(e[0].get_ids(), e[1].get_ids(), e[2].get_ids());
                truncated += usize::from(cut);
                ids
            })
            .collect();
        Ok((ids, truncated))
    }

    /// Fits head + body + tail into the length budget; returns the ids and whether anything was cut.
    fn fit(&self, head: &[u32], body: &[u32], tail: &[u32]) -> (Vec<u32>, bool) {
        let budget = self.max_len - self.prefix.len() - self.suffix.len();
        let tail_n = tail.len().min(budget);
        let head_n = head.len().min(budget - tail_n);
        let body_n = body.len().min(budget - tail_n - head_n);
        let cut = tail_n < tail.len() || head_n < head.len() || body_n < body.len();
        let mut ids =
            Vec::with_capacity(self.prefix.len() + head_n + body_n + tail_n + self.suffix.len());
        ids.extend_from_slice(&self.prefix);
        ids.extend_from_slice(&head[..head_n]);
        ids.extend_from_slice(&body[body.len() - body_n..]);
        ids.extend_from_slice(&tail[..tail_n]);
        ids.extend_from_slice(&self.suffix);
        (ids, cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whitespace word-level tokenizer with a BERT-style post-processor, built from JSON.
    fn tiny(max_len: usize) -> TextTokenizer {
        let json = r#"{
          "version": "1.0", "truncation": {"direction": "Right", "max_length": 3, "strategy": "LongestFirst", "stride": 0},
          "padding": null, "added_tokens": [], "normalizer": null,
          "pre_tokenizer": {"type": "Whitespace"},
          "post_processor": {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
             "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [1], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [2], "tokens": ["[SEP]"]}}},
          "decoder": null,
          "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "a": 3, "b": 4, "c": 5, "d": 6, "e": 7}, "unk_token": "[UNK]"}
        }"#;
        let tok = Tokenizer::from_bytes(json.as_bytes()).unwrap();
        TextTokenizer::new(tok, max_len, Path::new("tokenizer.json")).unwrap()
    }

    #[test]
    fn special_tokens_wrap_and_the_shipped_truncation_is_off() {
        let t = tiny(16);
        let (ids, cut) = t
            .encode(&[
                Segments {
                    head: "",
                    body: "a b c d",
                    tail: "e",
                },
                Segments::default(),
            ])
            .unwrap();
        assert_eq!(ids, vec![vec![1, 3, 4, 5, 6, 7, 2], vec![1, 2]]);
        assert_eq!(cut, 0);
    }

    #[test]
    fn the_oldest_prompt_tokens_go_first_and_the_response_stays() {
        let t = tiny(6);
        let (ids, cut) = t
            .encode(&[Segments {
                head: "",
                body: "a b c d",
                tail: "e a",
            }])
            .unwrap();
        assert_eq!(ids, vec![vec![1, 5, 6, 7, 3, 2]]);
        assert_eq!(cut, 1);
        let (ids, _) = t
            .encode(&[Segments {
                head: "e",
                body: "a b c d",
                tail: "",
            }])
            .unwrap();
        assert_eq!(
            ids,
            vec![vec![1, 7, 4, 5, 6, 2]],
            "the criterion is kept, the prompt loses its start"
        );
        let (ids, cut) = t
            .encode(&[Segments {
                head: "",
                body: "a",
                tail: "b c d e a b",
            }])
            .unwrap();
        assert_eq!(
            ids,
            vec![vec![1, 4, 5, 6, 7, 2]],
            "a response longer than the model is cut at its end"
        );
        assert_eq!(cut, 1);
    }
}
