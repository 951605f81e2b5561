"""Reads a cdma-written trace with h5py only and checks it against EXPECTED.json written by the
C++ test (the bytes of each tensor as hex, its attributes, and the /timeline and /stats rows).
Usage: h5py_check_trace.py TRACE.h5 EXPECTED.json   -- exits 0 when everything matches."""
import json
import sys

import h5py
import numpy as np

path, expected_path = sys.argv[1], sys.argv[2]
exp = json.load(open(expected_path))
errors = []

def s(v):
    return v.decode() if isinstance(v, bytes) else str(v)

with h5py.File(path, "r") as f:
    for k, v in exp["root"].items():
        got = f.attrs.get(k)
        if got is None or (s(got) if isinstance(v, str) else int(got)) != v:
            errors.append(f"root attribute {k}: got {got!r}, expected {v!r}")
    names = sorted(f["tensors"].keys())
    if names != [t["name"] for t in exp["tensors"]]:
        errors.append(f"tensor names {names} != expected")
    for t in exp["tensors"]:
        d = f["tensors"][t["name"]]
        if list(d.shape) != t["dims"]:
            errors.append(f"{t['name']}: shape {d.shape} != {t['dims']}")
        arr = d[()]
        want_np = {"float32": "<f4", "float16": "<f2", "bfloat16": "<u2", "int8": "i1", "uint8": "u1"}[t["dtype"]]
        if arr.dtype != np.dtype(want_np):
            errors.append(f"{t['name']}: numpy dtype {arr.dtype} != {want_np}")
        if np.ascontiguousarray(arr).astype(np.dtype(want_np)).tobytes().hex() != t["hex"]:
            errors.append(f"{t['name']}: bytes differ")
        for k in ("layer", "op", "role", "phase", "layout", "dtype"):
            if s(d.attrs[k]) != t[k]:
                errors.append(f"{t['name']}: attribute {k} = {d.attrs[k]!r}, expected {t[k]!r}")
        for k in ("iteration", "layer_index"):
            if int(d.attrs[k]) != t[k]:
                errors.append(f"{t['name']}: attribute {k} = {d.attrs[k]!r}, expected {t[k]!r}")
        # `offload`: an int8 attribute when the writer was told, absent otherwise (docs/spec/TRACE_FORMAT.md).
        want = t.get("offload")
        if want is None:
            if "offload" in d.attrs:
                errors.append(f"{t['name']}: attribute offload present, the writer was not given one")
        elif "offload" not in d.attrs:
            errors.append(f"{t['name']}: attribute offload missing")
        else:
            a = d.attrs["offload"]
            if np.asarray(a).dtype != np.int8 or int(a) != want:
                errors.append(f"{t['name']}: offload = {a!r} ({np.asarray(a).dtype}), expected int8 {want}")
    if "timeline" in exp:
        tl = f["timeline"][()]
        got = [[int(r["iteration"]), int(r["call"]), int(r["layer_index"]), int(r["phase"]), s(r["op"]),
                s(r["layer"]), int(r["start_ns"]), int(r["end_ns"]), int(r["device_ns"])] for r in tl]
        if got != exp["timeline"]:
            errors.append(f"timeline {got} != {exp['timeline']}")
    if "stats" in exp:
        st = f["stats"][()]
        got = [[int(r["iteration"]), int(r["call"]), int(r["layer_index"]), s(r["layer"]), s(r["op"]),
                s(r["role"]), s(r["dtype"]), int(r["elements"]), int(r["nonzeros"]), int(r["zero_runs"])]
               for r in st]
        if got != exp["stats"]:
            errors.append(f"stats {got} != {exp['stats']}")

for e in errors:
    print(e, file=sys.stderr)
sys.exit(1 if errors else 0)
