#!/usr/bin/env bash
# The test command (README's second command; .ci/run calls it): check the formatting and the
# lints first (cheap, and a failure there needs no test run), set up what the tests need, start
# PostgreSQL on loopback for the server tests, then run every test in the release profile (the
# same profile as the binary, so the stack compiles once; clippy runs in it too, so build
# scripts and proc-macros are shared with the test build), and last the Python package's tests
# (scripts/test-python.sh: it builds the package on the crates the cargo tests compiled).
#
# Tests that need something from outside fail when it is missing unless told to skip it:
# MICRO_SKIP_POSTGRES_TESTS=1, MICRO_SKIP_BROWSER_TESTS=1 (chromium), MICRO_SKIP_PYTHON_TESTS=1
# (the RL-trainer clients and the Python package), MICRO_SKIP_SHARED_DATA_TESTS=1 (../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --release --workspace --all-targets -- -D warnings
bash scripts/setup.sh
if [ -z "${MICRO_TEST_POSTGRES_URL:-}" ] && [ "${MICRO_SKIP_POSTGRES_TESTS:-0}" != 1 ]; then
  MICRO_TEST_POSTGRES_URL="$(bash scripts/start-postgres.sh)"
  export MICRO_TEST_POSTGRES_URL
fi
cargo test --release --workspace "$@"
if [ "${MICRO_SKIP_PYTHON_TESTS:-0}" != 1 ]; then
  bash scripts/test-python.sh
fi
