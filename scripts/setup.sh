#!/usr/bin/env bash
# Installs every Debian package cdma needs to build, test and run, and pybind11 from PyPI (Debian 12's
# is 2.10, which returns wrong arrays under numpy 2) into ~/.cache/cdma/pybind11-<version>, where CMake
# finds it (CDMA_PYBIND11_HINT). Idempotent; run as root (or with sudo available).
# Usage: scripts/setup.sh [--no-torch]
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config git ccache
  libgtest-dev libgmock-dev libbenchmark-dev
  libhdf5-dev hdf5-tools zlib1g-dev libzstd-dev liblz4-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev
  libopenmpi-dev openmpi-bin
  clang clang-format libclang-rt-14-dev
  python3 python3-h5py python3-numpy python3-pandas python3-pytest python3-matplotlib
  python3-dev python3-pip
  chromium
)
torch_pkgs=(libtorch-dev dataset-fashion-mnist python3-torch python3-torchvision)

with_torch=1
for a in "$@"; do
  case "$a" in
    --no-torch) with_torch=0 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$a'" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
want=("${pkgs[@]}")
[ "$with_torch" = 1 ] && want+=("${torch_pkgs[@]}")
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all ${#want[@]} packages already installed"
else
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# pybind11 for the Python module: the version pyproject.toml builds with, from PyPI, into a folder of
# its own (pip install --target: nothing is added to the system's Python, which Debian's pip refuses
# anyway, PEP 668). Keep the version and folder in step with CDMA_PYBIND11_HINT in CMakeLists.txt.
pybind11_version=3.1.0
pybind11_dir="$HOME/.cache/cdma/pybind11-$pybind11_version"
if [ -f "$pybind11_dir/pybind11/share/cmake/pybind11/pybind11Config.cmake" ]; then
  echo "setup.sh: pybind11 $pybind11_version in $pybind11_dir"
else
  echo "setup.sh: installing pybind11 $pybind11_version from PyPI into $pybind11_dir"
  rm -rf "$pybind11_dir.tmp"
  /usr/bin/python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-deps --target "$pybind11_dir.tmp" \
    "pybind11==$pybind11_version"
  rm -rf "$pybind11_dir"
  mv "$pybind11_dir.tmp" "$pybind11_dir"
fi
