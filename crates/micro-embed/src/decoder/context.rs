//! Putting a user's context (criterion) into the conversation, as MiCRo's code does.

use micro_data::Message;

use crate::backbone::criteria_head;
use crate::ContextMode;

/// `prompt` with `context` inserted: with [`ContextMode::Prefix`] as
/// `[criteria] {context}\n[context] {prompt}` in the last user turn (the paper's code), with
/// [`ContextMode::System`] appended to a leading system turn or as a new one in front. An empty
/// or absent context, or [`ContextMode::None`], leaves the prompt unchanged.
pub fn insert_context(prompt: &[Message], context: Option<&str>, how: ContextMode) -> Vec<Message> {
    let mut messages = prompt.to_vec();
    let Some(context) = context.filter(|c| !c.trim().is_empty()) else {
        return messages;
    };
    match how {
        ContextMode::None => {}
        ContextMode::Prefix => {
            let content = |text: &str| format!("{} {text}", criteria_head(context));
            match messages.iter_mut().rev().find(|m| m.role == "user") {
                Some(m) => m.content = content(&m.content),
                None => messages.push(Message::new("user", content(""))),
            }
        }
        ContextMode::System => match messages.first_mut() {
            Some(m) if m.role == "system" => m.content = format!("{}\n\n{context}", m.content),
            _ => messages.insert(0, Message::new("system", context)),
        },
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns() -> Vec<Message> {
        vec![
            Message::new("user", "q1"),
            Message::new("assistant", "a1"),
            Message::new("user", "q2"),
        ]
    }

    #[test]
    fn prefix_goes_into_the_last_user_turn() {
        let m = insert_context(&turns(), Some("be brief"), ContextMode::Prefix);
        assert_eq!(m[0].content, "q1");
        assert_eq!(m[2].content, "[criteria] be brief\n[context] q2");
    }

    #[test]
    fn system_is_prepended_or_merged() {
        let m = insert_context(&turns(), Some("be brief"), ContextMode::System);
        assert_eq!(m[0], Message::new("system", "be brief"));
        assert_eq!(m.len(), 4);
        let mut with_system = vec![Message::new("system", "S")];
        with_system.extend(turns());
        let m = insert_context(&with_system, Some("be brief"), ContextMode::System);
        assert_eq!(m[0].content, "S\n\nbe brief");
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn absent_or_blank_context_changes_nothing() {
        assert_eq!(insert_context(&turns(), None, ContextMode::Prefix), turns());
        assert_eq!(
            insert_context(&turns(), Some("be brief"), ContextMode::None),
            turns()
        );
        assert_eq!(
            insert_context(&turns(), Some("  "), ContextMode::System),
            turns()
        );
    }
}
