//! The integration tests of micro-cli, one module per concern, in one test binary (one link
//! instead of one per file).

mod common;
mod embed_shards;
mod features;
mod rl_trainers;
mod serve_e2e;
mod serve_hardening;
