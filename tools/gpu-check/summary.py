#!/usr/bin/env python3
"""Summary of a GPU check (run.sh): reads the working folder and writes summary.txt and
summary.json into the output folder, and prints summary.txt.

  python3 summary.py WORK_DIR OUT_DIR

WORK_DIR holds: env.json (run.sh: glibc, driver, GPU, library), probe.json (train.py --probe),
runs.tsv (one line per run: name, mode, exit status, seconds, state), NAME.json (train.py result)
and NAME.check.json (train.py --check-only) per run, settings.json. Standard library only.
"""
import json
import os
import sys


def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def main(work, out):
    env = load(os.path.join(work, "env.json"), {})
    probe = load(os.path.join(work, "probe.json"), {})
    settings = load(os.path.join(work, "settings.json"), {})
    runs = []
    try:
        with open(os.path.join(work, "runs.tsv")) as f:
            for line in f:
                name, mode, rc, secs, state = line.rstrip("\n").split("\t")
                runs.append({"name": name, "mode": mode, "rc": int(rc), "seconds": float(secs), "state": state})
    except OSError:
        pass
    lines = ["== versions"]
    for k, v in (("glibc", env.get("glibc") or probe.get("glibc")), ("driver", env.get("driver")),
                 ("gpu", env.get("gpu") or probe.get("device")), ("cuda driver API", probe.get("cuda_driver_api")),
                 ("torch", probe.get("torch")), ("torch CUDA", probe.get("torch_cuda")), ("cuDNN", probe.get("cudnn")),
                 ("CUPTI API", probe.get("cupti_api")), ("python", probe.get("python") or env.get("python")),
                 ("interposer", env.get("lib"))):
        lines.append(f"  {k:16s} {v if v not in (None, '') else 'not available'}")
    lines.append("== runs")
    capture_ok, gpu_states, results = True, [], {}
    for r in runs:
        res = load(os.path.join(work, r["name"] + ".json"), {})
        chk = load(os.path.join(work, r["name"] + ".check.json"))
        r["ms_per_iteration"] = res.get("ms_per_iteration")
        results[r["name"]] = res
        if r["state"] != "ran" or r["rc"] != 0:
            capture_ok = False
            lines.append(f"  {r['name']:12s} {r['state']} (exit {r['rc']}, {r['seconds']:.0f} s)")
            continue
        detail = f"{r['ms_per_iteration']:.2f} ms/iteration" if r["ms_per_iteration"] else ""
        if chk is not None:
            r["capture_ok"] = chk.get("ok", False)
            r["gpu_time"] = chk.get("gpu_time")
            r["failures"] = [f for rep in chk.get("reports", []) for f in rep.get("failures", [])] + \
                chk.get("failures", [])
            r["offloaded"] = sum(rep.get("offloaded", 0) for rep in chk.get("reports", []))
            capture_ok = capture_ok and r["capture_ok"]
            gpu_states.append(r["gpu_time"])
            detail += f"; capture {'OK' if r['capture_ok'] else 'FAILED: ' + '; '.join(r['failures'][:3])}"
        lines.append(f"  {r['name']:12s} {r['mode']:9s} {r['seconds']:5.0f} s  {detail}")
    lines.append("== overhead (ms per iteration against the run without capture of the same API)")
    for r in runs:
        base = results.get("legacy-base" if r["name"].startswith("legacy") else "base", {}).get("ms_per_iteration")
        v = r.get("ms_per_iteration")
        if v:
            lines.append(f"  {r['name']:12s} {v:8.2f} ms" + (f"   {100 * (v / base - 1):+6.1f}%" if base else ""))
    lines.append("== cdma.torch comparison: " + settings.get("cdma_torch", "not run"))
    gpu = "failed" if "failed" in gpu_states else "ok" if gpu_states and all(
        g and g.startswith("ok") for g in gpu_states) else "unavailable" if gpu_states else "not checked"
    checked = [r for r in runs if "capture_ok" in r]
    capture_ok = capture_ok and bool(checked)
    lines.append(f"== capture checks: {'PASSED' if capture_ok else 'FAILED'} ({len(checked)} spools checked)")
    lines.append(f"== GPU time (CUPTI): {gpu.upper()}" +
                 (" (capture counts as working without it)" if gpu != "ok" else ""))
    text = "\n".join(lines) + "\n"
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({"capture_ok": capture_ok, "gpu_time": gpu, "env": env, "probe": probe, "settings": settings,
                   "runs": runs}, f, indent=1)
    sys.stdout.write(text)
    return 0 if capture_ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
