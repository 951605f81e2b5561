#!/usr/bin/env bash
# The Python tests (tests/python, cdma.torch included) in a venv with packages from PyPI: a pinned
# PyTorch 2.x (its default wheel, used on CPU), numpy 2, pandas and h5py, with cdma installed into it
# by `pip install <checkout>` (the README's pip route). Run by scripts/test.sh after the ctest suite,
# which runs the same tests with Debian's python3 (python3-torch 1.13, numpy 1.24).
#
# The venv lives outside the checkout ($CDMA_CI_VENV, default ~/.cache/cdma/venv-ci) so that a fresh
# clone reuses it; it is made once and its packages are installed only when the pins below change
# (a stamp file); pip's cache (~/.cache/pip) keeps the downloads. cdma itself is rebuilt every run
# (build folder $CDMA_CI_BUILD_DIR, default build-venv/ of the checkout; ccache when present).
# Usage: scripts/test-venv.sh [PYTEST ARGS...]   (environment: CDMA_CI_VENV, CDMA_CI_PYTHON, CDMA_CI_BUILD_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

venv=${CDMA_CI_VENV:-$HOME/.cache/cdma/venv-ci}
base_python=${CDMA_CI_PYTHON:-/usr/bin/python3}
build_dir=${CDMA_CI_BUILD_DIR:-build-venv}
# The pins: the newest torch 2.x on PyPI when set, with the numpy 2 / pandas / h5py of that time, and
# the build requirements of pyproject.toml (installed here: the build runs without build isolation).
# No torchvision: none on PyPI for torch 2.15 yet (0.29 needs 2.14), so python.torch_launch skips here.
pins=(
  torch==2.15.0 numpy==2.4.6 pandas==3.1.2 h5py==3.16.0 matplotlib==3.11.2 pytest==9.2.0
  scikit-build-core==1.1.2 pybind11==3.1.0
)

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then sed -n '2,12p' "$0"; exit 0; fi

t0=$SECONDS
want_version=$("$base_python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
have_version=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
if [ "$have_version" != "$want_version" ]; then
  [ -e "$venv" ] && echo "test-venv.sh: $venv is not a working Python $want_version venv: making it again"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$base_python" -m venv "$venv"
fi
py="$venv/bin/python"

stamp="$venv/.cdma-pins"
if [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
  echo "test-venv.sh: installing ${pins[*]} into $venv"
  rm -f "$stamp"
  "$py" -m pip install -q --disable-pip-version-check "${pins[@]}"
  echo "${pins[*]}" >"$stamp"
fi
t1=$SECONDS

echo "test-venv.sh: pip install $src (into $venv)"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(--config-settings=cmake.define.CMAKE_CXX_COMPILER_LAUNCHER=ccache
            --config-settings=cmake.define.CMAKE_C_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="$src" CCACHE_NOHASHDIR=1
fi
"$py" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall \
  --config-settings=build-dir="$build_dir/{wheel_tag}" "${launcher[@]}" "$src"
t2=$SECONDS

echo "test-venv.sh: pytest tests/python under $("$py" -c 'import sys, numpy, torch
print("Python %d.%d" % sys.version_info[:2], "torch", torch.__version__, "numpy", numpy.__version__)')"
# The installed package and its `cdma` command, never the checkout's python/ or a build's.
rc=0
env -u PYTHONPATH CDMA_SOURCE_DIR="$src" CDMA_BIN_DIR="$venv/bin" MPLBACKEND=Agg PYTHONDONTWRITEBYTECODE=1 \
  "$py" -m pytest -q -p no:cacheprovider tests/python "$@" || rc=$?
echo "test-venv.sh: venv and packages $((t1 - t0)) s, pip install of cdma $((t2 - t1)) s, tests $((SECONDS - t2)) s"
exit "$rc"
