"""Trace files (docs/spec/TRACE_FORMAT.md) through the project's C++ reader."""

import collections

import numpy as np
import pandas as pd

from . import _native
from ._frame import frame
from .errors import UsageError, path_arg

#: One tensor's metadata, as yielded by iterating over a Trace.
TensorInfo = collections.namedtuple(
    "TensorInfo",
    "index name iteration layer layer_index op role phase layout dtype offload offloaded dims elements bytes call",
)


def bfloat16_to_float32(bits):
    """Widens bfloat16 elements (their 16-bit patterns, as Trace.read() returns them) to float32, exactly."""
    bits = np.asarray(bits)
    if bits.dtype != np.uint16:
        raise TypeError(f"bfloat16 patterns are uint16, not {bits.dtype}")
    return (bits.astype(np.uint32) << 16).view(np.float32)


class Trace:
    """An open trace file: root attributes, tensor metadata, tensor data, /timeline and /stats.

    Opening reads metadata only; tensors are read one at a time (``read``, iteration). The reader
    validates what it lists (trace format v1); a file it refuses raises cdma.TraceError naming the
    file and the object, with the message ``cdma info`` prints.

    ``isolate`` (default True) reads the metadata in a forked child first, so that a damaged file
    that crashes HDF5 raises instead of killing the interpreter. ``skip_bad_tensors`` lists a
    tensor with bad metadata in ``skipped`` instead of refusing the file.
    """

    def __init__(self, path, isolate=True, skip_bad_tensors=False):
        self._reader = _native.TraceReader(path_arg(path, "trace"), isolate, skip_bad_tensors)
        self._path = self._reader.path
        self._columns = None
        self._names = None

    @property
    def _r(self):
        # The native reader; after close() every use is refused with a clear error (not a None).
        if self._reader is None:
            raise UsageError(f"{self._path}: the trace is closed (cdma.open() it again)")
        return self._reader

    @property
    def closed(self):
        """True once close() was called."""
        return self._reader is None

    @property
    def path(self):
        return self._path

    @property
    def attrs(self):
        """Root attributes: producer, source, created, complete, format_version, and model, device,
        framework, command, dropped_tensors (None where the producer did not write them)."""
        return self._r.attrs()

    def attribute(self, name):
        """A string root attribute this API does not model (e.g. cdma-train's ``batch_size``); None if absent."""
        return self._r.root_attribute(name)

    @property
    def warnings(self):
        """The reader's non-fatal findings (e.g. ``complete = 0``), one sentence each."""
        return self._r.warnings()

    @property
    def skipped(self):
        """(object, reason) of each tensor left out with skip_bad_tensors."""
        return self._r.skipped()

    def _cols(self):
        r = self._r  # refuses a closed trace
        if self._columns is None:
            self._columns = r.tensor_columns()
            self._names = {n: i for i, n in enumerate(self._columns["name"])}
        return self._columns

    def __len__(self):
        return self._r.tensor_count()

    def tensors(self):
        """Metadata of every tensor, one row each in capture order, as a DataFrame.

        Columns: name, iteration, layer, layer_index, op, role, phase, layout, dtype, offload (the
        attribute as written: True/False, <NA> where the producer left it out), offloaded (whether
        a memory-virtualizing framework offloads it: offload, else the format's default rule of
        forward-phase x), dims (tuple, stored order), elements, bytes, call (<NA> when absent)."""
        c = dict(self._cols())
        off = c["offload"]
        c["offload"] = pd.array(off, dtype="boolean")
        c["call"] = pd.array(c["call"], dtype="Int64")
        return pd.DataFrame(c)

    def _index(self, key):
        self._cols()
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if i < 0:
                i += len(self)
            return i
        if isinstance(key, str):
            if key not in self._names:
                raise KeyError(f"{self.path}: no tensor named {key!r}")
            return self._names[key]
        if isinstance(key, TensorInfo):
            return key.index
        if isinstance(key, pd.Series):  # a row of tensors()
            return self._index(key["name"])
        raise TypeError(f"a tensor is named by its index, its name or its metadata row, not {type(key).__name__}")

    def info(self, key):
        """The TensorInfo of one tensor (by index or name)."""
        i = self._index(key)
        c = self._cols()
        return TensorInfo(i, *(c[f][i] for f in TensorInfo._fields[1:]))

    def read(self, key):
        """One tensor's elements as a new numpy array of its dtype, shaped by its dims (stored order).

        ``key``: its index in capture order, its name ("0000000042"), or its metadata row. bfloat16
        tensors come as their uint16 bit patterns (``bfloat16_to_float32`` widens them)."""
        return self._r.read(self._index(key))

    def __iter__(self):
        """(TensorInfo, array) of each tensor in capture order, one tensor in memory at a time."""
        for i in range(len(self)):
            yield self.info(i), self._r.read(i)

    def timeline(self):
        """/timeline as a DataFrame (one row per intercepted library call; empty when absent)."""
        return frame(self._r.timeline())

    def stats(self):
        """/stats as a DataFrame (tensors counted in situ, without their bytes; empty when absent).

        Each row is checked (counts that cannot describe a tensor, an unknown dtype): a bad row
        raises cdma.TraceError naming the file and the row, as ``cdma info`` does."""
        return frame(self._r.stats())

    def __repr__(self):
        if self.closed:
            return f"<cdma.Trace {self.path!r}: closed>"
        a = self.attrs
        return f"<cdma.Trace {self.path!r}: {len(self)} tensors, model={a['model']!r}, source={a['source']!r}>"

    def close(self):
        """Releases the file; the Trace can no longer be used (its methods raise UsageError)."""
        self._reader = None
        self._columns = None
        self._names = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def open(path, isolate=True, skip_bad_tensors=False):  # noqa: A001 - the package's front door
    """Opens a trace file for reading (see Trace)."""
    return Trace(path, isolate=isolate, skip_bad_tensors=skip_bad_tensors)
