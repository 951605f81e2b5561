#!/usr/bin/env bash
# How `cdma info`, `cdma analyze` and `cdma report --no-replay` scale with the number of tensors in a
# trace when the tensors themselves are tiny (8 bytes each: metadata dominates). For each tensor
# count it makes a trace with `cdma synth` (cached in /tmp), runs each command CDMA_BENCH_REPS times
# and keeps the best wall time, CPU time (user + sys, probe child included) and the peak RSS; then
# prints the ratio of each to the smallest count's. Issue 13's target: 100,000 tensors take at most
# 10x the time of 10,000, and under 1 GB of memory.
#
# Usage: bench/metadata_scale.sh [BUILD_DIR]            (default: build)
# Environment: CDMA_BENCH_COUNTS ("10000 100000"), CDMA_BENCH_REPS (3), CDMA_BENCH_DIR (/tmp),
#   CDMA_BENCH_VERBS ("info analyze report"), CDMA_BENCH_MEM_LIMIT_GB (6: a command that needs
#   more address space fails, and is reported as such, rather than pushing a shared machine into
#   swap), CDMA_BENCH_OUT (bench-metadata.json).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin="$build/bin/cdma"
[ -x "$bin" ] || { echo "metadata_scale.sh: $bin not built (cmake --build $build --target cdma)" >&2; exit 1; }
counts=${CDMA_BENCH_COUNTS:-"10000 100000"}
reps=${CDMA_BENCH_REPS:-3}
tmp=${CDMA_BENCH_DIR:-/tmp}
verbs=${CDMA_BENCH_VERBS:-"info analyze report"}
limit_gb=${CDMA_BENCH_MEM_LIMIT_GB:-6}
out=${CDMA_BENCH_OUT:-bench-metadata.json}
py=/usr/bin/python3

for n in $counts; do
  trace="$tmp/cdma-bench-meta-$n.h5"
  if [ ! -f "$trace" ]; then
    echo "metadata_scale.sh: writing $trace ($n tensors of 2x1 fp32)" >&2
    "$bin" synth -o "$trace" --shape 2,1 --layers "$n" --iterations 1 --density 0.5 -f >&2
  fi
  cat "$trace" > /dev/null  # page cache: measure the tools, not the disk
done

# One run: wall seconds, CPU seconds of the command and its children, peak RSS in MB, exit code.
measure() {
  "$py" - "$limit_gb" "$@" <<'EOF'
import resource, subprocess, sys, time
limit = int(float(sys.argv[1]) * (1 << 30))
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
t0 = time.monotonic()
rc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=cap).returncode
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{wall:.3f} {ru.ru_utime + ru.ru_stime:.3f} {ru.ru_maxrss / 1024:.1f} {rc}")
EOF
}

results=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$results" "$work"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for verb in $verbs; do
  for n in $counts; do
    trace="$tmp/cdma-bench-meta-$n.h5"
    case "$verb" in
      info) cmd=("$bin" info "$trace") ;;
      analyze) cmd=("$bin" analyze "$trace" -q --progress never --json "$work/a.json") ;;
      report) cmd=("$bin" report "$trace" --no-replay -o "$work/r.html") ;;
      *) echo "metadata_scale.sh: unknown verb $verb" >&2; exit 2 ;;
    esac
    for r in $(seq "$reps"); do
      line=$(measure "${cmd[@]}")
      echo "$verb $n $r $line" >> "$results"
      echo "$verb $n run $r: wall_s cpu_s rss_mb rc = $line" >&2
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$py" - "$results" "$out" "$load_before" "$load_after" "$counts" <<'EOF'
import json, sys
path, out, lb, la, counts = sys.argv[1:6]
counts = [int(c) for c in counts.split()]
best = {}
for line in open(path):
    verb, n, r, wall, cpu, rss, rc = line.split()
    key = (verb, int(n))
    w, c, m, ok = float(wall), float(cpu), float(rss), rc == "0"
    b = best.setdefault(key, {"wall_s": w, "cpu_s": c, "rss_mb": m, "ok": ok, "rc": int(rc)})
    b["wall_s"], b["cpu_s"], b["rss_mb"] = min(b["wall_s"], w), min(b["cpu_s"], c), max(b["rss_mb"], m)
    b["ok"] = b["ok"] and ok
    if not ok:
        b["rc"] = int(rc)
rows = []
print(f"| command | tensors | wall s | CPU s | peak RSS MB | CPU vs {counts[0]} | wall vs {counts[0]} |")
print("|---|---:|---:|---:|---:|---:|---:|")
for verb in dict.fromkeys(k[0] for k in best):
    base = best.get((verb, counts[0]))
    for n in counts:
        b = best.get((verb, n))
        if b is None:
            continue
        if not b["ok"]:
            print(f"| {verb} | {n} | failed (exit {b['rc']}) | | {b['rss_mb']:.0f} | | |")
            rows.append({"verb": verb, "tensors": n, **b})
            continue
        rc = b["cpu_s"] / base["cpu_s"] if base and base["ok"] else None
        rw = b["wall_s"] / base["wall_s"] if base and base["ok"] else None
        print(f"| {verb} | {n} | {b['wall_s']:.2f} | {b['cpu_s']:.2f} | {b['rss_mb']:.0f} | "
              f"{'' if rc is None else f'{rc:.1f}x'} | {'' if rw is None else f'{rw:.1f}x'} |")
        rows.append({"verb": verb, "tensors": n, **b, "cpu_ratio": rc, "wall_ratio": rw})
json.dump({"load_before": lb, "load_after": la, "results": rows}, open(out, "w"), indent=1)
print(f"\nload average before {lb}, after {la}; results in {out}")
EOF
