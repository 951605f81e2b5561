"""Damages a trace in one specific way, for the bad-input tests.
Usage: h5py_mutate.py FILE ACTION [ARGS...]
  not-a-trace                      (creates FILE as a plain HDF5 file with one dataset)
  del-root ATTR                    set-root-int ATTR VALUE
  del-tensor TENSOR ATTR           set-tensor-str TENSOR ATTR VALUE
  set-tensor-int8 TENSOR ATTR VALUE"""
import sys

import h5py
import numpy as np

path, action, *args = sys.argv[1:]
if action == "not-a-trace":
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=np.arange(10))
    sys.exit(0)
with h5py.File(path, "r+") as f:
    if action == "del-root":
        del f.attrs[args[0]]
    elif action == "set-root-int":
        f.attrs[args[0]] = np.int32(int(args[1]))
    elif action == "del-tensor":
        del f["tensors"][args[0]].attrs[args[1]]
    elif action == "set-tensor-int8":
        f["tensors"][args[0]].attrs[args[1]] = np.int8(int(args[2]))
    elif action == "set-tensor-str":
        f["tensors"][args[0]].attrs[args[1]] = args[2]
    else:
        sys.exit("unknown action " + action)
