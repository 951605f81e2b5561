"""Writes a trace holding one float32 NCHW tensor of shape (1, 1, 1, N), contiguous, 1.0 at the given
element positions and zeros elsewhere. Only those elements are written, so the file is sparse: a
tensor of several GiB costs a few KB of disk. Usage: py_big_trace.py OUT N POS[,POS...]"""
import sys

import h5py
import numpy as np

out, n, positions = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3].split(",")]
with h5py.File(out, "w") as f:
    for k, v in [("format", "cdma-trace"), ("producer", "py_big_trace"), ("source", "synthetic"),
                 ("created", "2026-01-01T00:00:00Z")]:
        f.attrs[k] = v
    f.attrs["format_version"] = np.int32(1)
    f.attrs["complete"] = np.int8(1)
    d = f.create_group("tensors").create_dataset("0000000000", shape=(1, 1, 1, n), dtype="<f4")
    for p in positions:
        d[0, 0, 0, p] = 1.0
    for k, v in [("layer", "big"), ("op", "conv"), ("role", "x"), ("phase", "forward"), ("layout", "NCHW"),
                 ("dtype", "float32")]:
        d.attrs[k] = v
    d.attrs["iteration"] = np.int64(0)
    d.attrs["layer_index"] = np.int32(0)
