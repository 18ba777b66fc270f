//! The model's own chat template, rendered with a Jinja engine configured like Hugging Face's
//! (`trim_blocks`, `lstrip_blocks`, loop controls, `raise_exception`, Python string methods).

use micro_data::Message;
use minijinja::{Environment, Error, ErrorKind, Value};
use serde_json::Value as Json;

use super::error::{DecoderError, Result};
use crate::folder::{ModelFolder, CHAT_TEMPLATE, TOKENIZER_CONFIG};

const NAME: &str = "chat_template";

/// Special tokens a template may reference (`bos_token`, `eos_token`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    pub bos: Option<String>,
    pub eos: Option<String>,
    pub pad: Option<String>,
    pub unk: Option<String>,
}

/// A compiled chat template plus the special tokens it is rendered with.
pub struct ChatTemplate {
    env: Environment<'static>,
    source_name: String,
    special: SpecialTokens,
}

impl ChatTemplate {
    /// The template of the checkpoint in `folder`: `override_source` if given, else the folder's
    /// own ([`ModelFolder::chat_template`]); special tokens from its tokenizer_config.json.
    pub fn from_folder(folder: &ModelFolder, override_source: Option<&str>) -> Result<Self> {
        let special = special_tokens(folder.tokenizer_config.as_ref());
        if let Some(source) = override_source {
            return Self::new(
                source.to_string(),
                "chat template given in the options",
                special,
            );
        }
        match folder.chat_template()? {
            Some(t) => Self::new(t.text, &t.path.display().to_string(), special),
            None => Err(DecoderError::config(
                &folder.dir.join(TOKENIZER_CONFIG),
                "chat_template",
                format!(
                    "no chat template: neither {} nor `chat_template` in tokenizer_config.json; \
                     pass a template explicitly",
                    folder.dir.join(CHAT_TEMPLATE).display()
                ),
            )),
        }
    }

    /// Compiles `source`; `source_name` names it in errors.
    pub fn new(source: String, source_name: &str, special: SpecialTokens) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned(NAME, source)
            .map_err(|e| DecoderError::Template {
                source_name: source_name.to_string(),
                message: describe(&e),
            })?;
        Ok(ChatTemplate {
            env,
            source_name: source_name.to_string(),
            special,
        })
    }

    /// Renders `messages`; with `add_generation_prompt` the template appends the header that
    /// opens the assistant's turn.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let err = |e: Error| DecoderError::Template {
            source_name: self.source_name.clone(),
            message: describe(&e),
        };
        let template = self.env.get_template(NAME).map_err(err)?;
        // Hugging Face passes `tools` and `documents` as None: templates test `is not none`.
        let mut ctx = vec![
            ("messages", Value::from_serialize(messages)),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
            ("tools", Value::from(())),
            ("documents", Value::from(())),
        ];
        let tokens = [
            ("bos_token", &self.special.bos),
            ("eos_token", &self.special.eos),
            ("pad_token", &self.special.pad),
            ("unk_token", &self.special.unk),
        ];
        for (name, token) in tokens {
            if let Some(t) = token {
                ctx.push((name, Value::from(t.as_str())));
            }
        }
        let ctx: std::collections::BTreeMap<&str, Value> = ctx.into_iter().collect();
        template.render(ctx).map_err(err)
    }
}

fn raise_exception(message: String) -> std::result::Result<Value, Error> {
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("the template raised: {message}"),
    ))
}

/// The error and its causes on one line.
fn describe(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// A special token written as a string or as an `AddedToken` object with `content`.
fn token(config: Option<&Json>, name: &str) -> Option<String> {
    match config?.get(name)? {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content").and_then(Json::as_str).map(str::to_string),
        _ => None,
    }
}

fn special_tokens(config: Option<&Json>) -> SpecialTokens {
    SpecialTokens {
        bos: token(config, "bos_token"),
        eos: token(config, "eos_token"),
        pad: token(config, "pad_token"),
        unk: token(config, "unk_token"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn special() -> SpecialTokens {
        SpecialTokens {
            bos: Some("<s>".into()),
            eos: Some("</s>".into()),
            ..Default::default()
        }
    }

    /// Expected strings come from Python's jinja2 3.1 with `trim_blocks` and `lstrip_blocks`.
    #[test]
    fn blocks_are_trimmed_like_hugging_face() {
        let source = "{{ bos_token }}\n{% for m in messages %}\n    {% if m.role %}{{ m.role }}: \
                      {{ m.content | trim }}|{% endif %}\n{% endfor %}\n\
                      {% if add_generation_prompt %}assistant:{% endif %}";
        let t = ChatTemplate::new(source.into(), "test", special()).unwrap();
        let msgs = [Message::new("user", "  hi  ")];
        assert_eq!(t.render(&msgs, true).unwrap(), "<s>\nuser: hi|assistant:");
        let msgs = [
            Message::new("user", "  hi  "),
            Message::new("assistant", "x"),
        ];
        assert_eq!(
            t.render(&msgs, false).unwrap(),
            "<s>\nuser: hi|assistant: x|"
        );
    }

    #[test]
    fn raise_exception_becomes_a_template_error() {
        let source = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('roles must alternate') }}{% endif %}ok";
        let t = ChatTemplate::new(source.into(), "test", special()).unwrap();
        assert_eq!(t.render(&[Message::new("user", "x")], false).unwrap(), "ok");
        let e = t
            .render(&[Message::new("assistant", "x")], false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("roles must alternate"), "{e}");
    }

    #[test]
    fn python_string_methods_and_loop_controls_work() {
        let source = "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}\
                      {{ m.content.strip().upper() }}{% endfor %}";
        let t = ChatTemplate::new(source.into(), "test", special()).unwrap();
        let msgs = [Message::new("user", " a "), Message::new("user", "b")];
        assert_eq!(t.render(&msgs, false).unwrap(), "A");
    }

    #[test]
    fn template_list_and_added_token_objects_are_read() {
        let cfg: Json = serde_json::from_str(
            r#"{"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
                "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}"#,
        )
        .unwrap();
        assert_eq!(special_tokens(Some(&cfg)), special());
        assert_eq!(
            crate::folder::template_text(
                cfg.get("chat_template").unwrap(),
                std::path::Path::new("x")
            )
            .unwrap(),
            "D"
        );
    }

    #[test]
    fn tools_are_none_as_hugging_face_passes_them() {
        let source = "{% if tools is not none %}T{% else %}N{% endif %}";
        let t = ChatTemplate::new(source.into(), "test", special()).unwrap();
        assert_eq!(t.render(&[], false).unwrap(), "N");
    }

    #[test]
    fn syntax_errors_name_the_source() {
        let e = ChatTemplate::new("{% for %}".into(), "broken.jinja", special())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("broken.jinja"), "{e}");
    }
}
