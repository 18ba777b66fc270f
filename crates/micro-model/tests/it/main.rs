//! The integration tests of micro-model, one module per concern, in one test binary (one link
//! instead of one per file).

mod loss_gradients;
mod synthetic_groups;
mod theorem_3_2;
mod training;
