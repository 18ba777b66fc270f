//! The integration tests of micro-route, one module per concern, in one test binary (one link
//! instead of one per file).

mod active_synth;
mod heads;
mod synth_adapt;
