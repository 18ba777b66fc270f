//! `PKU-Alignment/PKU-SafeRLHF`: `prompt`, `response_0`, `response_1`, `better_response_id`,
//! `safer_response_id`, `is_response_0_safe`, `is_response_1_safe`.
//!
//! Each row gives a `harmlessness` pair (chosen = `safer_response_id`) and a `helpfulness`
//! pair (chosen = `better_response_id`); [`PkuSelect`](super::PkuSelect) keeps one of them.
//! The context is the Table 6 sentence for safety, resp. helpfulness. With
//! `pku_unsafe_only`, harmlessness pairs whose two responses are both safe are skipped.

use super::{LoadCtx, PkuSelect};
use crate::error::Result;
use crate::fields::Row;
use crate::formats::helpsteer2::context_for;
use crate::pair::{PrefPair, Prompt};

const EXPECTS: &str =
    "PKU-SafeRLHF rows need prompt, response_0, response_1, better_response_id, safer_response_id";

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<PrefPair>> {
    let (path, split, select, unsafe_only) = (
        ctx.path,
        ctx.split,
        ctx.options.pku,
        ctx.options.pku_unsafe_only,
    );
    let stem = super::file_stem(path);
    let mut pairs = Vec::new();
    ctx.for_each(|report, record| {
        let row = Row::new(&record.value, path, record.line, EXPECTS)?;
        let prompt = row.str("prompt")?;
        let responses = [row.str("response_0")?, row.str("response_1")?];
        if responses[0] == responses[1] {
            report.skip("rows with identical responses");
            return Ok(());
        }
        let mut wanted = Vec::new();
        if select != PkuSelect::Helpfulness {
            let both_safe =
                unsafe_only && row.bool("is_response_0_safe")? && row.bool("is_response_1_safe")?;
            if both_safe {
                report.skip("harmlessness pairs with both responses safe");
            } else {
                wanted.push(("harmlessness", "safety", row.index01("safer_response_id")?));
            }
        }
        if select != PkuSelect::Harmlessness {
            wanted.push((
                "helpfulness",
                "helpfulness",
                row.index01("better_response_id")?,
            ));
        }
        for (attribute, context, winner) in wanted {
            pairs.push(PrefPair {
                id: Some(format!("{stem}:{}:{attribute}", record.line)),
                prompt: Prompt::Text(prompt.to_string()),
                chosen: responses[winner].to_string(),
                rejected: responses[1 - winner].to_string(),
                context: context_for(context).map(str::to_string),
                attribute: Some(attribute.to_string()),
                split,
                source: Some("pku-saferlhf".into()),
                ..Default::default()
            });
        }
        Ok(())
    })?;
    Ok(pairs)
}
