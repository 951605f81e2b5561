#!/usr/bin/env bash
# GPU check of the cuDNN interposer (docs/CAPTURE.md, "GPU check"). Run on a machine with an NVIDIA
# GPU and PyTorch on cuDNN 9; no network and none of this project's libraries needed there: only
# this folder, the interposer built on the development machine, and Python.
#
#   tools/gpu-check/run.sh [options]                   # the check (about 2-3 minutes on one H200)
#   tools/gpu-check/run.sh --dry-run --spool DIR|FILE  # no GPU: versions, spool checks, summary, archive
#
# Trains a torchvision ResNet-18 on Fashion-MNIST (tools/gpu-check/data) without capture, with
# full, in-situ and timeline-only capture, then without capture and with full capture under
# TORCH_CUDNN_V8_API_DISABLED=1 (legacy cuDNN API); checks each spool (train.py --check-only,
# streaming) and prints versions first, then per-run results, overheads, the capture verdict and,
# on a line of its own, the GPU-time (CUPTI) verdict. Working files (spools, logs) live under
# --work; the output folder receives at most: summary.txt, summary.json and results.tar.gz (log,
# per-run JSON, small spools; split into results.tar.gz.0, .1, ... of at most --part-mb MiB when
# bigger). Full-capture spools never leave --work. Exit status: 0 when the capture checks passed.
#
# Options (each also an environment variable; flag > variable > default):
#   --lib PATH            interposer (CDMA_CAPTURE_LIB; default: build-capture/lib, then build/lib,
#                         then build-*/lib under the repository)
#   --out DIR             output folder (OUT; default ./gpu-check-out)
#   --work DIR            working folder (GPU_CHECK_WORK; default ${TMPDIR:-/tmp}/cdma-gpu-check.PID)
#   --python PY           (PYTHON; default python3)
#   --trainer SCRIPT      training script with train.py's options (GPU_CHECK_TRAINER; default train.py)
#   --runs LIST           (GPU_CHECK_RUNS; default base,full,insitu,timeline,legacy-base,legacy-full)
#   --iterations N        training iterations per run (GPU_CHECK_ITERATIONS; default 200)
#   --batch N             (GPU_CHECK_BATCH; default 128)
#   --check-iter K        iteration whose tensors are checked (GPU_CHECK_CHECK_ITER; default 5)
#   --budget B            full capture byte budget (GPU_CHECK_BUDGET, else CDMA_CAPTURE_BUDGET; default 1G)
#   --ring B              pinned staging ring (GPU_CHECK_RING, else CDMA_CAPTURE_RING; default 1G)
#   --ring-wait-ms MS     (GPU_CHECK_RING_WAIT_MS, else CDMA_CAPTURE_RING_WAIT_MS; default 2000)
#   --capture-skip K      full runs keep iterations from K (GPU_CHECK_CAPTURE_SKIP, else
#                         CDMA_CAPTURE_SKIP; default: the check iteration)
#   --capture-first N     ... at most N of them (GPU_CHECK_CAPTURE_FIRST, else CDMA_CAPTURE_FIRST; default 1)
#   --deadline S          no run starts after S seconds; a run is cut at the deadline (GPU_CHECK_DEADLINE_S; 270)
#   --run-timeout S       limit per run (GPU_CHECK_RUN_TIMEOUT_S; default 120)
#   --spool-max-mb M      spools up to M MiB go into the archive (GPU_CHECK_SPOOL_MAX_MB; default 24)
#   --archive-max-mb M    archive limit, spools dropped beyond it (GPU_CHECK_ARCHIVE_MAX_MB; default 48)
#   --part-mb M           split size (GPU_CHECK_PART_MB; default 15)
#   --keep-work           keep the working folder (default: removed after packing)
#   --print-config        print the settings and exit
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
start=$(date +%s)

