//! The integration tests of micro-eval, one module per concern, in one test binary (one link
//! instead of one per file).

mod common;
mod evaluate;
mod report;
mod sweep;
