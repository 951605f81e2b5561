#!/usr/bin/env bash
# Runs cdma_bench_codecs pinned to one core and prints the memcpy-relative table (bench/README.md).
# Usage: bench/run_codecs.sh [BUILD_DIR] [extra Google Benchmark flags, e.g. --benchmark_filter=fp32]
# Environment: CDMA_BENCH_CORE (core to pin, default 1), CDMA_BENCH_REPS (repetitions, default 3;
# the table uses the median), CDMA_BENCH_OUT (JSON file, default bench-codecs.json),
# CDMA_BENCH_MIB (tensor size, default 64), CDMA_SIMD (scalar|avx2|avx512).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ $# -gt 0 ] && shift
bin="$build/bin/cdma_bench_codecs"
[ -x "$bin" ] || { echo "run_codecs.sh: $bin not built (cmake --build $build --target cdma_bench_codecs)" >&2; exit 1; }
core=${CDMA_BENCH_CORE:-1}
reps=${CDMA_BENCH_REPS:-3}
out=${CDMA_BENCH_OUT:-bench-codecs.json}
taskset -c "$core" "$bin" --benchmark_repetitions="$reps" --benchmark_out="$out" \
  --benchmark_out_format=json "$@" >&2
/usr/bin/python3 bench/codecs_table.py "$out"
