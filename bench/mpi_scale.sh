#!/usr/bin/env bash
# How `cdma analyze` scales over MPI ranks (docs/MPI.md): 1 rank vs 2 ranks, one worker thread each
# (-j 1), on one synthetic trace of at least 1 GB (far beyond the CPU caches; made with `cdma synth`
# when missing, read once into the page cache so that the disk is not measured). Best wall time of
# CDMA_BENCH_REPS runs each; prints the ratio (2 ranks' speed over 1 rank's), the per-rank timing
# lines of the last 2-rank run, the CPU model and the load average before and after (the machine
# may be shared: a busy one lowers the ratio). Also checks that both give the same JSON bytes.
#
# Usage: bench/mpi_scale.sh [BUILD_DIR]        (default: build)
# Environment: CDMA_BENCH_TRACE (default /tmp/cdma-bench-mpi.h5), CDMA_BENCH_BYTES (1G),
#   CDMA_BENCH_REPS (1), CDMA_BENCH_CODECS (default codecs), CDMA_MPIRUN (mpirun).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin="$build/bin/cdma"
[ -x "$bin" ] || { echo "mpi_scale.sh: $bin not built (cmake --build $build --target cdma)" >&2; exit 1; }
mpirun=${CDMA_MPIRUN:-mpirun}
command -v "$mpirun" > /dev/null || { echo "mpi_scale.sh: no $mpirun (apt-get install openmpi-bin)" >&2; exit 1; }
trace=${CDMA_BENCH_TRACE:-/tmp/cdma-bench-mpi.h5}
bytes=${CDMA_BENCH_BYTES:-1G}
reps=${CDMA_BENCH_REPS:-1}
codecs=${CDMA_BENCH_CODECS:+-c $CDMA_BENCH_CODECS}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # CI runs as root
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -f "$trace" ]; then
  # 8 layers of 16x64x56x56 fp32 (12.8 MB each), densities falling with depth as in the paper.
  "$bin" synth -o "$trace" --bytes "$bytes" --shape 16,64,56,56 --layers 8 \
    --density 0.6,0.5,0.4,0.35,0.3,0.2,0.1,0.05 --clustering mixed --seed 1 >&2
fi
cat "$trace" > /dev/null

# best_wall N: the best wall_s of the first (total) timing line over $reps runs with N ranks.
best_wall() {
  local n=$1 best=""
  for _ in $(seq "$reps"); do
    "$mpirun" --oversubscribe -np "$n" "$bin" analyze -q -j 1 $codecs --timing --mpi always \
      --json "$tmp/np$n.json" "$trace" 2> "$tmp/np$n.err"
    local w
    w=$(grep -m1 '^timing: bytes=' "$tmp/np$n.err" | sed 's/.* wall_s=\([0-9.]*\).*/\1/')
    if [ -z "$best" ] || awk -v a="$w" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$w; fi
  done
  echo "$best"
}

cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
w1=$(best_wall 1)
w2=$(best_wall 2)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
same=no
cmp -s "$tmp/np1.json" "$tmp/np2.json" && same=yes
gb=$(stat -c %s "$trace" | awk '{ printf "%.2f", $1 / 1e9 }')
echo "trace: $trace ($gb GB file), codecs: ${CDMA_BENCH_CODECS:-default}, -j 1 per rank, best of $reps"
echo "cpu: $cpu ($(nproc) cores)"
echo "load average (1/5/15 min): before $load_before, after $load_after"
echo "1 rank : $(grep -m1 '^timing: bytes=' "$tmp/np1.err")"
echo "2 ranks: $(grep -m1 '^timing: bytes=' "$tmp/np2.err")"
grep '^timing: rank=' "$tmp/np2.err"
# CPU time over wall time: 1.0 per rank on an idle machine; less means other work took the cores.
for n in 1 2; do
  grep -m1 '^timing: bytes=' "$tmp/np$n.err" |
    sed 's/.* wall_s=\([0-9.]*\).* cpu_s=\([0-9.]*\).*/\1 \2/' |
    awk -v n="$n" '{ printf "%d rank(s): CPU share %.2f of %d core(s)\n", n, $2 / $1, n }'
done
awk -v a="$w1" -v b="$w2" 'BEGIN { printf "1 rank: %.2f s   2 ranks: %.2f s   speed-up: %.2fx\n", a, b, a / b }'
echo "JSON of 1 and 2 ranks byte-identical: $same"
[ "$same" = yes ]
