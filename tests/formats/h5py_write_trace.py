"""Writes a trace per docs/spec/TRACE_FORMAT.md with h5py alone (no cdma code), as another
producer would: variable-length string attributes, python ints (int64), a chunked+shuffle+deflate
dataset, float16 and bfloat16 (uint16 + dtype attribute), /timeline and /stats compound datasets.

Usage: h5py_write_trace.py OUT.h5 EXPECTED.json
EXPECTED.json receives what a reader must find (for the C++ test to compare)."""
import json
import sys

import h5py
import numpy as np

out, expected_path = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(7)
expected = {"tensors": []}

with h5py.File(out, "w") as f:
    f.attrs["format"] = "cdma-trace"
    f.attrs["format_version"] = np.int32(1)
    f.attrs["producer"] = "h5py-test 1.0"
    f.attrs["source"] = "synthetic"
    f.attrs["created"] = "2026-11-26T00:00:00Z"
    f.attrs["complete"] = np.int8(1)
    f.attrs["model"] = "tiny"
    f.attrs["dropped_tensors"] = 3
    g = f.create_group("tensors")

    def add(seq, arr, dtype_name, layout, layer, layer_index, op, offload=None, phase="forward", **kw):
        name = "%010d" % seq
        d = g.create_dataset(name, data=arr, **kw)
        d.attrs["iteration"] = seq // 2
        d.attrs["layer"] = layer
        d.attrs["layer_index"] = np.int32(layer_index)
        d.attrs["op"] = op
        d.attrs["role"] = "x"
        d.attrs["phase"] = phase
        if offload is not None:  # h5py's own int8, as another producer would write it
            d.attrs["offload"] = np.int8(offload)
        d.attrs["layout"] = layout
        d.attrs["dtype"] = dtype_name
        d.attrs["call"] = seq * 10
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        expected["tensors"].append({"name": name, "dims": list(arr.shape), "dtype": dtype_name,
                                    "layout": layout, "layer": layer, "layer_index": layer_index,
                                    "op": op, "iteration": seq // 2, "call": seq * 10, "offload": offload,
                                    "offloaded": bool(offload) if offload is not None else phase == "forward",
                                    "hex": raw.hex()})

    a = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    a[a < 0] = 0
    add(0, a, "float32", "NCHW", "conv1", 0, "conv")
    b = np.maximum(rng.standard_normal((2, 4, 5, 3)), 0).astype(np.float16)
    add(1, b, "float16", "NHWC", "relu1", 1, "relu", offload=0, chunks=(1, 4, 5, 3), shuffle=True,
        compression="gzip")
    c = rng.integers(0, 65535, size=(3, 7), dtype=np.uint16)
    add(2, c, "bfloat16", "NC", "fc1", 2, "linear", offload=1)
    d8 = rng.integers(-128, 127, size=(1, 2, 3, 3), dtype=np.int8)
    add(3, d8, "int8", "CHWN", "pool1", 3, "pool", phase="backward")
    u8 = rng.integers(0, 255, size=(4, 2), dtype=np.uint8)
    add(4, u8, "uint8", "NC", "fc2", 4, "linear")

    tl = np.dtype([("iteration", "<i8"), ("call", "<i8"), ("layer_index", "<i4"), ("phase", "i1"),
                   ("op", "S16"), ("layer", "S64"), ("start_ns", "<i8"), ("end_ns", "<i8"),
                   ("device_ns", "<i8")])
    rows = np.array([(0, 1, 0, 0, b"conv", b"conv1", 100, 250, 120),
                     (0, 2, 0, 1, b"conv", b"conv1", 300, 500, -1)], dtype=tl)
    f.create_dataset("timeline", data=rows, maxshape=(None,), chunks=(16,))
    st = np.dtype([("iteration", "<i8"), ("call", "<i8"), ("layer_index", "<i4"), ("layer", "S64"),
                   ("op", "S16"), ("role", "S8"), ("dtype", "S16"), ("elements", "<i8"),
                   ("nonzeros", "<i8"), ("zero_runs", "<i8")])
    srows = np.array([(5, 9, 1, b"relu1", b"relu", b"x", b"float32", 1000, 400, 77)], dtype=st)
    f.create_dataset("stats", data=srows)

expected["timeline"] = [[0, 1, 0, 0, "conv", "conv1", 100, 250, 120], [0, 2, 0, 1, "conv", "conv1", 300, 500, -1]]
expected["stats"] = [[5, 9, 1, "relu1", "relu", "x", "float32", 1000, 400, 77]]
with open(expected_path, "w") as fh:
    json.dump(expected, fh)
