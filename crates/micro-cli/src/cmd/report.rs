//! `micro report`: an HTML page with SVG figures from evaluation results.

use anyhow::Context;
use micro_eval::{write_report, Results};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// A results.json (from `micro demo` or `micro eval --json`), one model's report, or a
    /// folder holding such files.
    #[arg(long, value_name = "DIR_OR_JSON")]
    pub results: PathBuf,
    /// Folder to write index.html and the figures into.
    #[arg(short = 'o', long = "out", value_name = "REPORT_DIR")]
    pub out: PathBuf,
    /// Page title (default: the one in the results).
    #[arg(long)]
    pub title: Option<String>,
}

pub fn run(a: ReportArgs) -> anyhow::Result<()> {
    let mut results = Results::load(&a.results)
        .with_context(|| format!("reading results from {}", a.results.display()))?;
    if let Some(t) = a.title {
        results.title = t;
    }
    let files = write_report(&results, &a.out)
        .with_context(|| format!("writing the report to {}", a.out.display()))?;
    println!(
        "wrote {} with {} figures",
        files.index.display(),
        files.figures.len()
    );
    Ok(())
}
