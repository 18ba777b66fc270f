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
pub mod synth;
pub mod train;

/// A progress bar of `len` steps drawn with the indicatif `template` (the default bar if the
/// template does not parse).
pub fn bar(len: u64, template: &str) -> indicatif::ProgressBar {
    let style = indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    indicatif::ProgressBar::new(len).with_style(style)
}
