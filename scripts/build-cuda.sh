#!/usr/bin/env bash
# Builds `micro` with candle's CUDA support, on any x86-64 Linux machine (a GPU is not needed to
# build), and prints the binary's path on stdout (logs go to stderr).
#
#   bash scripts/build-cuda.sh                      # for compute capability 9.0 (H100, H200)
#   CUDA_COMPUTE_CAP=80 bash scripts/build-cuda.sh  # A100; 89 for L4/L40/RTX 40xx, ...
#
# What it does, and why:
#   1. Downloads NVIDIA's compiler and headers from PyPI (nvidia-cuda-nvcc, -crt, -runtime, -cccl
#      and nvidia-nvvm, all pinned to CUDA $CUDA_RELEASE) into $OUT/toolkit. A CUDA 13.x compiler
#      writes PTX that needs a driver of at least that release: 13.0 runs on the 580 drivers.
#   2. Builds against a copy of candle-core whose cudarc dependency loads the CUDA libraries when
#      a device is opened (cudarc's `dynamic-loading`) instead of linking them (`dynamic-linking`,
#      candle's choice). Linking would need the driver's libcuda.so at build time (PyPI has no stub)
#      and would stop the binary from even starting on a machine without a driver; loading lets
#      `micro` run everywhere and say clearly, with exit code 2, when no driver or device is there.
#   3. Builds a copy of the workspace in $OUT/src with its own target folder ($OUT), so that
#      neither the checkout's Cargo.lock nor its CPU build (target/release) is touched.
#   4. Puts libcudart.so.13 (which candle's kernels link) beside the binary, found through
#      RPATH=$ORIGIN, so the binary can be copied to a GPU machine as a folder.
# At run time on the GPU machine, cuBLAS, cuRAND and NVRTC of CUDA 13 must be on LD_LIBRARY_PATH
# (PyTorch's nvidia-* wheels carry them; scripts/device-check.sh finds them). See docs/gpu.md.
#
# Not part of CI: the first build compiles the dependency stack again plus candle's CUDA kernels
# with nvcc and ptxas, over two hours on a shared 2-core machine (docs/gpu.md); later builds
# recompile micro's crates only. Rerun it on changes to the device code.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${MICRO_CUDA_TARGET:-$ROOT/target/cuda}
CAP=${CUDA_COMPUTE_CAP:-90}
CUDA_RELEASE=13.0
# One release throughout: nvcc, its front end (crt), its back end (nvvm), runtime and headers.
WHEELS=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
        nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85)
CANDLE_VERSION=0.11.1

say() { echo "[build-cuda] $*" >&2; }
die() { say "error: $*"; exit 1; }

need() { # command debian-package
  command -v "$1" >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 || die "$1 is required (Debian package $2)"
  say "installing $2 (for $1)"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get install -y -q "$2" >/dev/null 2>&1 \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "$2" >/dev/null; }
}

fetch_toolkit() {
  local stamp="$OUT/toolkit/.wheels"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${WHEELS[*]}" ]; then
    return 0
  fi
  need unzip unzip
  need g++ g++
  local tmp; tmp=$(mktemp -d)
  say "downloading the CUDA $CUDA_RELEASE compiler and headers from PyPI: ${WHEELS[*]}"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$tmp" "${WHEELS[@]}" || die "pip download failed (is PyPI reachable? python3 -m pip installed?)"
  rm -rf "$OUT/toolkit"
  mkdir -p "$OUT/toolkit"
  for whl in "$tmp"/*.whl; do unzip -oq "$whl" -d "$OUT/toolkit"; done
  rm -rf "$tmp"
  # The link step wants an unversioned name; the wheel has only the versioned library.
  ln -sf libcudart.so.13 "$OUT/toolkit/nvidia/cu13/lib/libcudart.so"
  echo "${WHEELS[*]}" >"$stamp"
}

# candle-core $CANDLE_VERSION with cudarc's `dynamic-linking` feature swapped for `dynamic-loading`.
patched_candle_core() {
  local dst="$OUT/patched/candle-core"
  local src
  src=$(cargo metadata --format-version 1 --manifest-path "$ROOT/Cargo.toml" 2>/dev/null | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "candle-core" and p["version"] == sys.argv[1]:
        print(p["manifest_path"].rsplit("/", 1)[0])' "$CANDLE_VERSION")
  [ -n "$src" ] || die "candle-core $CANDLE_VERSION is not a dependency of the workspace any more: update CANDLE_VERSION"
  rm -rf "$dst"
  mkdir -p "$(dirname "$dst")"
  cp -r "$src" "$dst"
  chmod -R u+w "$dst"
  local n
  n=$(grep -c '"dynamic-linking",' "$dst/Cargo.toml" || true)
  [ "$n" = 1 ] || die "expected one \"dynamic-linking\" feature in $src/Cargo.toml, found $n: re-check the patch"
  sed -i 's/"dynamic-linking",/"dynamic-loading",/' "$dst/Cargo.toml"
  echo "$dst"
}

copy_workspace() {
  mkdir -p "$OUT/src"
  # Only what the build reads (scripts: micro-demo embeds fetch-assets.sh); --delete keeps removed files from lingering in the copy.
  need rsync rsync
  rsync -a --delete --exclude target Cargo.toml Cargo.lock crates docs scripts "$OUT/src/"
}

main() {
  need python3 python3
  need cargo cargo
  mkdir -p "$OUT"
  fetch_toolkit
  local cuda="$OUT/toolkit/nvidia/cu13"
  export PATH="$cuda/bin:$PATH" CUDA_HOME="$cuda" CUDA_PATH="$cuda" CUDA_COMPUTE_CAP="$CAP"
  nvcc --version | grep -q "release $CUDA_RELEASE" || die "nvcc in $cuda/bin is not CUDA $CUDA_RELEASE"
  local candle; candle=$(patched_candle_core)
  copy_workspace
  say "building micro with --features cuda for compute capability $CAP into $OUT (the first build takes a while)"
  (
    cd "$OUT/src"
    RUSTFLAGS="${RUSTFLAGS:-} -L native=$cuda/lib -C link-arg=-Wl,-rpath,\$ORIGIN" \
      cargo build --release -p micro-cli --features micro-cli/cuda --target-dir "$OUT" \
      --config "patch.crates-io.candle-core.path=\"$candle\"" >&2
  )
  cp "$cuda/lib/libcudart.so.13" "$OUT/release/"
  say "built; on a GPU machine put CUDA 13 cuBLAS, cuRAND and NVRTC on LD_LIBRARY_PATH (docs/gpu.md)"
  echo "$OUT/release/micro"
}

main "$@"
