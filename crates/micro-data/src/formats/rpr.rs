//! `microsoft/rpr` (Reasonable Preference Reversal): `prompt`, `response_a`, `response_b`,
//! `criteria_x`, `category_x`, `criteria_y`, `category_y`.
//!
//! Each row gives two opposite pairs: `response_a` ≻ `response_b` under `criteria_x`
//! (attribute `category_x`), and `response_b` ≻ `response_a` under `criteria_y`
//! (attribute `category_y`). The criterion is the pair's context.

use super::LoadCtx;
use crate::error::Result;
use crate::fields::Row;
use crate::pair::{PrefPair, Prompt};

const EXPECTS: &str =
    "RPR rows need prompt, response_a, response_b, criteria_x, category_x, criteria_y, category_y";

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<PrefPair>> {
    let (path, split) = (ctx.path, ctx.split);
    let stem = super::file_stem(path);
    let mut pairs = Vec::new();
    ctx.for_each(|report, record| {
        let row = Row::new(&record.value, path, record.line, EXPECTS)?;
        let prompt = row.str("prompt")?;
        let (a, b) = (row.str("response_a")?, row.str("response_b")?);
        if a == b {
            report.skip("rows with identical responses");
            return Ok(());
        }
        for (side, chosen, rejected) in [("x", a, b), ("y", b, a)] {
            pairs.push(PrefPair {
                id: Some(format!("{stem}:{}:{side}", record.line)),
                prompt: Prompt::Text(prompt.to_string()),
                chosen: chosen.to_string(),
                rejected: rejected.to_string(),
                context: Some(row.str(&format!("criteria_{side}"))?.to_string()),
                attribute: Some(row.str(&format!("category_{side}"))?.to_string()),
                split,
                source: Some("rpr".into()),
                ..Default::default()
            });
        }
        Ok(())
    })?;
    Ok(pairs)
}
