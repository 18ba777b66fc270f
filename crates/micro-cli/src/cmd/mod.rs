//! One module per subcommand (or family of subcommands).

pub mod adapt;
pub mod bench;
pub mod data;
pub mod demo;
pub mod embed;
pub mod eval;
pub mod heads;
pub mod report;
pub mod serve;
pub mod study;
pub mod synth;
pub mod train;
