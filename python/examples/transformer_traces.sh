#!/bin/sh
# Reproduces the transformer traces of data/README.md ("Transformer traces"): the GPT-style decoder in four
# MLP activations under bf16 autocast and fp32, and the ViT on Fashion-MNIST with GELU and ReLU.
# Full-batch traces go to $OUT (default /tmp/cdma-transformer-traces); the bf16 ReLU^2 and GELU decoder
# traces are also cut to one sequence per batch (--cut-to) into data/. Run from the repository root with
# PYTHON and PYTHONPATH naming an interpreter with torch and cdma's native module, e.g.
#   PYTHON=/usr/bin/python3 PYTHONPATH=build/python sh python/examples/transformer_traces.sh
# Two runs at a time (JOBS=2), one thread each, niced.
set -eu
PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp/cdma-transformer-traces}
JOBS=${JOBS:-2}
mkdir -p "$OUT"
run() {  # name, extra args...
  name=$1; shift
  nice -n 10 "$PYTHON" python/examples/transformer_traces.py "$@" --steps 600 --batch 16 --capture-spread 3 \
    --samples 1 --deflate 9 -f -o "$OUT/$name.h5" --losses-json "$OUT/$name.json" >"$OUT/$name.log" 2>&1
  tail -n 1 "$OUT/$name.log"
}
n=0
for dtype in bf16 fp32; do
  for act in relu2 gelu relu swiglu; do
    extra=""
    if [ "$dtype" = bf16 ] && { [ "$act" = relu2 ] || [ "$act" = gelu ]; }; then extra="--cut-to data/gpt-$act-$dtype.h5 --cut-iterations 0,last"; fi
    # shellcheck disable=SC2086
    run "gpt-$act-$dtype" --model gpt --act "$act" --dtype "$dtype" $extra &
    n=$((n + 1)); if [ $((n % JOBS)) -eq 0 ]; then wait; fi
  done
done
for act in gelu relu; do
  run "vit-$act-bf16" --model vit --act "$act" --dtype bf16 --d-model 128 --layers 4 --heads 4 --val-batches 63 &
  n=$((n + 1)); if [ $((n % JOBS)) -eq 0 ]; then wait; fi
done
wait
