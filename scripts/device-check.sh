#!/usr/bin/env bash
# The GPU check of issue 13, in two halves (docs/gpu.md):
#
#   bash scripts/device-check.sh prepare     # here, on the build machine (no GPU needed)
#   bash scripts/device-check.sh run         # on the GPU machine, from the repo root
#
# `prepare` builds micro with CUDA (scripts/build-cuda.sh) and gathers what the GPU machine needs
# into .device-check/ (ignored by git; about 22 MB): the binary (stripped and gzipped: 70 MB
# unpacked, mostly candle's PTX), libcudart, the golden tiny models and the PyTorch peer script.
# Carry that folder to the GPU machine with the repo.
#
# `run` needs an NVIDIA driver for CUDA >= 13.0, python3 with torch and transformers, and writes
# its logs to $OUT (default .device-check/out). It prints, in order:
#   1. the GPU, its driver and the driver's CUDA version (the binary's PTX needs CUDA 13.0);
#   2. agreement of micro's GPU hidden states with its CPU f32 ones on the golden tiny Llama and
#      Qwen2 reward models, in f32 and in bf16;
#   3. tokens/s of micro and of transformers (bf16, same token ids, same batches) on a
#      random-weight Llama of GRM-Llama3.2-3B's shape (hidden 3072, 28 layers, 24 heads, 8 KV
#      heads, intermediate 8192), and their ratio;
#   4. the reward server's text scoring on the GPU (issue 12): `micro bench serve --text
#      --device cuda` with a random-weight encoder of all-MiniLM-L6-v2's shape, texts/s and
#      p50/p99 at 1, 8 and 32 single-query clients without and with batching, and the ratios.
# Sized for a few minutes of device time; TEXTS and BATCHES change the throughput run,
# SERVE_REQUESTS the serving one. STEPS (default "agreement throughput serving") picks steps.
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=${DEVICE_KIT:-.device-check}
say() { echo "[device-check] $*" >&2; }
die() { say "error: $*"; exit 1; }

prepare() {
  local bin; bin=$(bash scripts/build-cuda.sh)
  rm -rf "$KIT"
  mkdir -p "$KIT/bin" "$KIT/golden"
  cp "$(dirname "$bin")/libcudart.so.13" "$KIT/bin/"
  strip -o "$KIT/bin/micro" "$bin"
  gzip -6 "$KIT/bin/micro"
  for m in tiny-llama-rm tiny-qwen2-rm; do cp -r "../shared/golden/$m" "$KIT/golden/"; done
  cp scripts/decoder-peer-bench.py scripts/random-encoder.py "$KIT/"
  local minilm=${MICRO_MINILM_DIR:-${MICRO_HOME:-$HOME/.cache/micro}/models/all-MiniLM-L6-v2}
  [ -f "$minilm/model.safetensors" ] || bash scripts/fetch-assets.sh minilm >&2
  python3 scripts/random-encoder.py shape "$minilm" "$KIT/minilm-shape" >&2
  local exclude; exclude=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$exclude")"
  grep -qx "/$KIT/" "$exclude" 2>/dev/null || echo "/$KIT/" >>"$exclude"
  say "ready: $KIT ($(du -sh "$KIT" | cut -f1)); on the GPU machine run: bash scripts/device-check.sh run (carry $KIT)"
}

# Folders of the CUDA 13 libraries that micro loads at run time (PyTorch's nvidia-* wheels).
cuda_library_path() {
  python3 - <<'EOF'
import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()]
want = ["libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10", "libnvrtc.so.13"]
dirs = []
for name in want:
    hits = [h for r in roots for h in glob.glob(os.path.join(r, "nvidia", "**", name), recursive=True)]
    if not hits:
        sys.exit(f"{name} not found under {roots}: pip install nvidia-cublas nvidia-curand nvidia-cuda-nvrtc (CUDA 13)")
    d = os.path.dirname(hits[0])
    if d not in dirs:
        dirs.append(d)
print(":".join(dirs))
EOF
}

