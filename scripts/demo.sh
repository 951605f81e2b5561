#!/usr/bin/env bash
# Installs dependencies, builds cdma, and runs the main job on the embedded default: the sample
# traces in data/ (real activations of real Fashion-MNIST training runs, made by `cdma train`).
# Prints the per-layer analysis and writes out/analysis.json and out/report.html.
# Usage: scripts/demo.sh [--no-setup] [TRACE...]
set -euo pipefail
cd "$(dirname "$0")/.."

setup=1
traces=()
for a in "$@"; do
  case "$a" in
    --no-setup) setup=0 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) traces+=("$a") ;;
  esac
done
[ ${#traces[@]} -eq 0 ] && traces=(data/*.h5)

[ "$setup" = 1 ] && scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target cdma
if grep -q '^CDMA_WITH_PYTHON:BOOL=ON' build/CMakeCache.txt; then
  # The Python package (import cdma), registered for /usr/bin/python3.
  cmake --build build -j "$(nproc)" --target cdma_python_native
  scripts/python-path.sh build
fi
mkdir -p out
# Per-layer density and compression ratios, the paper's table (and the machine-readable JSON).
build/bin/cdma analyze "${traces[@]}" --json out/analysis.json
# The hardware model on the paper's GPU and link (Titan Xp, PCIe gen3), ratios from these traces.
build/bin/cdma replay "${traces[@]}" --gpu titan-xp --link pcie3 --no-layers
# Everything on one page.
build/bin/cdma report "${traces[@]}" -o out/report.html
echo "demo: open out/report.html in a browser; out/analysis.json holds the numbers"