lib="${CDMA_CAPTURE_LIB:-}"
out="${OUT:-$PWD/gpu-check-out}"
work="${GPU_CHECK_WORK:-${TMPDIR:-/tmp}/cdma-gpu-check.$$}"
py="${PYTHON:-python3}"
trainer="${GPU_CHECK_TRAINER:-$here/train.py}"
runs="${GPU_CHECK_RUNS:-base,full,insitu,timeline,legacy-base,legacy-full}"
iters="${GPU_CHECK_ITERATIONS:-200}"
batch="${GPU_CHECK_BATCH:-128}"
check_iter="${GPU_CHECK_CHECK_ITER:-5}"
budget="${GPU_CHECK_BUDGET:-${CDMA_CAPTURE_BUDGET:-1G}}"
ring="${GPU_CHECK_RING:-${CDMA_CAPTURE_RING:-1G}}"
ring_wait="${GPU_CHECK_RING_WAIT_MS:-${CDMA_CAPTURE_RING_WAIT_MS:-2000}}"
cap_skip="${GPU_CHECK_CAPTURE_SKIP:-${CDMA_CAPTURE_SKIP:-}}"
cap_first="${GPU_CHECK_CAPTURE_FIRST:-${CDMA_CAPTURE_FIRST:-1}}"
deadline="${GPU_CHECK_DEADLINE_S:-270}"
run_timeout="${GPU_CHECK_RUN_TIMEOUT_S:-120}"
spool_max="${GPU_CHECK_SPOOL_MAX_MB:-24}"
archive_max="${GPU_CHECK_ARCHIVE_MAX_MB:-48}"
part="${GPU_CHECK_PART_MB:-15}"
keep_work=0 dry=0 print_config=0 spool=""
need() { [ $# -ge 2 ] || { echo "run.sh: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --lib) need "$@"; lib="$2"; shift 2 ;;
    --out) need "$@"; out="$2"; shift 2 ;;
    --work) need "$@"; work="$2"; shift 2 ;;
    --python) need "$@"; py="$2"; shift 2 ;;
    --trainer) need "$@"; trainer="$2"; shift 2 ;;
    --runs) need "$@"; runs="$2"; shift 2 ;;
    --iterations) need "$@"; iters="$2"; shift 2 ;;
    --batch) need "$@"; batch="$2"; shift 2 ;;
    --check-iter) need "$@"; check_iter="$2"; shift 2 ;;
    --budget) need "$@"; budget="$2"; shift 2 ;;
    --ring) need "$@"; ring="$2"; shift 2 ;;
    --ring-wait-ms) need "$@"; ring_wait="$2"; shift 2 ;;
    --capture-skip) need "$@"; cap_skip="$2"; shift 2 ;;
    --capture-first) need "$@"; cap_first="$2"; shift 2 ;;
    --deadline) need "$@"; deadline="$2"; shift 2 ;;
    --run-timeout) need "$@"; run_timeout="$2"; shift 2 ;;
    --spool-max-mb) need "$@"; spool_max="$2"; shift 2 ;;
    --archive-max-mb) need "$@"; archive_max="$2"; shift 2 ;;
    --part-mb) need "$@"; part="$2"; shift 2 ;;
    --keep-work) keep_work=1; shift ;;
    --dry-run) dry=1; shift ;;
    --spool) need "$@"; spool="$2"; shift 2 ;;
    --print-config) print_config=1; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$cap_skip" ] || cap_skip="$check_iter"
for v in iters batch check_iter cap_skip cap_first deadline run_timeout spool_max archive_max part ring_wait; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "run.sh: $v must be a whole number, got '${!v}'" >&2; exit 2; }
done
[ "$part" -ge 1 ] && [ "$part" -le 15 ] || { echo "run.sh: --part-mb must be 1..15 (files come back below 16 MiB)" >&2; exit 2; }
IFS=, read -r -a run_list <<< "$runs"
for r in "${run_list[@]}"; do
  case "$r" in
    base|full|insitu|timeline|legacy-base|legacy-full) ;;
    *) echo "run.sh: unknown run '$r' in --runs (base, full, insitu, timeline, legacy-base, legacy-full)" >&2; exit 2 ;;
  esac
done
for v in budget ring; do
  # The shape of cdma's one byte-size grammar (formats/byte_size.hpp; the interposer checks the value itself).
  [[ "${!v}" =~ ^[0-9]+(B|[KMGT]|[KMGT]iB)?$ ]] ||
    { echo "run.sh: --$v must be bytes with an optional unit B, K/KiB, M/MiB, G/GiB, T/TiB, got '${!v}'" >&2; exit 2; }
done
if [ -z "$lib" ] && [ "$dry" = 0 ]; then
  for c in "$root/build-capture/lib/libcdma_capture.so" "$root/build/lib/libcdma_capture.so" "$root"/build*/lib/libcdma_capture.so; do
    [ -f "$c" ] && { lib="$c"; break; }
  done
fi
settings() {
  cat <<EOF
{"lib": "$lib", "out": "$out", "work": "$work", "python": "$py", "trainer": "$trainer", "runs": "$runs",
 "iterations": $iters, "batch": $batch, "check_iter": $check_iter, "budget": "$budget", "ring": "$ring",
 "ring_wait_ms": $ring_wait, "capture_skip": $cap_skip, "capture_first": $cap_first, "deadline_s": $deadline,
 "run_timeout_s": $run_timeout, "spool_max_mb": $spool_max, "archive_max_mb": $archive_max, "part_mb": $part,
 "dry_run": $dry, "cdma_torch": "${cdma_torch:-not run}"}
EOF
}
if [ "$print_config" = 1 ]; then settings; exit 0; fi

