#!/usr/bin/env bash
# Installs dependencies, builds everything, and runs all tests:
#   1. the source format check (scripts/check-format.sh, clang-format 14);
#   2. the full build (RelWithDebInfo) and its ctest suite;
#   3. an ASan+UBSan build of the libraries and the fuzz regression drivers (ctest -R fuzz), the trace
#      tests, and the CLI's replay-with-ratios, report and MPI-merge paths (tests/sanitize).
#   4. the Python tests in a venv with PyTorch 2.x and numpy 2 from PyPI, cdma installed there with
#      `pip install .` (scripts/test-venv.sh; the venv is kept in ~/.cache/cdma/venv-ci).
# Usage: scripts/test.sh [--no-setup] [--no-sanitize] [--no-venv]
set -euo pipefail
cd "$(dirname "$0")/.."

setup=1 sanitize=1 venv=1
for a in "$@"; do
  case "$a" in
    --no-setup) setup=0 ;;
    --no-sanitize) sanitize=0 ;;
    --no-venv) venv=0 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option '$a'" >&2; exit 2 ;;
  esac
done
jobs=$(nproc)

[ "$setup" = 1 ] && scripts/setup.sh
# ccache (setup.sh installs it) lets the three builds below share objects and makes a rerun fast;
# paths are taken relative to the checkout so that another clone of it hits the same cache.
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi

echo "== format (clang-format)"
scripts/check-format.sh

echo "== build (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}"
cmake --build build -j "$jobs"
if grep -q '^CDMA_WITH_PYTHON:BOOL=ON' build/CMakeCache.txt; then scripts/python-path.sh build; fi
echo "== tests (build/)"
ctest --test-dir build -j "$jobs" --output-on-failure --timeout 900

if [ "$sanitize" = 1 ]; then
  echo "== ASan+UBSan build of the fuzz regression drivers (build-asan/)"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCDMA_SANITIZE=ON "${launcher[@]}" \
    -DCDMA_WITH_TORCH=OFF -DCDMA_WITH_CUDA=OFF -DCDMA_BUILD_BENCH=OFF -DCDMA_WITH_PYTHON=OFF
  targets=$(ctest --test-dir build-asan -N -R '^fuzz\.' | sed -n 's/.*Test *#[0-9]*: fuzz\.\(.*\)/fuzz_\1/p' | sort -u)
  if [ -n "$targets" ]; then
    # Also the CLI paths that replay with ratios from a table, the report (and --compare), the
    # charts on degenerate data and the parts merge of MPI runs (tests/sanitize, issue 29; not
    # AnalyzeParts.SameJsonForAnyPartCount: minutes under the sanitizers).
    # shellcheck disable=SC2086
    cmake --build build-asan -j "$jobs" --target cdma $targets test_trace test_report_degenerate test_parts
    ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest --test-dir build-asan -j "$jobs" --output-on-failure \
      -R '^fuzz\.|Trace|BadInput|Interop|Crash|^sanitize\.|^ReportDegenerate\.|^Analyze(SplitByBytes|PartCodec)\.|^AnalyzeParts\.(KeepGoing|FirstError|MergeRefuses)'
  else
    echo "test.sh: no fuzz targets found" >&2
    exit 1
  fi
fi

if [ "$venv" = 1 ]; then
  echo "== Python tests under PyTorch 2.x and numpy 2 (scripts/test-venv.sh)"
  scripts/test-venv.sh
fi
