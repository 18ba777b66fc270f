#!/usr/bin/env bash
# The test command (README's second command; .ci/run calls it): set up what the tests need,
# start PostgreSQL on loopback for the server tests, then run every test in the release profile
# (the same profile as the binary, so the stack compiles once).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${MICRO_TEST_POSTGRES_URL:-}" ] && [ "${MICRO_SKIP_POSTGRES_TESTS:-0}" != 1 ]; then
  MICRO_TEST_POSTGRES_URL="$(bash scripts/start-postgres.sh)"
  export MICRO_TEST_POSTGRES_URL
fi
cargo test --release --workspace "$@"
