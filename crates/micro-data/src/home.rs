//! Where the project's offline assets live: `$MICRO_HOME`, by default `~/.cache/micro`
//! (`scripts/fetch-assets.sh` puts models under `models/` and corpora under `corpus/`).

use std::path::PathBuf;

/// `$MICRO_HOME`, else `$HOME/.cache/micro`; `None` when neither is set.
pub fn micro_home() -> Option<PathBuf> {
    let set = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    set("MICRO_HOME")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|h| PathBuf::from(h).join(".cache").join("micro")))
}
