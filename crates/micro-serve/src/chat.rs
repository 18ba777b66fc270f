//! Decoded trainer text back into a conversation: RL trainers send the policy's prompt after
//! its chat template was applied, and the sampled response with its end-of-turn token, so the
//! reward model would otherwise embed template markup. [`split_query`] cuts the response off
//! a decoded `prompt + response`, [`unrender`] turns ChatML, Llama 3 and Gemma templated text
//! back into messages, and [`clean_response`] strips end-of-turn and end-of-text tokens.

use micro_data::{Message, Prompt};

/// Tokens that end a turn or the text in the common templates; a response is cut at the first.
const END_TOKENS: [&str; 9] = [
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<|endoftext|>",
    "<end_of_turn>",
    "<eos>",
    "</s>",
    "<|end|>",
];

/// Tokens that may start the text before the first turn.
const BEGIN_TOKENS: [&str; 4] = ["<|begin_of_text|>", "<bos>", "<s>", "<|startoftext|>"];

/// One chat template's turn markup: `{start}{role}{role_end}{content}{end}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Template {
    pub name: &'static str,
    start: &'static str,
    role_end: &'static str,
    end: &'static str,
}

/// ChatML (Qwen, many others): `<|im_start|>user\nHi<|im_end|>\n`.
pub const CHATML: Template = Template {
    name: "chatml",
    start: "<|im_start|>",
    role_end: "\n",
    end: "<|im_end|>",
};

/// Llama 3: `<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>`.
pub const LLAMA3: Template = Template {
    name: "llama3",
    start: "<|start_header_id|>",
    role_end: "<|end_header_id|>",
    end: "<|eot_id|>",
};

/// Gemma: `<start_of_turn>user\nHi<end_of_turn>\n` (the assistant role is called `model`).
pub const GEMMA: Template = Template {
    name: "gemma",
    start: "<start_of_turn>",
    role_end: "\n",
    end: "<end_of_turn>",
};

const TEMPLATES: [Template; 3] = [CHATML, LLAMA3, GEMMA];

/// The template whose turn marker appears in `text`, if any.
pub fn detect(text: &str) -> Option<Template> {
    TEMPLATES.into_iter().find(|t| text.contains(t.start))
}

/// The turns of templated text, in order; `None` when `text` uses no known template.
///
/// Text before the first turn marker other than begin-of-text tokens is kept as a system turn
/// rather than dropped. The last turn may be open (no end token): a generation prompt
/// (`<|im_start|>assistant\n`, empty) or a response being written.
pub fn unrender(text: &str) -> Option<Vec<Message>> {
    let t = detect(text)?;
    let mut parts = text.split(t.start);
    let mut turns = Vec::new();
    let lead = strip_begin_tokens(parts.next().unwrap_or_default()).trim();
    if !lead.is_empty() {
        turns.push(Message::new("system", lead));
    }
    for part in parts {
        let (role, rest) = part.split_once(t.role_end).unwrap_or((part, ""));
        let content = rest.split(t.end).next().unwrap_or_default();
        let role = match role.trim() {
            "model" => "assistant",
            r => r,
        };
        turns.push(Message::new(role, clean_response(content)));
    }
    Some(turns)
}

/// A templated prompt as messages, without the trailing empty assistant turn that asks for a
/// generation; plain text stays text.
pub fn prompt_from_text(text: &str) -> Prompt {
    match unrender(text) {
        Some(mut turns) => {
            if turns
                .last()
                .is_some_and(|m| m.role == "assistant" && m.content.is_empty())
            {
                turns.pop();
            }
            Prompt::Messages(turns)
        }
        None => Prompt::Text(text.to_owned()),
    }
}

/// A response without template markup: cut at the first end-of-turn or end-of-text token,
/// and trimmed.
pub fn clean_response(text: &str) -> String {
    let cut = END_TOKENS
        .iter()
        .filter_map(|tok| text.find(tok))
        .min()
        .unwrap_or(text.len());
    text[..cut].trim().to_owned()
}

fn strip_begin_tokens(mut text: &str) -> &str {
    loop {
        let trimmed = text.trim_start();
        match BEGIN_TOKENS.iter().find_map(|t| trimmed.strip_prefix(t)) {
            Some(rest) => text = rest,
            None => return trimmed,
        }
    }
}

/// A decoded `prompt + response` split into the conversation and the response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub prompt: Prompt,
    pub response: String,
}

