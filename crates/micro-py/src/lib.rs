//! micro in Python: the library crates as the native module `micro._native`, which the Python
//! package `micro` (python/micro) re-exports. PyO3 on the stable ABI (one wheel for CPython
//! 3.9 and later), built and installed by maturin: `pip install ./python`.
//!
//! What it wraps, one path each, as the `micro` commands run it:
//! - [`cache`]: `micro.Cache`, micro-cache's embedding cache, from a folder or numpy arrays;
//! - [`train`]: `micro.train`, `micro train` (the held-out search, `--heads auto`, the
//!   cross-fit) returning a `micro.Model`;
//! - [`model`]: `micro.Model`, the model folder, scoring (each head's reward, the mixture
//!   weights, the personalised reward), per-user Hedge updates and the next question;
//! - [`route`]: `micro.adapt` (`micro adapt`) and `micro.UserState`;
//! - [`eval`]: `micro.evaluate` (`micro eval --json` as a dict);
//! - [`embed`]: `micro.Backbone`, micro-embed's backbones into numpy or a cache folder.
//!
//! Long work runs with the GIL released and stops on Ctrl-C ([`job`]); errors become Python
//! exceptions with the library's messages ([`error`]); arrays cross without a copy where
//! numpy's layout allows ([`arrays`]).

mod arrays;
mod cache;
mod embed;
mod error;
mod eval;
mod job;
mod model;
mod route;
mod train;

use pyo3::prelude::*;

// The allocator `micro` runs with, so that Stage 1 through Python keeps the CLI's speed (polars'
// module brings its own allocator too). Arrays handed to numpy are freed by Rust's drop, here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<cache::Cache>()?;
    m.add_class::<model::Model>()?;
    m.add_class::<route::UserState>()?;
    m.add_class::<embed::Backbone>()?;
    m.add_function(wrap_pyfunction!(train::train, m)?)?;
    m.add_function(wrap_pyfunction!(route::adapt, m)?)?;
    m.add_function(wrap_pyfunction!(eval::evaluate, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
