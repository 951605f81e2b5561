"""Writes a trace with h5py in which every third tensor is deflate-compressed and its compressed bytes
then overwritten with garbage: the metadata is fine (the tensor is planned), reading its data
fails, and -k skips them one by one; for the split-run tests, where with several such tensors in
one trace the order of the skips across parts is visible.
Usage: h5py_many_bad.py OUT COUNT"""
import os
import sys

import h5py
import numpy as np

out, count = sys.argv[1], int(sys.argv[2])
A = np.arange(64, dtype="<f4").reshape(4, 16)
A[A % 3 == 0] = 0

with h5py.File(out, "w") as f:
    for k, v in [("format", "cdma-trace"), ("producer", "h5py-test"), ("source", "synthetic"),
                 ("created", "2026-01-01T00:00:00Z")]:
        f.attrs[k] = v
    f.attrs["format_version"] = np.int32(1)
    f.attrs["complete"] = np.int8(1)
    g = f.create_group("tensors")
    bad = []
    for i in range(count):
        name = "%010d" % i
        if i % 3 != 1:
            d = g.create_dataset(name, data=A * (i + 1))
        else:
            d = g.create_dataset(name, data=A * (i + 1), chunks=(4, 16), compression="gzip")
            bad.append(name)
        d.attrs["iteration"] = np.int64(i // 4)
        d.attrs["layer"] = "l%d" % (i % 4)
        d.attrs["layer_index"] = np.int32(i % 4)
        d.attrs["op"] = "conv"
        d.attrs["role"] = "x"
        d.attrs["phase"] = "forward"
        d.attrs["layout"] = "NC"
        d.attrs["dtype"] = "float32"

with h5py.File(out, "r") as f:
    spans = [(f["tensors"][n].id.get_chunk_info(0).byte_offset, f["tensors"][n].id.get_chunk_info(0).size)
             for n in bad]
with open(out, "r+b") as raw:
    for off, size in spans:
        raw.seek(off)
        raw.write(b"\xff" * size)