driver() {
  echo "== GPU and driver"
  nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv
  local cuda; cuda=$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1)
  echo "driver's CUDA version: ${cuda:-unknown} (micro's kernels are built with CUDA 13.0)"
  case "$cuda" in 1[3-9].*|[2-9][0-9].*) ;; *) die "this driver supports CUDA ${cuda:-?}: micro's CUDA 13.0 build needs a driver >= 580";; esac
}

agreement() {
  echo "== micro on the GPU vs micro on the CPU (f32), golden tiny models"
  for m in tiny-llama-rm tiny-qwen2-rm; do
    for p in f32 bf16; do
      echo "-- $m, $p"
      "$MICRO" bench embed --model "$KIT/golden/$m" --device cuda --precision "$p" --compare-cpu \
        --texts 16 --lengths 30,120 --batch-size 8
    done
  done
}

throughput() {
  local model=/tmp/grm-llama3.2-3b-random
  echo "== throughput: random-weight Llama of GRM-Llama3.2-3B's shape, bf16, $TEXTS texts of ~257 tokens"
  [ -f "$model/model.safetensors.index.json" ] || [ -f "$model/model.safetensors" ] \
    || python3 "$KIT/decoder-peer-bench.py" write-model --shape grm-llama3.2-3b --golden "$KIT/golden" \
         --dtype bf16 --device cuda -o "$model"
  for b in $BATCHES; do
    echo "-- batch $b"
    "$MICRO" bench embed --model "$model" --device cuda --texts "$TEXTS" --lengths 257 \
      --batch-size "$b" --dump-ids "$OUT/ids-$b.json" | tee "$OUT/micro-$b.txt"
    python3 "$KIT/decoder-peer-bench.py" bench --model "$model" --ids "$OUT/ids-$b.json" \
      --device cuda --dtype bf16 | tee "$OUT/torch-$b.txt"
    local m t
    m=$(awk 'NF == 6 && $1 ~ /^[0-9]+$/ {print $4}' "$OUT/micro-$b.txt" | tail -1)
    t=$(awk 'NF >= 5 && $1 ~ /^[0-9]+$/ {print $4}' "$OUT/torch-$b.txt" | tail -1)
    echo "batch $b: micro $m tokens/s, transformers $t tokens/s, ratio $(awk -v m="$m" -v t="$t" 'BEGIN {printf "%.2f", m / t}')x"
  done
}

serving() {
  echo "== reward server, text scoring on the GPU: random-weight encoder of all-MiniLM-L6-v2's shape"
  local enc=/tmp/minilm-random
  rm -rf "$enc" && cp -r "$KIT/minilm-shape" "$enc"
  python3 "$KIT/random-encoder.py" fill "$enc"
  "$MICRO" bench serve --text --device cuda --backbone "$enc" --requests "$SERVE_REQUESTS" \
    --clients 1,8,32
}

run() {
  [ -f "$KIT/bin/micro.gz" ] || die "$KIT/bin/micro.gz is missing: run \`bash scripts/device-check.sh prepare\` on the build machine and carry $KIT"
  OUT=${OUT:-$KIT/out}
  # Unpacked beside libcudart.so.13, which the binary finds through RPATH=$ORIGIN.
  gunzip -c "$KIT/bin/micro.gz" >"$KIT/bin/micro" && chmod +x "$KIT/bin/micro"
  TEXTS=${TEXTS:-512}
  BATCHES=${BATCHES:-8 32}
  mkdir -p "$OUT"
  MICRO="$KIT/bin/micro"
  driver 2>&1 | tee "$OUT/driver.txt"
  local libs; libs=$(cuda_library_path) || die "CUDA libraries: $libs"
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  SERVE_REQUESTS=${SERVE_REQUESTS:-640}
  for step in ${STEPS:-agreement throughput serving}; do
    case "$step" in
      agreement | throughput | serving) "$step" 2>&1 | tee "$OUT/$step.txt" ;;
      *) die "unknown step $step: use agreement, throughput or serving" ;;
    esac
  done
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) say "usage: $0 prepare|run"; exit 2 ;;
esac