mkdir -p "$work" "$out" || { echo "run.sh: cannot create $work or $out" >&2; exit 1; }
log="$work/log.txt"
: > "$work/runs.tsv"
say() { echo "$@" | tee -a "$log"; }
elapsed() { echo $(( $(date +%s) - start )); }

# --- versions first -------------------------------------------------------------------------------
glibc=$( (getconf GNU_LIBC_VERSION 2>/dev/null || ldd --version 2>/dev/null | head -1) | head -1)
driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
[ -n "$driver" ] || driver=$(sed -n 's/.*Kernel Module  *\([0-9.]*\).*/\1/p' /proc/driver/nvidia/version 2>/dev/null | head -1)
gpu=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1)
"$py" - "$work/env.json" "$glibc" "$driver" "$gpu" "$lib" <<'EOF'
import json, platform, sys
json.dump({"glibc": sys.argv[2], "driver": sys.argv[3], "gpu": sys.argv[4], "lib": sys.argv[5],
           "python": platform.python_version()}, open(sys.argv[1], "w"))
EOF
say "== versions (glibc, driver, torch, cuDNN, CUPTI)"
say "  glibc   ${glibc:-not available}"
say "  driver  ${driver:-not available}${gpu:+ ($gpu)}"
if [ "$dry" = 1 ]; then
  echo '{"torch": "not probed (dry run)"}' > "$work/probe.json"
  gpu_ok=0
else
  timeout -k 10 120 "$py" "$trainer" --probe > "$work/probe.json" 2>>"$log"
  gpu_ok=$?
fi
"$py" -c "import json,sys; p=json.load(open(sys.argv[1])); [print(f'  {k:7s} {p.get(k)}') for k in ('torch','cudnn','cupti_api','device')]" \
  "$work/probe.json" 2>/dev/null | tee -a "$log"
[ -n "$lib" ] && say "  interposer $lib ($(stat -c %s "$lib" 2>/dev/null || echo '?') bytes)"

