#!/usr/bin/env python3
"""Reference reader of the cdma capture spool, version 1 (capture/include/cdma/capture/spool.hpp).

Standard library only (numpy optional), so it runs on a GPU machine that has none of this
project's libraries. `python3 cdma_spool.py SPOOL... [--json]` prints what each spool holds.
"""
import json
import struct
import sys

MAGIC = b"CDMASPL1"
RECORD_MAGIC = 0x52414D43
T_ATTR, T_TENSOR, T_TIMELINE, T_STATS, T_CORR, T_KERNEL, T_COUNTERS, T_END = range(1, 9)
DTYPES = ["float32", "float16", "bfloat16", "int8", "uint8"]
DTYPE_SIZE = [4, 2, 2, 1, 1]
LAYOUTS = ["NCHW", "NHWC", "CHWN", "NC"]

HEADER = struct.Struct("<8sIIqqq24s")
RECHDR = struct.Struct("<IHHQ")
TENSOR = struct.Struct("<qqiBBBB8q16s8s64sQ")
TIMELINE = struct.Struct("<qqib3s16s64s48sqqiI")
STATS = struct.Struct("<qqiB3s64s16s8s16sqqq")
CORR = struct.Struct("<QQ")
KERNEL = struct.Struct("<QQQII")
COUNTERS = struct.Struct("<16q")
COUNTER_NAMES = ["calls", "tensors", "stats", "bytes", "dropped_tensors", "dropped_budget", "dropped_ring",
                 "skipped_graph", "skipped_unsafe", "cupti_dropped", "iterations"]


def _s(b):
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


def read_spool(path, with_data=True):
    """Returns a dict: header, attrs, tensors (meta + 'data' bytes), timeline, stats, counters,
    clean_end, truncated, and device_ns {call: summed GPU kernel time}."""
    out = {"path": path, "attrs": {}, "tensors": [], "timeline": [], "stats": [], "counters": {},
           "clean_end": False, "truncated": False}
    corr, kernels = {}, []
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < HEADER.size:
        raise ValueError(f"{path}: shorter than the spool header")
    magic, version, hbytes, pid, start_unix, start_mono, _ = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise ValueError(f"{path}: not a cdma spool (bad magic)")
    if version > 1:
        raise ValueError(f"{path}: spool version {version} is newer than this reader (1)")
    out["header"] = {"version": version, "pid": pid, "start_unix_ns": start_unix, "start_mono_ns": start_mono}
    pos = max(hbytes, HEADER.size)
    while pos < len(data):
        if len(data) - pos < RECHDR.size:
            out["truncated"] = True
            break
        magic, rtype, _, n = RECHDR.unpack_from(data, pos)
        if magic != RECORD_MAGIC or n > len(data) - pos - RECHDR.size:
            out["truncated"] = True
            break
        p = pos + RECHDR.size
        pos = p + n
        if rtype == T_ATTR:
            kb, vb = struct.unpack_from("<II", data, p)
            k = data[p + 8:p + 8 + kb].decode()
            out["attrs"][k] = data[p + 8 + kb:p + 8 + kb + vb].decode("utf-8", "replace")
        elif rtype == T_TENSOR:
            (call, it, li, phase, dt, lay, nd, *rest) = TENSOR.unpack_from(data, p)
            dims, op, role, layer, nbytes = rest[:8][:nd], _s(rest[8]), _s(rest[9]), _s(rest[10]), rest[11]
            t = {"call": call, "iteration": it, "layer_index": li, "phase": "forward" if phase == 0 else "backward",
                 "dtype": DTYPES[dt], "layout": LAYOUTS[lay], "dims": list(dims), "op": op, "role": role,
                 "layer": layer, "bytes": nbytes}
            if with_data:
                t["data"] = data[p + TENSOR.size:p + TENSOR.size + nbytes]
            out["tensors"].append(t)
        elif rtype == T_TIMELINE:
            call, it, li, ph, _, op, layer, api, s, e, status, flags = TIMELINE.unpack_from(data, p)
            out["timeline"].append({"call": call, "iteration": it, "layer_index": li, "phase": ph, "op": _s(op),
                                    "layer": _s(layer), "api": _s(api), "start_ns": s, "end_ns": e,
                                    "status": status, "flags": flags})
        elif rtype == T_STATS:
            call, it, li, ph, _, layer, op, role, dt, el, nz, runs = STATS.unpack_from(data, p)
            out["stats"].append({"call": call, "iteration": it, "layer_index": li, "layer": _s(layer), "op": _s(op),
                                 "role": _s(role), "dtype": _s(dt), "elements": el, "nonzeros": nz,
                                 "zero_runs": runs})
        elif rtype == T_CORR:
            c, call = CORR.unpack_from(data, p)
            corr[c] = call
        elif rtype == T_KERNEL:
            kernels.append(KERNEL.unpack_from(data, p))
        elif rtype in (T_COUNTERS, T_END):
            vals = COUNTERS.unpack_from(data, p)
            out["counters"] = dict(zip(COUNTER_NAMES, vals))
            out["clean_end"] = out["clean_end"] or rtype == T_END
    dev = {}
    for c, start, end, _dev, _kind in kernels:
        if c in corr and end >= start:
            dev[corr[c]] = dev.get(corr[c], 0) + (end - start)
    out["device_ns"] = dev
    return out


def tensor_array(t):
    """The tensor as a numpy array of its dims (needs numpy)."""
    import numpy as np
    dt = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16, "int8": np.int8,
          "uint8": np.uint8}[t["dtype"]]
    return np.frombuffer(t["data"], dtype=dt).reshape(t["dims"])


def density(t):
    """Fraction of elements whose bits are not all zero (CODECS.md)."""
    w = DTYPE_SIZE[DTYPES.index(t["dtype"])]
    b = t["data"]
    try:
        import numpy as np
        a = np.frombuffer(b, dtype={4: np.uint32, 2: np.uint16, 1: np.uint8}[w])
        return float(np.count_nonzero(a)) / max(1, a.size)
    except ImportError:
        n = len(b) // w
        nz = sum(1 for i in range(n) if any(b[i * w:(i + 1) * w]))
        return nz / max(1, n)


def summary(sp):
    tl = sp["timeline"]
    return {"path": sp["path"], "pid": sp["header"]["pid"], "tensors": len(sp["tensors"]),
            "tensor_bytes": sum(t["bytes"] for t in sp["tensors"]), "stats_rows": len(sp["stats"]),
            "timeline_rows": len(tl), "timed_rows": sum(1 for r in tl if r["call"] in sp["device_ns"]),
            "layers": sorted({t["layer"] for t in sp["tensors"]}), "clean_end": sp["clean_end"],
            "truncated": sp["truncated"], "counters": sp["counters"], "attrs": sp["attrs"]}


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if not args or "--help" in sys.argv:
        print(__doc__.strip())
        sys.exit(0 if "--help" in sys.argv else 2)
    res = [summary(read_spool(a, with_data=False)) for a in args]
    if "--json" in sys.argv:
        print(json.dumps(res, indent=1))
    else:
        for s in res:
            print(f"{s['path']}: pid {s['pid']}, {s['tensors']} tensors ({s['tensor_bytes']} B), "
                  f"{s['stats_rows']} stats rows, {s['timeline_rows']} timeline rows "
                  f"({s['timed_rows']} with GPU time), clean_end={s['clean_end']}")
