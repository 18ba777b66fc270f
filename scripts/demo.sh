#!/usr/bin/env bash
# The main job (README's first command): fetch the offline assets, build micro, and run
# `micro demo` end to end on the built-in multi-user data. Extra arguments go to `micro demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-system
cargo build --release --bin micro
exec ./target/release/micro demo "$@"
