//! The integration tests of micro-embed, one module per concern, in one test binary (one link
//! instead of one per file).

mod decoder_backbone;
mod decoder_batch;
mod decoder_errors;
mod decoder_golden;
mod decoder_random;
mod minilm;
mod pipeline;