/// Splits a trainer's `query` (the decoded prompt and response) by its `prompt` text.
///
/// The response is what follows the prompt in the query. Decoding does not always reproduce
/// the prompt byte for byte (tokenizers normalise whitespace, a long prompt is cut from the
/// left), so when the query does not start with the prompt the split falls back to the last
/// assistant turn of a templated query, then to the longest common prefix.
pub fn split_query(query: &str, prompt: Option<&str>) -> Split {
    let prompt = prompt.unwrap_or_default();
    if let Some(rest) = query.strip_prefix(prompt).filter(|_| !prompt.is_empty()) {
        return Split {
            prompt: prompt_from_text(prompt),
            response: clean_response(rest),
        };
    }
    if let Some(split) = split_at_last_assistant_turn(query) {
        return split;
    }
    let common = common_prefix_len(query, prompt);
    Split {
        prompt: prompt_from_text(&query[..common]),
        response: clean_response(&query[common..]),
    }
}

/// The last assistant turn of a templated transcript as the response, the turns before it as
/// the prompt.
fn split_at_last_assistant_turn(query: &str) -> Option<Split> {
    let mut turns = unrender(query)?;
    let last = turns.iter().rposition(|m| m.role == "assistant")?;
    let response = turns.remove(last).content;
    turns.truncate(last);
    Some(Split {
        prompt: Prompt::Messages(turns),
        response,
    })
}

/// Bytes of the longest common prefix of `a` and `b`, on a character boundary.
fn common_prefix_len(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or_else(|| a.len().min(b.len()), |((i, _), _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(turns: &[(&str, &str)]) -> Prompt {
        Prompt::Messages(turns.iter().map(|(r, c)| Message::new(*r, *c)).collect())
    }

    #[test]
    fn chatml_prompt_and_response_become_messages_and_clean_text() {
        let prompt = "<|im_start|>system\nYou are kind.<|im_end|>\n<|im_start|>user\nHow do I boil an egg?<|im_end|>\n<|im_start|>assistant\n";
        let query = format!("{prompt}Boil it for nine minutes.<|im_end|><|endoftext|>");
        let s = split_query(&query, Some(prompt));
        assert_eq!(
            s.prompt,
            msgs(&[
                ("system", "You are kind."),
                ("user", "How do I boil an egg?")
            ])
        );
        assert_eq!(s.response, "Boil it for nine minutes.");
    }

    #[test]
    fn llama3_and_gemma_templates_are_unrendered() {
        let prompt = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
        let s = split_query(&format!("{prompt}Hello!<|eot_id|>"), Some(prompt));
        assert_eq!(s.prompt, msgs(&[("user", "Hi there")]));
        assert_eq!(s.response, "Hello!");
        let prompt = "<bos><start_of_turn>user\nName a fruit<end_of_turn>\n<start_of_turn>model\n";
        let s = split_query(&format!("{prompt}A pear.<end_of_turn>\n"), Some(prompt));
        assert_eq!(s.prompt, msgs(&[("user", "Name a fruit")]));
        assert_eq!(s.response, "A pear.");
    }

    #[test]
    fn plain_text_keeps_its_prompt_and_loses_only_end_tokens() {
        let s = split_query("Q: 2+2?\nA: 4</s>", Some("Q: 2+2?\nA:"));
        assert_eq!(s.prompt, Prompt::Text("Q: 2+2?\nA:".into()));
        assert_eq!(s.response, "4");
        let s = split_query("just a response", None);
        assert_eq!(s.prompt, Prompt::Text(String::new()));
        assert_eq!(s.response, "just a response");
        // No prompt given: a templated query splits at its last assistant turn.
        let s = split_query(
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>",
            None,
        );
        assert_eq!(s.prompt, msgs(&[("user", "Hi")]));
        assert_eq!(s.response, "Yo");
    }

    #[test]
    fn a_query_that_does_not_start_with_its_prompt_falls_back() {
        // Decoding normalised the prompt: the last assistant turn is the response.
        let query = "<|im_start|>user\nHi  there<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>";
        let s = split_query(
            query,
            Some("<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"),
        );
        assert_eq!(s.prompt, msgs(&[("user", "Hi  there")]));
        assert_eq!(s.response, "Hello");
        // Plain text: the longest common prefix, on a character boundary.
        let s = split_query("Tell me é! Sure.", Some("Tell me è!"));
        assert_eq!(s.prompt, Prompt::Text("Tell me ".into()));
        assert_eq!(s.response, "é! Sure.");
    }

    #[test]
    fn text_before_the_first_turn_is_kept_and_the_generation_prompt_dropped() {
        let p =
            prompt_from_text("Be terse.\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        assert_eq!(p, msgs(&[("system", "Be terse."), ("user", "Hi")]));
        assert_eq!(detect("no markup"), None);
        assert_eq!(
            detect("<|start_header_id|>").map(|t| t.name),
            Some("llama3")
        );
    }
}
