//! The release binary is built from the libraries' own surfaces: its dependencies turn on no
//! test helper (a feature named `test-util` or `testing`), only the `bench` bodies `micro bench`
//! runs and the `clap` flags.

/// The `[dependencies]` table of micro-cli's Cargo.toml (dev-dependencies may use test helpers).
fn dependencies() -> String {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let start = manifest
        .find("[dependencies]")
        .expect("micro-cli has a [dependencies] table");
    let rest = &manifest[start + "[dependencies]".len()..];
    let end = rest.find("\n[").unwrap_or(rest.len());
    rest[..end].to_string()
}

#[test]
fn the_binary_turns_on_no_test_helper() {
    let deps = dependencies();
    assert!(
        deps.contains("micro-serve"),
        "the table read is the binary's dependencies"
    );
    for line in deps.lines().filter(|l| !l.trim_start().starts_with('#')) {
        assert!(
            !line.contains("test-util") && !line.contains("\"testing\""),
            "a test helper in the binary: {line}"
        );
    }
}
