#!/usr/bin/env bash
# The Python package's tests (python/tests), as a clean machine runs them: a venv of its own
# ($MICRO_HOME/python-venv, reused when present) with numpy and pytest from PyPI, the package
# installed with the README's command (`pip install ./python`: maturin from PyPI builds
# crates/micro-py in release), then pytest. scripts/test.sh runs it after the cargo tests: the
# tests compare with the `micro` binary those built (target/release/micro, or MICRO_BIN), and
# the build shares the workspace's target dir, so the library crates are not compiled twice.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MICRO_HOME:-$HOME/.cache/micro}/python-venv"
pip() { "$venv/bin/python" -m pip --quiet --disable-pip-version-check "$@"; }
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip install "numpy>=1.21" pytest
pip install --force-reinstall --no-deps ./python
"$venv/bin/python" -m pytest -q python/tests
