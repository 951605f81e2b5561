"""Independent check of `cdma analyze --json` output against the trace read with h5py + numpy.

For every tensor row: the variant's bytes (layout permuted with numpy.transpose, fp16 with numpy's
astype, bf16 by integer rounding), elements, nonzeros, zero runs, and the sizes of real ZVC and
ZRLE-k encoders written here from docs/spec/CODECS.md, and zlib (Python's zlib module); chunked when the
analysis was. Then every aggregation level is recomputed from these numbers, and /stats rows are
checked against docs/spec/CODECS.md's formulas. zstd and lz4 are checked by the C++ tests (direct library
calls). Prints the mismatches; exits 1 when there is any.

Usage: py_check_analysis.py TRACE.h5 ANALYSIS.json"""
import json
import math
import sys
import zlib
from collections import defaultdict

import h5py
import numpy as np

trace_path, json_path = sys.argv[1], sys.argv[2]
A = json.load(open(json_path))
errors = []


def err(msg):
    errors.append(msg)
    if len(errors) < 50:
        print("MISMATCH:", msg)


assert A["schema"] == "cdma-analysis" and A["schema_version"] == 1
codecs = A["options"]["codecs"]
chunk = A["options"]["chunk_bytes"]
WIDTH = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "uint8": 1}


def bf16_from_f32_bits(u):
    u = u.astype(np.uint64)
    nan = ((u & 0x7F800000) == 0x7F800000) & ((u & 0x7FFFFF) != 0)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF
    r = np.where(nan, (u >> 16) | 0x40, r)
    return r.astype(np.uint16)


def to_f32_bits(raw, dtype):
    if dtype == "float32":
        return raw.view(np.uint32)
    if dtype == "float16":
        return raw.view(np.float16).astype(np.float32).view(np.uint32)
    if dtype == "bfloat16":
        return raw.view(np.uint16).astype(np.uint32) << 16
    return None


def convert(raw, dtype, target):
    """raw: 1-D uint8 array of the stored bytes. Returns (bytes, actual dtype)."""
    if target == "stored" or dtype not in ("float32", "float16", "bfloat16") or target == dtype:
        return raw, dtype
    bits = to_f32_bits(raw, dtype)
    if target == "float16":
        out = bits.view(np.float32).astype(np.float16).view(np.uint8)
    else:
        out = bf16_from_f32_bits(bits).view(np.uint8)
    return np.ascontiguousarray(out).reshape(-1), target


def permute(raw, dims, width, layout, target):
    if target == "stored" or layout == "NC" or len(dims) != 4 or target == layout:
        return raw, layout
    arr = raw.view({1: np.uint8, 2: np.uint16, 4: np.uint32}[width]).reshape(dims)
    perm = [layout.index(ch) for ch in target]
    return np.ascontiguousarray(arr.transpose(perm)).view(np.uint8).reshape(-1), target


def nonzero_mask(raw, width):
    return raw.reshape(-1, width).any(axis=1) if raw.size else np.zeros(0, bool)


def zero_runs_of(nz):
    runs, cur, lengths = 0, 0, []
    for z in ~nz:
        if z:
            cur += 1
        elif cur:
            lengths.append(cur)
            cur = 0
    if cur:
        lengths.append(cur)
    return lengths


def zvc_encode(raw, width):
    out = bytearray()
    elems = raw.reshape(-1, width)
    n = elems.shape[0]
    for b in range(0, n, 32):
        blk = elems[b:b + 32]
        mask = 0
        payload = bytearray()
        for i, e in enumerate(blk):
            if e.any():
                mask |= 1 << i
                payload += e.tobytes()
        out += mask.to_bytes(4, "little") + payload
    return bytes(out)


def zrle_size(raw, width, k):
    elems = raw.reshape(-1, width)
    acc, pos = 0, 0
    i, n = 0, elems.shape[0]
    nz = nonzero_mask(raw, width)
    while i < n:
        if nz[i]:
            acc |= 1 << pos
            pos += 1
            acc |= int.from_bytes(elems[i].tobytes(), "little") << pos
            pos += 8 * width
            i += 1
        else:
            j = i
            while j < n and not nz[j] and j - i < (1 << k):
                j += 1
            pos += 1
            acc |= (j - i - 1) << pos
            pos += k
            i = j
    return (pos + 7) // 8


