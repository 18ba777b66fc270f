//! Pairwise sets in Prometheus' absolute-grading template (prometheus-eval's
//! `hhh_alignment_eval.json`: BIG-bench HHH alignment, 221 pairs): each row holds
//! `chosen_instruction` and `rejected_instruction`, two filled-in grading prompts that wrap the
//! same instruction and two responses, and a category in `source` (`honest`, `helpful`,
//! `harmless`, `other`).
//!
//! From each template the loader takes the text between `###The instruction to evaluate:` and
//! `###Response to evaluate:` (the prompt), between `###Response to evaluate:` and
//! `###Score Rubrics:` (the response), and between `###Score Rubrics:` and the next `###`
//! section (the rubric). The attribute is the category; the context is the rubric's criterion,
//! the question in its leading `[...]` (the whole rubric when it has no brackets), which is the
//! same for every pair of a category. Instructions that hold an HH-style dialogue
//! (`…\n\nAssistant: …\n\nHuman: …`) become message lists. A row whose two templates wrap
//! different instructions or rubrics is an error; one whose two responses are identical is
//! skipped and counted.

use super::hh::parse_turns;
use super::LoadCtx;
use crate::error::Result;
use crate::fields::Row;
use crate::pair::{PrefPair, Prompt};

pub const INSTRUCTION: &str = "###The instruction to evaluate:";
pub const RESPONSE: &str = "###Response to evaluate:";
pub const RUBRIC: &str = "###Score Rubrics:";
const EXPECTS: &str = "Prometheus pair rows need chosen_instruction and rejected_instruction \
     (filled-in grading templates) and a category in `source`";

/// The three parts of one filled-in template.
#[derive(Debug, PartialEq, Eq)]
pub struct Graded<'a> {
    pub instruction: &'a str,
    pub response: &'a str,
    pub rubric: &'a str,
}

/// Cuts a filled-in template into its parts; `Err` names the section that is missing.
pub fn parse_template(text: &str) -> std::result::Result<Graded<'_>, String> {
    let after = |marker: &str, from: usize| {
        text[from..]
            .find(marker)
            .map(|at| from + at + marker.len())
            .ok_or_else(|| format!("no `{marker}` section in the template"))
    };
    let i = after(INSTRUCTION, 0)?;
    let r = after(RESPONSE, i)?;
    let s = after(RUBRIC, r)?;
    let rubric_end = text[s..].find("\n###").map_or(text.len(), |e| s + e);
    Ok(Graded {
        instruction: text[i..r - RESPONSE.len()].trim(),
        response: text[r..s - RUBRIC.len()].trim(),
        rubric: text[s..rubric_end].trim(),
    })
}

/// The criterion of a rubric: the text of its leading `[...]`, else the whole rubric.
pub fn criterion(rubric: &str) -> &str {
    rubric
        .strip_prefix('[')
        .and_then(|r| r.find(']').map(|end| r[..end].trim()))
        .filter(|c| !c.is_empty())
        .unwrap_or(rubric)
}

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<PrefPair>> {
    let (path, split) = (ctx.path, ctx.split);
    let stem = super::file_stem(path);
    let mut pairs = Vec::new();
    ctx.for_each(|report, record| {
        let row = Row::new(&record.value, path, record.line, EXPECTS)?;
        let parse = |field: &str| {
            let text = row.str(field)?;
            parse_template(text).map_err(|e| {
                row.err(
                    field,
                    format!("{e}; expected Prometheus' template ({INSTRUCTION} … {RESPONSE} … {RUBRIC} …)"),
                )
            })
        };
        let (chosen, rejected) = (parse("chosen_instruction")?, parse("rejected_instruction")?);
        if chosen.instruction != rejected.instruction || chosen.rubric != rejected.rubric {
            return Err(row.err(
                "rejected_instruction",
                "wraps another instruction or rubric than `chosen_instruction`; both must grade \
                 two responses to the same instruction under the same rubric",
            ));
        }
        if chosen.response == rejected.response {
            report.skip("rows with identical responses");
            return Ok(());
        }
        let category = row.str("source")?;
        pairs.push(PrefPair {
            id: Some(format!("{stem}:{}", record.line)),
            prompt: prompt_of(chosen.instruction),
            chosen: chosen.response.to_string(),
            rejected: rejected.response.to_string(),
            context: Some(criterion(chosen.rubric).to_string()),
            attribute: Some(category.to_string()),
            split,
            source: Some("prometheus".into()),
            ..Default::default()
        });
        Ok(())
    })?;
    Ok(pairs)
}

/// A single question stays text; an HH-style dialogue becomes its turns.
fn prompt_of(instruction: &str) -> Prompt {
    let turns = parse_turns(instruction);
    match turns.as_slice() {
        [only] => Prompt::Text(only.content.clone()),
        [] => Prompt::Text(instruction.to_string()),
        _ => Prompt::Messages(turns),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parts_and_criterion() {
        let t = "###Task Description:\nGrade it.\n\n###The instruction to evaluate:\nWhat is 2+2?\n\n\
                 ###Response to evaluate:\nFour.\n\n###Score Rubrics:\n[Is it right?]\nScore 1: no\n\n\
                 ###Feedback: ";
        let g = parse_template(t).unwrap();
        assert_eq!(
            g,
            Graded {
                instruction: "What is 2+2?",
                response: "Four.",
                rubric: "[Is it right?]\nScore 1: no"
            }
        );
        assert_eq!(criterion(g.rubric), "Is it right?");
        assert_eq!(criterion("Be kind."), "Be kind.");
        let e = parse_template("###Response to evaluate:\nx").unwrap_err();
        assert!(e.contains(INSTRUCTION), "{e}");
        // Sections out of order are missing, not misread.
        let swapped =
            "###Response to evaluate:\nA\n###The instruction to evaluate:\nQ\n###Score Rubrics:\nR";
        assert!(parse_template(swapped).unwrap_err().contains(RESPONSE));
    }

    #[test]
    fn dialogue_instructions_become_turns() {
        let p = prompt_of("I need help.  \n\nAssistant:  With what?\n\nHuman:  My project.");
        let Prompt::Messages(turns) = p else {
            panic!("expected turns")
        };
        assert_eq!(turns.len(), 3);
        assert_eq!(turns[2].content, "My project.");
        assert_eq!(prompt_of("Just one."), Prompt::Text("Just one.".into()));
    }
}
