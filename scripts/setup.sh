#!/usr/bin/env bash
# Installs every Debian package cdma needs to build, test and run. Idempotent; run as root
# (or with sudo available). Usage: scripts/setup.sh [--no-torch]
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  libhdf5-dev hdf5-tools zlib1g-dev libzstd-dev liblz4-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev
  libopenmpi-dev openmpi-bin
  clang clang-format libclang-rt-14-dev
  python3 python3-h5py python3-numpy python3-pandas python3-pytest python3-matplotlib
  python3-dev pybind11-dev python3-pybind11
  chromium
)
torch_pkgs=(libtorch-dev dataset-fashion-mnist python3-torch python3-torchvision)

with_torch=1
for a in "$@"; do
  case "$a" in
    --no-torch) with_torch=0 ;;
    -h|--help) sed -n '2,3p' "$0"; exit 0 ;;
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
  exit 0
fi
echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
