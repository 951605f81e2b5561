#!/usr/bin/env bash
# `cdma analyze` on one tensor of 2 GiB + 4 KiB (fp32, three nonzeros) with the default codecs:
# wall and CPU time and peak RSS, to show that a tensor above lz4's block limit is analysed and
# that memory stays bounded by the 64 MiB analysis window, not by the tensor (docs/ANALYSIS_JSON.md,
# "Big tensors"). The trace is a sparse file written by tests/analyze/py_big_trace.py (a few KB on
# disk); the zeros read from its holes compress extremely well, so the codec times are those of
# all-zero blocks.
#
# Usage: bench/big_tensor.sh [BUILD_DIR]        (default: build)
# Environment: CDMA_BENCH_TRACE (/tmp/cdma-bench-big.h5), CDMA_BENCH_CODECS (the default five),
#   CDMA_BENCH_EXTRA (more flags for cdma analyze, e.g. --no-mmap).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin="$build/bin/cdma"
[ -x "$bin" ] || { echo "big_tensor.sh: $bin not built" >&2; exit 1; }
trace=${CDMA_BENCH_TRACE:-/tmp/cdma-bench-big.h5}
codecs=${CDMA_BENCH_CODECS:-zvc,zrle-4,zlib-6,zstd-1,lz4}
extra=${CDMA_BENCH_EXTRA:-}
n=$(( (1 << 29) + 1024 ))
[ -f "$trace" ] || /usr/bin/python3 tests/analyze/py_big_trace.py "$trace" "$n" "0,$((1 << 27)),$((n - 24))"

# shellcheck disable=SC2086
/usr/bin/python3 - "$bin" analyze "$trace" -q --timing --progress never --codecs "$codecs" $extra <<'EOF'
import resource, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
timing = [l for l in p.stderr.splitlines() if l.startswith("timing:")]
print(f"exit {p.returncode}; wall {wall:.1f} s; CPU {ru.ru_utime + ru.ru_stime:.1f} s; "
      f"peak RSS {ru.ru_maxrss / 1024:.0f} MB")
print("\n".join(timing) if timing else p.stderr)
sys.exit(p.returncode)
EOF
