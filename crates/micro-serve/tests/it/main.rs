//! The integration tests of micro-serve, one module per concern, in one test binary (one link
//! instead of one per file).

mod api;
mod common;
mod hardening;
mod layout;
mod next_question;
mod next_question_users;
mod question;
mod rl;
mod text;
