#!/usr/bin/python3
"""Prints the codec table from cdma_bench_codecs JSON: memcpy time / codec time per codec,
operation and density (>= 1.0: at least as fast as copying the uncompressed bytes), the same against
a streaming read of the same bytes (the limit of a scan: 1.0 = at read speed), then
throughput (GB/s = 1e9 B/s over uncompressed bytes) and compression ratio; then the paired runs
(operation, memcpy and streaming read timed in every iteration): median and min-max over runs of
their summed-time ratios.
Several JSON files (separate runs) are pooled; each cell is the median real time over all runs.
Usage: codecs_table.py RESULT.json [MORE.json ...]"""
import json
import statistics
import sys
from collections import defaultdict


def main(paths):
    times = defaultdict(list)  # (dtype, density, codec, op) -> [seconds]
    ratio, bytes_ = {}, {}
    paired = defaultdict(list)  # (dtype, density, codec-op) -> [(vs_memcpy, vs_read)]
    context = {}
    for p in paths:
        with open(p) as f:
            doc = json.load(f)
        context = doc.get("context", {})
        for b in doc["benchmarks"]:
            if b.get("run_type") != "iteration" or b.get("error_occurred"):
                continue
            name = b["run_name"].removesuffix("/real_time").removesuffix("/manual_time")
            dtype, dens, codec, op = name.split("/")
            if codec == "paired":
                paired[(dtype, int(dens[1:]), op)].append((b["vs_memcpy"], b["vs_read"]))
                continue
            unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
            key = (dtype, int(dens[1:]), codec, op)
            times[key].append(b["real_time"] * unit)
            ratio[key] = b.get("ratio", 0.0)
            bytes_[key] = b["bytes_per_second"] * b["real_time"] * unit
    if not times and not paired:
        sys.exit("codecs_table.py: no benchmark results in " + ", ".join(paths))
    if not times:
        print(f"CPU: {context.get('cdma_cpu_model', '?')}; SIMD: {context.get('cdma_simd', '?')}; "
              f"tensor: {context.get('cdma_tensor_mib', '?')} MiB")
        print_paired(paired)
        return
    med = {k: statistics.median(v) for k, v in times.items()}
    reps = max(len(v) for v in times.values())
    dtypes = sorted({k[0] for k in med}, key=lambda d: ("fp32", "fp16", "bf16").index(d) if d in ("fp32", "fp16", "bf16") else 9)
    dens = sorted({k[1] for k in med})
    order = ["zvc", "zrle-4", "zlib-6", "zstd-1", "lz4", "bpc", "ebpc", "expzstd", "zero_scan"]
    codecs = sorted({(k[2], k[3]) for k in med if k[2] not in ("memcpy", "read")},
                    key=lambda c: (order.index(c[0]) if c[0] in order else 99, c[1] != "encode", c[1]))
    print(f"CPU: {context.get('cdma_cpu_model', '?')}; SIMD: {context.get('cdma_simd', '?')}; "
          f"tensor: {context.get('cdma_tensor_mib', '?')} MiB; median of {reps} runs per cell")
    for dt in dtypes:
        print(f"\n### {dt}: memcpy time / codec time (>= 1.0 is at least memcpy speed)\n")
        print("| codec | op | " + " | ".join(f"{d} %" for d in dens) + " |")
        print("|---|---|" + "---|" * len(dens))
        mc = {d: med.get((dt, d, "memcpy", "copy")) for d in dens}
        rd = {d: med.get((dt, d, "read", "stream")) for d in dens}
        print("| memcpy | GB/s | " + " | ".join(
            f"{bytes_[(dt, d, 'memcpy', 'copy')] / mc[d] / 1e9:.1f}" if mc[d] else "-" for d in dens) + " |")
        print("| streaming read | GB/s | " + " | ".join(
            f"{bytes_[(dt, d, 'read', 'stream')] / rd[d] / 1e9:.1f}" if rd[d] else "-" for d in dens) + " |")
        for c, op in codecs:
            cells = []
            for d in dens:
                t = med.get((dt, d, c, op))
                cells.append(f"{mc[d] / t:.2f}" if t and mc[d] else "-")
            print(f"| {c} | {op} | " + " | ".join(cells) + " |")
        if any(rd.values()):
            print(f"\n{dt}: streaming-read time / codec time (the share of the read limit a codec reaches)\n")
            print("| codec | op | " + " | ".join(f"{d} %" for d in dens) + " |")
            print("|---|---|" + "---|" * len(dens))
            for c, op in codecs:
                cells = [f"{rd[d] / med[(dt, d, c, op)]:.2f}" if rd[d] and (dt, d, c, op) in med else "-"
                         for d in dens]
                print(f"| {c} | {op} | " + " | ".join(cells) + " |")
        print(f"\n{dt}: throughput GB/s over uncompressed bytes (ratio uncompressed/compressed)\n")
        print("| codec | op | " + " | ".join(f"{d} %" for d in dens) + " |")
        print("|---|---|" + "---|" * len(dens))
        for c, op in codecs:
            cells = []
            for d in dens:
                k = (dt, d, c, op)
                cells.append(f"{bytes_[k] / med[k] / 1e9:.2f} ({ratio[k]:.2f}x)" if k in med else "-")
            print(f"| {c} | {op} | " + " | ".join(cells) + " |")
    spread(times, dtypes)
    if paired:
        print_paired(paired)


def print_paired(paired):
    """Each cell: median (min-max) over runs of the summed baseline time / summed operation time,
    the three timed in every iteration."""
    print("\npaired (operation, memcpy and streaming read in every iteration): median (min-max) over runs\n")
    print("| dtype | density | operation | vs memcpy | vs streaming read |")
    print("|---|---:|---|---|---|")
    dorder = ("fp32", "fp16", "bf16")
    for (dt, d, op), v in sorted(paired.items(),
                                 key=lambda kv: (dorder.index(kv[0][0]) if kv[0][0] in dorder else 9, kv[0][1],
                                                 kv[0][2])):
        cells = []
        for i in (0, 1):
            x = [r[i] for r in v]
            cells.append(f"{statistics.median(x):.2f} ({min(x):.2f}-{max(x):.2f})")
        print(f"| {dt} | {d} % | {op} | {cells[0]} | {cells[1]} |")


def spread(times, dtypes, density=50):
    """The run-to-run spread of the headline cells: each repetition's codec time against the memcpy
    and streaming-read times of the same repetition index (Google Benchmark runs the repetitions of
    one benchmark back to back, so a pair is minutes apart at most), as min-max of the ratios."""
    print(f"\nspread at {density} % density: min-max over repetitions of memcpy (read) time / codec time\n")
    print("| dtype | codec | op | vs memcpy | vs streaming read |")
    print("|---|---|---|---|---|")
    for dt in dtypes:
        mc = times.get((dt, density, "memcpy", "copy"), [])
        rd = times.get((dt, density, "read", "stream"), [])
        for c, op in (("zvc", "encode"), ("zvc", "decode"), ("zero_scan", "scan"), ("bpc", "encode"),
                      ("bpc", "decode"), ("ebpc", "encode"), ("ebpc", "decode")):
            t = times.get((dt, density, c, op), [])
            if not t:
                continue
            def rng(base):
                r = [b / x for b, x in zip(base, t)]
                return f"{min(r):.2f}-{max(r):.2f}" if r else "-"
            print(f"| {dt} | {c} | {op} | {rng(mc)} | {rng(rd)} |")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    main(sys.argv[1:])