def sizes(raw, width):
    """Compressed size per codec, chunked like the analysis."""
    n = raw.size // width
    step = max(1, chunk // width) if chunk else max(n, 1)
    out = {}
    for c in codecs:
        total = 0
        for first in range(0, max(n, 1), step):
            part = raw[first * width:(first + step) * width]
            if c == "zvc":
                total += len(zvc_encode(part, width))
            elif c.startswith("zrle-"):
                total += zrle_size(part, width, int(c[5:]))
            elif c.startswith("zlib-"):
                total += len(zlib.compress(part.tobytes(), int(c[5:])))
            else:
                total = None
                break
        out[c] = total
    return out


f = h5py.File(trace_path, "r")

# The tensors analysed: the offload set (docs/spec/TRACE_FORMAT.md: `offload` when present, else forward-phase
# x; /stats rows count when their role is x), or every tensor when the analysis says so.
def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


every = A["options"]["filters"].get("tensors") == "all"
want = set()
for name, ds in f["tensors"].items():
    a = ds.attrs
    offloaded = bool(a["offload"]) if "offload" in a else (text(a["phase"]) == "forward" and text(a["role"]) == "x")
    if every or offloaded:
        want.add(name)
for i, s in enumerate(f["stats"][()] if "stats" in f else []):
    if every or s["role"].decode() == "x":
        want.add("stats/%d" % i)
got = {row["name"] for row in A["tensor"] if row["trace"] == 0}
filtered = any(A["options"]["filters"].get(k) is not None for k in ("iterations", "layers", "ops", "roles"))
if not filtered and got != want:
    err("analysed %s, the offload set is %s" % (sorted(got), sorted(want)))
for row in A["tensor"]:
    if row["trace"] == 0 and not row["from_stats"]:
        a = f["tensors"][row["name"]].attrs
        if "offload" in a and row["offload"] != bool(a["offload"]):
            err("%s: offload %s, the file says %s" % (row["name"], row["offload"], a["offload"]))

mine = []  # (row, computed measures)
for row in A["tensor"]:
    if row["trace"] != 0:
        continue
    if row["from_stats"]:
        continue
    ds = f["tensors"][row["name"]]
    dtype = ds.attrs["dtype"]
    dtype = dtype.decode() if isinstance(dtype, bytes) else dtype
    layout = ds.attrs["layout"]
    layout = layout.decode() if isinstance(layout, bytes) else layout
    data = ds[()]
    raw = np.ascontiguousarray(data.astype(data.dtype.newbyteorder("<"))).view(np.uint8).reshape(-1)
    conv, actual_dtype = convert(raw, dtype, row["dtype"])
    w = WIDTH[actual_dtype]
    perm, actual_layout = permute(conv, list(data.shape), w, layout, row["layout"])
    nz = nonzero_mask(perm, w)
    runs = zero_runs_of(nz)
    m = {"elements": int(perm.size // w), "bytes": int(perm.size), "nonzeros": int(nz.sum()),
         "zero_runs": len(runs), "codecs": sizes(perm, w)}
    where = "%s %s/%s" % (row["name"], row["layout"], row["dtype"])
    if row["actual_dtype"] != actual_dtype or row["actual_layout"] != actual_layout:
        err("%s: actual %s/%s, expected %s/%s" % (where, row["actual_layout"], row["actual_dtype"],
                                                  actual_layout, actual_dtype))
    for key in ("elements", "bytes", "nonzeros", "zero_runs"):
        if row[key] != m[key]:
            err("%s: %s %s, expected %s" % (where, key, row[key], m[key]))
    if abs(row["density"] - m["nonzeros"] / m["elements"]) > 1e-12:
        err("%s: density" % where)
    for c in codecs:
        if m["codecs"][c] is None:
            continue
        got = row["codecs"][c]["bytes"]
        if got != m["codecs"][c]:
            err("%s: %s bytes %s, expected %s" % (where, c, got, m["codecs"][c]))
        want_ratio = m["bytes"] / m["codecs"][c]
        if abs(row["codecs"][c]["ratio"] - want_ratio) > 1e-9 * want_ratio:
            err("%s: %s ratio" % (where, c))
    mine.append((row, m))

# /stats rows: ZVC exact, ZRLE-k exact or a lower bound, byte codecs unknown.
stats_rows = f["stats"][()] if "stats" in f else []
for row in A["tensor"]:
    if not row["from_stats"] or row["trace"] != 0:
        continue
    s = stats_rows[int(row["name"].split("/")[1])]
    n, nnz, R = int(s["elements"]), int(s["nonzeros"]), int(s["zero_runs"])
    w = WIDTH[s["dtype"].decode()]
    Z = n - nnz
    where = row["name"]
    if row["nonzeros"] != nnz or row["elements"] != n or row["zero_runs"] != R or row["bytes"] != n * w:
        err("%s: counts" % where)
    for c in codecs:
        got = row["codecs"][c]
        if c == "zvc":
            want = 4 * math.ceil(n / 32) + w * nnz
            if got["bytes"] != want:
                err("%s: zvc %s != %s" % (where, got["bytes"], want))
        elif c.startswith("zrle-") and row["layout"] == "stored":
            k = int(c[5:])
            lo, hi = max(R, math.ceil(Z / 2 ** k)), R + (Z - R) // 2 ** k
            want = math.ceil((nnz * (1 + 8 * w) + lo * (1 + k)) / 8)
            if got["bytes"] != want or got.get("exact", True) != (lo == hi):
                err("%s: %s %s (exact %s), expected %s (exact %s)" % (where, c, got["bytes"],
                                                                      got.get("exact", True), want, lo == hi))
        elif got["bytes"] is not None or got["ratio"] is not None:
            err("%s: %s should be unknown" % (where, c))

# Aggregation levels, recomputed from the per-tensor numbers above (tensor rows with bytes only;
# groups that contain /stats rows are checked for their counts only).
KEYS = {"layer": ("layer", "layer_index", "op", "role"), "iteration": ("iteration",),
        "layer_iteration": ("layer", "layer_index", "op", "role", "iteration"), "network": ()}
stats_keys = defaultdict(set)
for row in A["tensor"]:
    if row["from_stats"]:
        for lvl, keys in KEYS.items():
            stats_keys[lvl].add(tuple([row["trace"], row["layout"], row["dtype"]] + [row[k] for k in keys]))
for lvl, keys in KEYS.items():
    groups = defaultdict(list)
    for row, m in mine:
        groups[tuple([row["trace"], row["layout"], row["dtype"]] + [row[k] for k in keys])].append((row, m))
    seen = set()
    for g in A[lvl]:
        key = tuple([g["trace"], g["layout"], g["dtype"]] + [g[k] for k in keys])
        seen.add(key)
        if key in stats_keys[lvl]:
            continue
        members = groups.get(key)
        if not members:
            err("%s row %s has no tensors" % (lvl, key))
            continue
        tb = sum(m["bytes"] for _, m in members)
        for k2 in ("elements", "bytes", "nonzeros", "zero_runs"):
            if g[k2] != sum(m[k2] for _, m in members):
                err("%s %s: %s" % (lvl, key, k2))
        if g["tensors"] != len(members) or g["iterations"] != len({r["iteration"] for r, _ in members}):
            err("%s %s: tensors/iterations" % (lvl, key))
        for c in codecs:
            if any(m["codecs"][c] is None for _, m in members):
                continue
            cb = sum(m["codecs"][c] for _, m in members)
            mean = sum(m["bytes"] / m["codecs"][c] for _, m in members) / len(members)
            gc = g["codecs"][c]
            if gc["bytes"] != cb or abs(gc["ratio"] - tb / cb) > 1e-9 * tb / cb or \
                    abs(gc["mean_ratio"] - mean) > 1e-9 * mean:
                err("%s %s: %s bytes %s ratio %s mean %s, expected %s %s %s" % (
                    lvl, key, c, gc["bytes"], gc["ratio"], gc["mean_ratio"], cb, tb / cb, mean))
    for key in groups:
        if key not in seen:
            err("%s row %s missing" % (lvl, key))

print("checked %d tensor rows, %d errors" % (len(mine), len(errors)))
sys.exit(1 if errors else 0)
