//! `micro.evaluate`: `micro eval` of one model on a cache, its JSON report as a dict.

use crate::arrays::to_py;
use crate::cache::Cache;
use crate::error::OrRaise;
use crate::model::Model;
use micro_eval::{evaluate_with, EvalOptions, Gating, SplitSel};
use pyo3::prelude::*;

/// Evaluates `model` on the `split` pairs of `cache` (`"test"`, `"train"` or `"all"`) as
/// `micro eval --model ... --cache ... --json` does, and returns its JSON as a dict: accuracy
/// and log-loss per attribute and their mean, each head's accuracy, the mean weights. Users the
/// model adapted by id are scored with their own weights. `label` names the report (default:
/// the model's method). A model trained on other vectors (width, backbone, recipe) is refused.
#[pyfunction]
#[pyo3(signature = (model, cache, *, split="test", label=None))]
pub fn evaluate<'py>(
    py: Python<'py>,
    model: &Model,
    cache: &Cache,
    split: &str,
    label: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let opts = EvalOptions {
        split: split.parse::<SplitSel>().or_raise()?,
        label,
    };
    let report = py.detach(|| {
        evaluate_with(
            &model.inner,
            &cache.inner,
            &opts,
            &Gating::Users(&model.users),
        )
    });
    to_py(py, &report.or_raise()?)
}
