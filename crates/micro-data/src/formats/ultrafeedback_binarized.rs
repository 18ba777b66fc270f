//! Binarised UltraFeedback (`HuggingFaceH4/ultrafeedback_binarized`,
//! `trl-lib/ultrafeedback_binarized`): `prompt`, `chosen`/`rejected` message lists whose last
//! assistant turn is the response, `score_chosen`, `score_rejected`.
//!
//! Read like [`native`](super::native) (scores become `chosen_rating`/`rejected_rating`),
//! with pairs whose scores tie skipped and counted, as MiCRo drops ties.

use super::{native, LoadCtx};
use crate::error::Result;
use crate::pair::PrefPair;

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<PrefPair>> {
    let (path, split) = (ctx.path, ctx.split);
    let mut pairs = Vec::new();
    ctx.for_each(|report, record| {
        let mut pair = native::pair_from_value(&record.value, path, record.line)?;
        if pair.chosen_rating.is_some() && pair.chosen_rating == pair.rejected_rating {
            report.skip("score ties");
            return Ok(());
        }
        if pair.id.is_none() {
            pair.id = record
                .value
                .get("prompt_id")
                .and_then(|v| v.as_str())
                .map(str::to_string);
        }
        pair.split = split.or(pair.split);
        pair.source
            .get_or_insert_with(|| "ultrafeedback_binarized".into());
        pairs.push(pair);
        Ok(())
    })?;
    Ok(pairs)
}
