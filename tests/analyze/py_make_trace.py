"""Writes a small trace with h5py alone (no cdma code), for the analyzer's exactness tests: fp32,
fp16 and bf16 tensors in NCHW, NHWC, CHWN and NC layouts, edge values (-0.0, NaN, values that
underflow or tie when rounded to fp16/bf16), long zero runs, an int8 tensor, a chunked+deflate
dataset, and a /stats table. The `offload` attribute is absent on most tensors (the format's default
rule applies), 0 on the input of an in-place ReLU and 1 on one conv input.

Usage: py_make_trace.py OUT.h5"""
import sys

import h5py
import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(11)


def relu_like(shape, density, dtype=np.float32):
    a = rng.exponential(1.0, size=shape).astype(np.float32)
    a[rng.random(shape) >= density] = 0
    return a.astype(dtype)


with h5py.File(out, "w") as f:
    f.attrs["format"] = "cdma-trace"
    f.attrs["format_version"] = np.int32(1)
    f.attrs["producer"] = "h5py-analyze-test 1.0"
    f.attrs["source"] = "h5py"
    f.attrs["created"] = "2026-11-26T00:00:00Z"
    f.attrs["complete"] = np.int8(1)
    f.attrs["model"] = "pytiny"
    g = f.create_group("tensors")
    seq = [0]

    def add(arr, dtype_name, layout, layer, layer_index, op, iteration, role="x", offload=None, **kw):
        name = "%010d" % seq[0]
        seq[0] += 1
        d = g.create_dataset(name, data=arr, **kw)
        d.attrs["iteration"] = iteration
        d.attrs["layer"] = layer
        d.attrs["layer_index"] = np.int32(layer_index)
        d.attrs["op"] = op
        d.attrs["role"] = role
        d.attrs["phase"] = "forward"
        d.attrs["layout"] = layout
        d.attrs["dtype"] = dtype_name
        if offload is not None:
            d.attrs["offload"] = np.int8(offload)

    for it in range(2):
        a = relu_like((2, 8, 6, 5), 0.4)
        a[:, 3] = 0                      # a dead channel: one long run in NCHW only
        a[0, 0, 0, 0] = -0.0             # nonzero bits
        a[0, 0, 0, 1] = np.float32("nan")
        a[0, 1, 0, 0] = 1e-9             # underflows to zero in fp16
        a[0, 1, 0, 1] = np.float32(2.0 ** -25)  # exact tie: rounds to fp16 zero (even)
        a[0, 1, 0, 2] = np.float32(1.0 + 2.0 ** -11)  # tie in fp16: rounds to even (1.0)
        a[0, 1, 0, 3] = np.float32(1.0 + 2.0 ** -8)   # tie in bf16: rounds to even (1.0)
        a[0, 1, 0, 4] = np.float32(70000.0)           # overflows fp16 -> inf
        add(a, "float32", "NCHW", "conv1", 0, "conv", it)
        b = relu_like((2, 5, 6, 8), 0.3, np.float16)
        b[1, :, :, 2] = 0                # a dead channel in NHWC
        add(b, "float16", "NHWC", "relu1", 1, "relu", it, offload=0, chunks=(1, 5, 6, 8), shuffle=True,
            compression="gzip")
        c = relu_like((4, 40), 0.2)
        cb = (c.view(np.uint32) >> 16).astype(np.uint16)  # truncated to bfloat16 bits
        add(cb, "bfloat16", "NC", "fc1", 2, "linear", it)
        e = relu_like((8, 4, 4, 2), 0.1)
        e.reshape(-1)[20:140] = 0        # runs longer than 16 and 64
        add(e, "float32", "CHWN", "conv2", 3, "conv", it, offload=1)
    add(rng.integers(-3, 3, size=(1, 2, 3, 3), dtype=np.int8), "int8", "NCHW", "q1", 4, "other", 0)
    add(relu_like((3, 50), 0.5), "float32", "NC", "fc2", 5, "linear", 1, role="y")

    st = np.dtype([("iteration", "<i8"), ("call", "<i8"), ("layer_index", "<i4"), ("layer", "S64"),
                   ("op", "S16"), ("role", "S8"), ("dtype", "S16"), ("elements", "<i8"),
                   ("nonzeros", "<i8"), ("zero_runs", "<i8")])
    rows = np.array([
        (0, 100, 6, b"convS", b"conv", b"x", b"float32", 1000, 300, 10),   # long runs: ZRLE a bound
        (1, 101, 6, b"convS", b"conv", b"x", b"float32", 64, 40, 12),      # runs <= 2 each: exact
        (1, 102, 7, b"reluS", b"relu", b"x", b"float16", 100, 100, 0),     # dense
    ], dtype=st)
    f.create_dataset("stats", data=rows, maxshape=(None,), chunks=True)
