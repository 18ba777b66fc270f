//! The integration tests of micro-data, one module per concern, in one test binary (one link
//! instead of one per file).

mod builtin;
mod common;
mod errors;
mod hh_users;
mod human_labels;
mod loaders_files;
mod loaders_pairs;
mod loaders_ratings;