# --- packing: always, also when interrupted -------------------------------------------------------
pack() {
  trap - EXIT INT TERM
  settings > "$work/settings.json"
  "$py" "$here/summary.py" "$work" "$out" | tee -a "$log" >/dev/null
  local rc=${PIPESTATUS[0]}
  local items=(log.txt settings.json env.json probe.json runs.tsv)
  local f
  for f in "$work"/*.json; do
    [ -f "$f" ] && [ "$(basename "$f")" != settings.json ] && [ "$(basename "$f")" != env.json ] && \
      [ "$(basename "$f")" != probe.json ] && items+=("$(basename "$f")")
  done
  local spools=()
  for d in "$work"/spool-*; do
    [ -d "$d" ] || continue
    case "$d" in *-full) continue ;; esac   # full-capture spools never leave the machine
    local mb; mb=$(du -sm "$d" | cut -f1)
    if [ "$mb" -le "$spool_max" ]; then spools+=("$(basename "$d")"); else echo "  (not archived: $d, $mb MiB)" >> "$log"; fi
  done
  rm -f "$out"/results.tar.gz "$out"/results.tar.gz.[0-9]*
  tar czf "$work/results.tar.gz" -C "$work" "${items[@]}" "${spools[@]}" 2>>"$log"
  if [ "$(stat -c %s "$work/results.tar.gz")" -gt $(( archive_max * 1048576 )) ]; then
    echo "  (archive over $archive_max MiB: spools left out)" >> "$log"
    tar czf "$work/results.tar.gz" -C "$work" "${items[@]}"
  fi
  if [ "$(stat -c %s "$work/results.tar.gz")" -gt $(( part * 1048576 )) ]; then
    split -b "${part}M" -d -a 1 "$work/results.tar.gz" "$out/results.tar.gz."
  else
    cp "$work/results.tar.gz" "$out/results.tar.gz"
  fi
  cat "$out/summary.txt"
  echo "== done in $(elapsed) s; $out: $(cd "$out" && ls | tr '\n' ' ')"
  [ "$keep_work" = 1 ] || rm -rf "$work"
  exit "$rc"
}
trap pack EXIT
trap 'echo "run.sh: interrupted" >> "$log"; exit 130' INT TERM

if [ "$dry" = 1 ]; then
  # Everything but the GPU: the scripts compile, the spool reader and the checks run, the summary
  # and the archive are made.
  "$py" -m py_compile "$here/train.py" "$here/cdma_spool.py" "$here/summary.py" || exit 1
  [ -n "$spool" ] || { echo "run.sh: --dry-run needs --spool DIR_OR_SPOOL" >&2; exit 2; }
  spools=("$spool")
  [ -d "$spool" ] && spools=("$spool"/*.spool)
  "$py" "$here/cdma_spool.py" "${spools[@]}" >> "$log" 2>&1
  t0=$(date +%s)
  "$py" "$here/train.py" --check-only "$spool" --out "$work/dry.check.json" >> "$log" 2>&1
  rc=$?
  printf 'dry\tcheck-only\t%d\t%d\tran\n' "$rc" $(( $(date +%s) - t0 )) >> "$work/runs.tsv"
  exit 0   # pack (trap) reports the verdict
fi

[ -n "$lib" ] && [ -f "$lib" ] || {
  say "run.sh: the interposer ${lib:-libcdma_capture.so} was not found: build it (scripts/build-capture.sh) and carry it, or pass --lib"
  exit 1
}
[ "$gpu_ok" = 0 ] || { say "run.sh: PyTorch with a usable GPU is needed ($trainer --probe exited $gpu_ok; see probe.json)"; exit 1; }

# --- the runs ---------------------------------------------------------------------------------------
run_one() {  # NAME MODE(none|full|insitu|timeline) [ENV...]
  local name="$1" mode="$2"; shift 2
  local left=$(( deadline - $(elapsed) ))
  if [ "$left" -lt 15 ]; then
    say "== $name: skipped (deadline of $deadline s reached)"
    printf '%s\t%s\t0\t0\tskipped (deadline)\n' "$name" "$mode" >> "$work/runs.tsv"
    return
  fi
  local limit=$(( run_timeout < left ? run_timeout : left ))
  local sp="$work/spool-$name" t0 rc
  rm -rf "$sp"
  [ "$mode" = none ] || mkdir -p "$sp"
  say "== $name ($mode, $(elapsed) s into the check, limit $limit s)"
  t0=$(date +%s)
  local args=(--iterations "$iters" --batch "$batch" --check-iter "$check_iter" --out "$work/$name.json")
  if [ "$mode" = none ]; then
    env "$@" timeout -k 10 "$limit" "$py" "$trainer" "${args[@]}" >> "$log" 2>&1
    rc=$?
  else
    local capenv=(LD_PRELOAD="$lib" CDMA_CAPTURE_DIR="$sp" CDMA_CAPTURE_MODE="$mode" CDMA_CAPTURE_BUDGET="$budget"
                  CDMA_CAPTURE_RING="$ring" CDMA_CAPTURE_RING_WAIT_MS="$ring_wait")
    [ "$mode" = full ] && capenv+=(CDMA_CAPTURE_SKIP="$cap_skip" CDMA_CAPTURE_FIRST="$cap_first")
    env "$@" "${capenv[@]}" timeout -k 10 "$limit" "$py" "$trainer" "${args[@]}" --spool-dir "$sp" >> "$log" 2>&1
    rc=$?
  fi
  local state=ran
  { [ "$rc" = 124 ] || [ "$rc" = 137 ]; } && state="timed out"
  printf '%s\t%s\t%d\t%d\t%s\n' "$name" "$mode" "$rc" $(( $(date +%s) - t0 )) "$state" >> "$work/runs.tsv"
  if [ "$mode" != none ] && [ "$rc" = 0 ]; then
    local flags=()
    [ "$mode" = insitu ] && flags+=(--insitu)
    [ "$mode" = timeline ] && flags+=(--timeline)
    # Only the training process's spool is checked (dataloader workers or compilers write none).
    "$py" "$here/train.py" --check-only "$sp" --train-result "$work/$name.json" "${flags[@]}" \
      --out "$work/$name.check.json" 2>&1 | tee -a "$log"
  fi
}

# cdma.torch (the PyTorch-side capture, when it exists) would be compared with the interposer on
# the same run here; until then the summary says why it was not.
compare_cdma_torch() {
  if "$py" -c "import cdma.torch" 2>/dev/null; then
    cdma_torch="available, comparison not implemented yet (tools/gpu-check/run.sh compare_cdma_torch)"
  else
    cdma_torch="skipped: cdma.torch is not importable"
  fi
  say "== cdma.torch: $cdma_torch"
}

for r in "${run_list[@]}"; do
  case "$r" in
    base) run_one base none ;;
    full|insitu|timeline) run_one "$r" "$r" ;;
    legacy-base) run_one legacy-base none TORCH_CUDNN_V8_API_DISABLED=1 ;;
    legacy-full) run_one legacy-full full TORCH_CUDNN_V8_API_DISABLED=1 ;;
  esac
done
compare_cdma_torch
exit 0  # pack (trap) reports the verdict
