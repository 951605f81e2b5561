"""Opens a trace with h5py and reads every tensor fully; prints the number of tensors.
Usage: h5py_list.py TRACE.h5 -- exits non-zero if h5py cannot open or read it."""
import sys

import h5py

with h5py.File(sys.argv[1], "r") as f:
    n = 0
    for name in sorted(f["tensors"].keys()):
        f["tensors"][name][()]
        n += 1
    print(n)
