#!/usr/bin/env bash
# GPU check of the cuDNN interposer (issue 8). Run on a machine with an NVIDIA GPU and PyTorch on
# cuDNN 9; no network and none of this project's libraries needed: only the interposer built on
# the development machine (build-capture/lib/libcdma_capture.so, carried along) and Python.
#
#   tools/gpu-check/run.sh [--lib PATH] [--out DIR] [--iterations N] [--python PY]
#   tools/gpu-check/run.sh --dry-run --spool DIR_OR_SPOOL     # no GPU: script and checks only
#
# Trains a small torchvision CNN on Fashion-MNIST (tools/gpu-check/data) without capture, with
# full capture, in-situ and timeline-only, then the same without capture and with full capture
# under TORCH_CUDNN_V8_API_DISABLED=1 (legacy cuDNN API); checks each spool (train.py) and prints
# the overhead of each mode. Spools and results land in --out (default $OUT or ./gpu-check-out);
# convert spools to traces on the development machine with `cdma capture --convert DIR -o x.h5`.
# Exit status: 0 when every check passed.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
lib="$root/build-capture/lib/libcdma_capture.so"
out="${OUT:-$PWD/gpu-check-out}"
iters=300
py="${PYTHON:-python3}"
dry=0
spool=""
while [ $# -gt 0 ]; do
  case "$1" in
    --lib) lib="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --iterations) iters="$2"; shift 2 ;;
    --python) py="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --spool) spool="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done

if [ "$dry" = 1 ]; then
  # Everything that needs no GPU: the scripts compile, the spool reader and checks run.
  "$py" -m py_compile "$here/train.py" "$here/cdma_spool.py" || exit 1
  [ -n "$spool" ] || { echo "run.sh: --dry-run needs --spool DIR_OR_SPOOL" >&2; exit 2; }
  spools=("$spool")
  [ -d "$spool" ] && spools=("$spool"/*.spool)
  "$py" "$here/cdma_spool.py" "${spools[@]}" || exit 1
  "$py" "$here/train.py" --check-only "$spool" --out "$out.dry-run.json"
  exit $?
fi

[ -f "$lib" ] || { echo "run.sh: interposer $lib not found (build it: cmake --build build-capture --target cdma_capture)" >&2; exit 1; }
"$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
  || { echo "run.sh: PyTorch with a usable GPU is needed" >&2; exit 1; }
mkdir -p "$out"
fail=0
declare -A ms

run() {  # run NAME MODE(none|full|insitu|timeline) [ENV...]
  local name="$1" mode="$2"; shift 2
  local sp="$out/spool-$name"
  rm -rf "$sp"; mkdir -p "$sp"
  echo "== $name"
  if [ "$mode" = none ]; then
    env "$@" "$py" "$here/train.py" --iterations "$iters" --out "$out/$name.json" || { fail=1; return; }
  else
    env "$@" LD_PRELOAD="$lib" CDMA_CAPTURE_DIR="$sp" CDMA_CAPTURE_MODE="$mode" CDMA_CAPTURE_BUDGET=8G \
      CDMA_CAPTURE_RING=1G CDMA_CAPTURE_RING_WAIT_MS=2000 \
      "$py" "$here/train.py" --iterations "$iters" --out "$out/$name.json" --spool-dir "$sp" || { fail=1; return; }
    local flags=()
    [ "$mode" = insitu ] && flags+=(--insitu)
    # Only the training process's spool is checked (dataloader workers or compilers write none).
    "$py" "$here/train.py" --check-only "$sp" --train-result "$out/$name.json" "${flags[@]}" \
      --out "$out/$name.check.json" || fail=1
  fi
  ms[$name]=$("$py" -c "import json; print(json.load(open('$out/$name.json'))['ms_per_iteration'])")
}

start=$(date +%s)
run base none
run full full
run insitu insitu
run timeline timeline
run legacy-base none TORCH_CUDNN_V8_API_DISABLED=1
run legacy-full full TORCH_CUDNN_V8_API_DISABLED=1

echo
echo "== overhead (ms per iteration, $iters iterations; $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1))"
for n in base full insitu timeline legacy-base legacy-full; do
  b=${ms[base]:-0}; [ "${n#legacy}" != "$n" ] && b=${ms[legacy-base]:-0}
  "$py" -c "b=float('$b' or 0); v=float('${ms[$n]:-0}' or 0); print(f'  {\"$n\":12s} {v:8.2f} ms' + (f'   {100*(v/b-1):+6.1f}%' if b > 0 and v > 0 else ''))"
done
# Keep small spools for conversion on the development machine; drop the big full-capture ones.
for d in "$out"/spool-*; do
  [ -d "$d" ] || continue
  size=$(du -sm "$d" | cut -f1)
  [ "$size" -gt 200 ] && { echo "  (removing $d: ${size} MiB)"; rm -rf "$d"; }
done
echo "== done in $(( $(date +%s) - start )) s; results in $out; checks $([ $fail = 0 ] && echo PASSED || echo FAILED)"
exit $fail
