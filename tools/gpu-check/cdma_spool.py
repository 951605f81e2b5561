#!/usr/bin/env python3
"""Reference reader of the cdma capture spool, version 1 (capture/include/cdma/capture/spool.hpp).

Standard library only (numpy optional), so it runs on a GPU machine that has none of this
project's libraries. It streams: records are read one at a time and tensor data only for the
tensors a caller asks for, one tensor in memory at a time, so a spool of many GiB needs little
memory. `python3 cdma_spool.py SPOOL... [--json]` prints what each spool holds.
"""
import array
import hashlib
import json
import os
import struct
import sys

MAGIC = b"CDMASPL1"
RECORD_MAGIC = 0x52414D43
T_ATTR, T_TENSOR, T_TIMELINE, T_STATS, T_CORR, T_KERNEL, T_COUNTERS, T_END = range(1, 9)
# RecordHeader.flags of tensor and stats records (0 in spools written before they existed).
F_OFFLOAD_KNOWN, F_OFFLOAD, F_INPLACE = 1, 2, 4
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
                 "skipped_graph", "skipped_unsafe", "cupti_dropped", "iterations", "skipped_failed"]
FIXED = {T_TIMELINE: TIMELINE.size, T_STATS: STATS.size, T_CORR: CORR.size, T_KERNEL: KERNEL.size,
         T_COUNTERS: COUNTERS.size, T_END: COUNTERS.size}


class SpoolError(ValueError):
    """The file is not a spool, or a record is damaged (the message names file and offset)."""


def _s(b):
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


def _offload(flags):
    return bool(flags & F_OFFLOAD) if flags & F_OFFLOAD_KNOWN else None


def read_spool(path, with_data=False, want=None, on_tensor=None):
    """Reads a spool record by record. Returns a dict: header, attrs, tensors (metadata; 'data'
    bytes only with with_data), timeline, stats, counters, clean_end, truncated, damaged (None or
    what is wrong), and device_ns {call: summed GPU kernel time}.

    want(meta) -> bool chooses the tensors whose data is read (default: all when with_data or
    on_tensor is given, else none); on_tensor(meta, data) sees each such tensor's bytes, which are
    dropped afterwards unless with_data. A cut-short last record (crash) sets truncated; a bad
    record magic with more bytes after it sets damaged and stops, like the collector."""
    out = {"path": path, "attrs": {}, "tensors": [], "timeline": [], "stats": [], "counters": {},
           "clean_end": False, "truncated": False, "damaged": None}
    corr, kernels = {}, []
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(HEADER.size)
        if len(head) < HEADER.size:
            raise SpoolError(f"{path}: shorter than the spool header")
        magic, version, hbytes, pid, start_unix, start_mono, _ = HEADER.unpack(head)
        if magic != MAGIC:
            raise SpoolError(f"{path}: not a cdma spool (bad magic)")
        if version > 1:
            raise SpoolError(f"{path}: spool version {version} is newer than this reader (1)")
        if version == 0 or hbytes < HEADER.size or hbytes > size:
            raise SpoolError(f"{path}: damaged file header")
        out["header"] = {"version": version, "pid": pid, "start_unix_ns": start_unix, "start_mono_ns": start_mono}
        pos = hbytes
        while pos < size:
            f.seek(pos)
            if size - pos < RECHDR.size:
                out["truncated"] = True
                break
            magic, rtype, flags, n = RECHDR.unpack(f.read(RECHDR.size))
            if magic != RECORD_MAGIC:
                out["damaged"] = f"record at offset {pos}: bad record magic 0x{magic:08x}"
                break
            if n > size - pos - RECHDR.size:
                out["truncated"] = True
                break
            here, pos = pos, pos + RECHDR.size + n
            if rtype in FIXED and n != FIXED[rtype]:
                out["damaged"] = f"record at offset {here}: type {rtype} of {n} bytes, expected {FIXED[rtype]}"
                break
            if rtype == T_ATTR:
                p = f.read(n)
                if n < 8:
                    out["damaged"] = f"record at offset {here}: attribute record of {n} bytes"
                    break
                kb, vb = struct.unpack_from("<II", p, 0)
                if 8 + kb + vb != n:
                    out["damaged"] = f"record at offset {here}: attribute lengths do not fill the record"
                    break
                out["attrs"][p[8:8 + kb].decode("utf-8", "replace")] = p[8 + kb:8 + kb + vb].decode("utf-8", "replace")
            elif rtype == T_TENSOR:
                if n < TENSOR.size:
                    out["damaged"] = f"record at offset {here}: tensor record of {n} bytes"
                    break
                (call, it, li, phase, dt, lay, nd, *rest) = TENSOR.unpack(f.read(TENSOR.size))
                if dt >= len(DTYPES) or lay >= len(LAYOUTS) or nd != (2 if lay == 3 else 4):
                    out["damaged"] = f"record at offset {here}: tensor with dtype {dt}, layout {lay}, rank {nd}"
                    break
                dims, op, role, layer, nbytes = list(rest[:nd]), _s(rest[8]), _s(rest[9]), _s(rest[10]), rest[11]
                count = DTYPE_SIZE[dt]
                for d in dims:
                    count *= d
                if nbytes != n - TENSOR.size or nbytes != count:
                    out["damaged"] = f"record at offset {here}: tensor of call {call} holds {n - TENSOR.size} " \
                                     f"bytes, its dims need {count}"
                    break
                t = {"call": call, "iteration": it, "layer_index": li, "phase": "forward" if phase == 0 else "backward",
                     "dtype": DTYPES[dt], "layout": LAYOUTS[lay], "dims": dims, "op": op, "role": role,
                     "layer": layer, "bytes": nbytes, "offload": _offload(flags), "inplace": bool(flags & F_INPLACE),
                     "data_offset": here + RECHDR.size + TENSOR.size}
                read = want(t) if want else (with_data or on_tensor is not None)
                if read:
                    data = f.read(nbytes)
                    if on_tensor:
                        on_tensor(t, data)
                    if with_data:
                        t["data"] = data
                out["tensors"].append(t)
            elif rtype == T_TIMELINE:
                call, it, li, ph, _, op, layer, api, s, e, status, tflags = TIMELINE.unpack(f.read(n))
                out["timeline"].append({"call": call, "iteration": it, "layer_index": li, "phase": ph, "op": _s(op),
                                        "layer": _s(layer), "api": _s(api), "start_ns": s, "end_ns": e,
                                        "status": status, "flags": tflags})
            elif rtype == T_STATS:
                call, it, li, ph, _, layer, op, role, dt, el, nz, runs = STATS.unpack(f.read(n))
                out["stats"].append({"call": call, "iteration": it, "layer_index": li, "layer": _s(layer),
                                     "op": _s(op), "role": _s(role), "dtype": _s(dt), "elements": el, "nonzeros": nz,
                                     "zero_runs": runs, "offload": _offload(flags),
                                     "inplace": bool(flags & F_INPLACE)})
            elif rtype == T_CORR:
                c, call = CORR.unpack(f.read(n))
                corr[c] = call
            elif rtype == T_KERNEL:
                kernels.append(KERNEL.unpack(f.read(n)))
            elif rtype in (T_COUNTERS, T_END):
                vals = COUNTERS.unpack(f.read(n))
                out["counters"] = dict(zip(COUNTER_NAMES, vals))
                out["clean_end"] = out["clean_end"] or rtype == T_END
            else:
                out["damaged"] = f"record at offset {here}: unknown record type {rtype}"
                break
    dev = {}
    for c, start, end, _dev, _kind in kernels:
        if c in corr and end >= start:
            dev[corr[c]] = dev.get(corr[c], 0) + (end - start)
    out["device_ns"] = dev
    out["cupti_records"] = len(corr) + len(kernels)
    return out


