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
