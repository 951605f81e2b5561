#!/usr/bin/env bash
# Builds only the cuDNN interposer, at the path the GPU check looks first
# (build-capture/lib/libcdma_capture.so), checks it is fit to be preloaded elsewhere (no glibc
# symbol version newer than 2.28, DT_NEEDED only libc/libdl/libpthread/ld-linux, the cuDNN entry
# points exported), and prints what to carry to a GPU machine.
#
#   scripts/build-capture.sh [--build-dir DIR] [--jobs N]   # default build-capture, nproc
#   scripts/build-capture.sh --check LIB                   # only the checks, on a built library
#
# Needs the CUDA toolkit headers (cuda.h, cudnn.h, cupti.h; nvcc for the in-situ kernel), which
# scripts/setup.sh does not install (see docs/CAPTURE.md); no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build-capture jobs=$(nproc) check=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) dir="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --check) check="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-capture.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done

verify() {  # LIB
  local lib="$1" bad=0
  [ -f "$lib" ] || { echo "build-capture.sh: $lib does not exist" >&2; return 1; }
  local newest
  newest=$(objdump -T "$lib" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -1)
  local newer
  newer=$(objdump -T "$lib" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /GLIBC_/) { v = $i; gsub(/[()]/, "", v);
          split(substr(v, 7), p, "."); if (p[1] > 2 || (p[1] == 2 && p[2] > 28)) print $NF "@" v } }' | sort -u)
  if [ -n "$newer" ]; then
    echo "build-capture.sh: $lib needs glibc newer than 2.28: $newer" >&2
    bad=1
  fi
  local needed
  needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  for n in $needed; do
    case "$n" in libc.so.6|libdl.so.2|libpthread.so.0|ld-linux*) ;;
      *) echo "build-capture.sh: $lib has DT_NEEDED $n (only libc, libdl, libpthread allowed)" >&2; bad=1 ;;
    esac
  done
  local wrappers
  wrappers=$(objdump -T "$lib" | grep -c 'libcudnn.so.9 *cudnn' || true)
  [ "$wrappers" -ge 20 ] || { echo "build-capture.sh: only $wrappers cudnn* symbols exported under libcudnn.so.9" >&2; bad=1; }
  [ "$bad" = 0 ] || return 1
  echo "$lib: $(stat -c %s "$lib") bytes; newest glibc symbol version ${newest:-none}; DT_NEEDED $needed; $wrappers cuDNN entry points"
}

if [ -n "$check" ]; then
  verify "$check"
  exit $?
fi

mkdir -p "$dir"
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCDMA_WITH_CUDA=ON -DCDMA_WITH_TORCH=OFF \
  -DCDMA_BUILD_TESTS=OFF -DCDMA_BUILD_BENCH=OFF > "$dir/configure.log" 2>&1 \
  || { cat "$dir/configure.log" >&2; exit 1; }
cmake --build "$dir" -j "$jobs" --target cdma_capture
lib="$dir/lib/libcdma_capture.so"
verify "$lib"
cat <<EOF
Carry to the GPU machine (git-ignored, so name it): $lib
  e.g. the device tool: run(command="bash tools/gpu-check/run.sh --python /opt/torch/.venv/bin/python3",
                            carry=["$lib"], timeout_s=420)
EOF