def tensor_array(t, data=None):
    """The tensor as a numpy array of its dims (needs numpy)."""
    import numpy as np
    dt = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16, "int8": np.int8,
          "uint8": np.uint8}[t["dtype"]]
    return np.frombuffer(t["data"] if data is None else data, dtype=dt).reshape(t["dims"])


def density(t, data=None):
    """Fraction of elements whose bits are not all zero (docs/spec/CODECS.md)."""
    w = DTYPE_SIZE[DTYPES.index(t["dtype"])]
    b = t["data"] if data is None else data
    n = len(b) // w
    if n == 0:
        return 0.0
    try:
        import numpy as np
        a = np.frombuffer(b, dtype={4: np.uint32, 2: np.uint16, 1: np.uint8}[w])
        return float(np.count_nonzero(a)) / a.size
    except ImportError:
        if w == 1:
            return (n - b.count(0)) / n
        a = array.array({4: "I", 2: "H"}[w])
        if a.itemsize != w:  # platform without a C type of that width: word by word
            return sum(1 for i in range(n) if any(b[i * w:(i + 1) * w])) / n
        a.frombytes(b)
        return (n - a.count(0)) / n


def sha1(data):
    return hashlib.sha1(data).hexdigest()


def summary(sp):
    tl = sp["timeline"]
    return {"path": sp["path"], "pid": sp["header"]["pid"], "tensors": len(sp["tensors"]),
            "tensor_bytes": sum(t["bytes"] for t in sp["tensors"]), "stats_rows": len(sp["stats"]),
            "timeline_rows": len(tl), "timed_rows": sum(1 for r in tl if r["call"] in sp["device_ns"]),
            "offloaded": sum(1 for t in sp["tensors"] if t["offload"]),
            "layers": sorted({t["layer"] for t in sp["tensors"]}), "clean_end": sp["clean_end"],
            "truncated": sp["truncated"], "damaged": sp["damaged"], "counters": sp["counters"],
            "attrs": sp["attrs"]}


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if not args or "--help" in sys.argv:
        print(__doc__.strip())
        sys.exit(0 if "--help" in sys.argv else 2)
    try:
        res = [summary(read_spool(a)) for a in args]
    except (OSError, SpoolError) as e:
        print(f"cdma_spool.py: {e}", file=sys.stderr)
        sys.exit(1)
    if "--json" in sys.argv:
        print(json.dumps(res, indent=1))
    else:
        for s in res:
            print(f"{s['path']}: pid {s['pid']}, {s['tensors']} tensors ({s['tensor_bytes']} B, {s['offloaded']} "
                  f"offloaded), {s['stats_rows']} stats rows, {s['timeline_rows']} timeline rows "
                  f"({s['timed_rows']} with GPU time), clean_end={s['clean_end']}"
                  + (f", DAMAGED: {s['damaged']}" if s["damaged"] else ""))
    sys.exit(1 if any(s["damaged"] for s in res) else 0)
