"""Writes a small trace with h5py (two whole float32 NC tensors, 0000000000 and 0000000001) and then
damages it in one way, for the reliability tests. Usage: h5py_damaged.py OUT KIND
  good                 the trace as is
  bad-utf8-layer       tensor 1's layer = b"\\xff\\xfe\\x80bad" (not UTF-8; as h5py stores bytes)
  bad-utf8-name        tensor 1 renamed to b"\\xff\\xfe" (a dataset name that is not UTF-8)
  complete-5           root attribute complete = 5
  dims-overflow        tensor 1 replaced by a chunked (2^32, 2^32, 4, 1) float32 NCHW dataset, never written
  unwritten            tensor 1 replaced by a dataset created without data
  part-written         tensor 1 chunked in 2 chunks, only the first written
  virtual              tensor 1 a virtual dataset whose source file is missing
  external             tensor 1 stored in an external raw file that is too short
  compact              tensor 1 in compact storage
  in-flight            tensor 1 lacks 'iteration' and complete = 0 (a producer stopped while writing it)
  in-flight-complete   tensor 1 lacks 'iteration' but complete = 1
  stats-huge           a /stats row of 2^62 elements"""
import os
import sys

import h5py
import numpy as np

out, kind = sys.argv[1:3]
A = np.arange(16, dtype="<f4").reshape(4, 4)


def attrs(d, layer, it):
    d.attrs["iteration"] = np.int64(it)
    d.attrs["layer"] = layer
    d.attrs["layer_index"] = np.int32(it)
    d.attrs["op"] = "conv"
    d.attrs["role"] = "x"
    d.attrs["phase"] = "forward"
    d.attrs["layout"] = "NC"
    d.attrs["dtype"] = "float32"


with h5py.File(out, "w") as f:
    for k, v in [("format", "cdma-trace"), ("producer", "h5py-test"), ("source", "synthetic"),
                 ("created", "2026-01-01T00:00:00Z")]:
        f.attrs[k] = v
    f.attrs["format_version"] = np.int32(1)
    f.attrs["complete"] = np.int8(1)
    g = f.create_group("tensors")
    attrs(g.create_dataset("0000000000", data=A), "l0", 0)
    t1 = "0000000001"
    if kind in ("good", "bad-utf8-layer", "bad-utf8-name", "complete-5", "in-flight", "in-flight-complete",
                "stats-huge"):
        attrs(g.create_dataset(t1, data=A * 2), "l1", 1)
    elif kind == "dims-overflow":
        d = g.create_dataset(t1, shape=(2**32, 2**32, 4, 1), dtype="<f4", chunks=(1, 1, 4, 1))
        attrs(d, "l1", 1)
        d.attrs["layout"] = "NCHW"
    elif kind == "unwritten":
        attrs(g.create_dataset(t1, shape=(4, 4), dtype="<f4"), "l1", 1)
    elif kind == "part-written":
        d = g.create_dataset(t1, shape=(4, 4), dtype="<f4", chunks=(2, 4))
        d[0:2] = A[0:2]
        attrs(d, "l1", 1)
    elif kind == "virtual":
        layout = h5py.VirtualLayout(shape=(4, 4), dtype="<f4")
        layout[:] = h5py.VirtualSource(os.path.join(os.path.dirname(out) or ".", "missing-source.h5"), "data",
                                       shape=(4, 4))
        attrs(g.create_virtual_dataset(t1, layout, fillvalue=0), "l1", 1)
    elif kind == "external":
        raw = out + ".raw"
        with open(raw, "wb") as r:
            r.write(b"\x01\x02\x03\x04")  # 4 of the 64 bytes the dataset claims
        attrs(g.create_dataset(t1, shape=(4, 4), dtype="<f4", external=[(os.path.basename(raw), 0, 64)]), "l1", 1)
    elif kind == "compact":
        tid = h5py.h5t.py_create(np.dtype("<f4"))
        space = h5py.h5s.create_simple((4, 4))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        dsid = h5py.h5d.create(g.id, t1.encode(), tid, space, dcpl=dcpl)
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(A * 2))
        attrs(g[t1], "l1", 1)
    else:
        sys.exit("unknown kind " + kind)

    if kind == "bad-utf8-layer":
        g[t1].attrs["layer"] = np.bytes_(b"\xff\xfe\x80bad")
    elif kind == "bad-utf8-name":
        g[b"\xff\xfe"] = g[t1]
        del g[t1]
    elif kind == "complete-5":
        f.attrs["complete"] = np.int8(5)
    elif kind in ("in-flight", "in-flight-complete"):
        del g[t1].attrs["iteration"]
        if kind == "in-flight":
            f.attrs["complete"] = np.int8(0)
    elif kind == "stats-huge":
        dt = np.dtype([("iteration", "<i8"), ("call", "<i8"), ("layer_index", "<i4"), ("layer", "S64"),
                       ("op", "S16"), ("role", "S8"), ("dtype", "S16"), ("elements", "<i8"), ("nonzeros", "<i8"),
                       ("zero_runs", "<i8")])
        rows = np.array([(0, 0, 0, b"huge", b"conv", b"x", b"float32", 2**62, 2**61, 1)], dtype=dt)
        f.create_dataset("stats", data=rows, maxshape=(None,), chunks=(16,))
