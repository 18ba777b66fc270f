//! Helpers shared by the loader tests: fixture paths and pair lookups.
#![allow(dead_code)]

use micro_data::PrefPair;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn per_attribute(pairs: &[PrefPair]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for p in pairs {
        *m.entry(p.group().to_string()).or_default() += 1;
    }
    m
}

pub fn find<'a>(pairs: &'a [PrefPair], attribute: &str, chosen_prefix: &str) -> &'a PrefPair {
    pairs
        .iter()
        .find(|p| p.group() == attribute && p.chosen.starts_with(chosen_prefix))
        .unwrap_or_else(|| panic!("no {attribute} pair choosing {chosen_prefix:?}"))
}

/// A file of the shared folder cloned beside the repository (`../shared/data`, see
/// docs/data.md), or `None` when MICRO_SKIP_SHARED_DATA_TESTS=1 says to skip the tests that
/// read it. A missing file fails the test, as missing PostgreSQL or chromium do.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("MICRO_SKIP_SHARED_DATA_TESTS").as_deref() == Ok("1") {
        eprintln!(
            "MICRO_SKIP_SHARED_DATA_TESTS=1: skipping the test of {}",
            path.display()
        );
        return None;
    }
    panic!(
        "{} is absent: clone the shared folder beside the repository (../shared), or set MICRO_SKIP_SHARED_DATA_TESTS=1",
        path.display()
    );
}
