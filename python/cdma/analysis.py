"""Analyses of trace files: the pipeline of ``cdma analyze`` (analyze::run_analysis) in-process."""

import json as _json
import os

from . import _native
from ._frame import frame
from .errors import int_arg, path_arg

#: The widest JSON indent to_json() takes (analyze::kMaxJsonIndent).
MAX_JSON_INDENT = 64
_INT64_MAX = 2**63 - 1


_int = int_arg

LEVELS = ("tensor", "layer", "iteration", "layer_iteration", "network")


def _list(v, name):
    if v is None:
        return None
    if isinstance(v, str):
        return [s for s in v.split(",") if s]
    try:
        return [str(s) for s in v]
    except TypeError:
        raise TypeError(f"{name}: a list of names or a comma-separated string") from None


def _iterations(v):
    # "0-3,7,10-" as the CLI takes it, an int, or a list of ints / (first, last) pairs. Floats,
    # bools and strings inside a list are refused rather than converted (int("12") or int(1.9)
    # would select iterations nobody asked for).
    if v is None or isinstance(v, str):
        return v
    if not isinstance(v, bool) and isinstance(v, int):
        return str(_int(v, "iterations", 0, _INT64_MAX))
    try:
        items = list(v)
    except TypeError:
        raise TypeError(f"iterations: a range text such as '0-3,7', an int or a list of ints, not {v!r}") from None
    parts = []
    for x in items:
        if isinstance(x, (tuple, list)) and len(x) == 2:
            parts.append(f"{_int(x[0], 'iterations', 0, _INT64_MAX)}-{_int(x[1], 'iterations', 0, _INT64_MAX)}")
        else:
            parts.append(str(_int(x, "iterations", 0, _INT64_MAX)))
    return ",".join(parts)


def _chunk(v):
    # Bytes per independent chunk: an int (0 = whole tensors, else >= 4, as --chunk) or a size text ("4K").
    if isinstance(v, str):
        return v
    c = _int(v, "chunk", 0, _INT64_MAX)
    if 0 < c < 4:
        raise ValueError(f"chunk: {c} bytes is too small (0 = whole tensors, else >= 4)")
    return c


class Analysis:
    """The result of one analysis run over one or more traces (``cdma.analysis``).

    ``df(by)`` gives any level as a tidy DataFrame without rerunning the codecs; ``json()`` the
    document ``cdma analyze --json`` writes (schema cdma-analysis v1), byte for byte."""

    def __init__(self, native, paths):
        self._a = native
        self.paths = paths

    @property
    def codecs(self):
        """Canonical codec names, in the order of the options."""
        return self._a.codecs

    @property
    def variants(self):
        """(layout, dtype) of each analysed variant; ("stored", "stored") is the data as captured."""
        return self._a.variants

    @property
    def interrupted(self):
        return self._a.interrupted

    def df(self, by="layer"):
        """One level as a tidy DataFrame: one row per group x variant x codec.

        Columns: trace (index), path, model, the level's keys (tensor: name, phase, offload; layer
        levels: layer_index, layer, op, role, dims; iteration levels: iteration), layout, dtype
        (the variant), tensors, iterations, elements, bytes (uncompressed), nonzeros, zero_runs,
        density, codec, compressed_bytes, ratio (bytes / compressed_bytes over the group), mean_ratio
        (unweighted mean of per-tensor ratios), exact (False where compressed_bytes is a lower
        bound: ZRLE-k of /stats rows). compressed_bytes and the ratios are empty (<NA>/NaN) where
        nobody measured them (byte codecs on /stats rows). The numbers are those of
        ``cdma analyze --json``."""
        return frame(self._a.table(by.replace("-", "_")))

    def traces(self):
        """One row per trace: index, path, model, source, complete, tensors, stats_rows,
        filtered_out, not_offloaded, offload_attribute, skipped, warnings."""
        import pandas as pd

        return pd.DataFrame(self._a.traces())

    def to_json(self, indent=1):
        """The cdma-analysis v1 document as text, exactly as ``cdma analyze --json`` writes it.

        ``indent``: spaces per level, 0 .. MAX_JSON_INDENT (64), or None for one line."""
        indent = -1 if indent is None else _int(indent, "indent", 0, MAX_JSON_INDENT)
        return self._a.json(indent)

    def json(self):
        """The cdma-analysis v1 document as Python objects."""
        return _json.loads(self._a.json(-1))

    def to_csv(self, by="layer"):
        """The wide CSV of ``cdma analyze --csv`` (a column triple per codec) as text."""
        return self._a.csv(by.replace("-", "_"))

    def __repr__(self):
        return f"<cdma.Analysis of {len(self.paths)} trace(s): codecs {', '.join(self.codecs)}>"


def analysis(paths, codecs=None, chunk=0, layouts=None, dtypes=None, all_tensors=False, iterations=None,
             layers=None, ops=None, roles=None, verify=False, keep_going=False, threads=0, zero_copy=True,
             progress=None, read=None):
    """Runs the analysis of ``cdma analyze`` over trace files and returns an Analysis.

    The keywords are the CLI's options: ``codecs`` (list or "zvc,lz4"; default zvc, zrle-4,
    zlib-6, zstd-1, lz4), ``chunk`` (bytes or "4K"), ``layouts`` ("stored", "NCHW", "NHWC",
    "CHWN"), ``dtypes`` ("stored", "float16", "bfloat16", "fp8-e4m3", "fp8-e5m2"), ``all_tensors``
    (every recorded tensor, not only the offload set), filters ``iterations`` ("0-3,7,10-" or a list), ``layers``, ``ops``,
    ``roles``, and ``verify``, ``keep_going``, ``threads``; ``read`` ("mmap", "pread" or "hdf5",
    as ``--read``; ``zero_copy=False`` is "hdf5"). ``progress(bytes_done, bytes_total,
    tensors_done, tensors_total)`` is called about 10 times a second. Ctrl-C stops the run and
    raises KeyboardInterrupt."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [path_arg(p, "trace") for p in paths]
    if not paths:
        raise ValueError("cdma.analysis: no trace file given")
    if read is None:
        read = "mmap" if zero_copy else "hdf5"
    elif not zero_copy and read != "hdf5":  # the native side checks the mode's name
        raise ValueError(f"zero_copy=False contradicts read={read!r}")
    opts = dict(codecs=_list(codecs, "codecs"), chunk=_chunk(chunk), layouts=_list(layouts, "layouts"),
                dtypes=_list(dtypes, "dtypes"), all_tensors=bool(all_tensors), iterations=_iterations(iterations),
                layers=_list(layers, "layers"), ops=_list(ops, "ops"), roles=_list(roles, "roles"),
                verify=bool(verify), keep_going=bool(keep_going), threads=_int(threads, "threads", 0, 4096),
                read=read)
    native = _native.run_analysis(paths, opts, progress)
    why = native.nothing_selected()
    if why:  # an empty table would look like a result (cdma analyze exits 2 here)
        raise ValueError(why)
    return Analysis(native, paths)


def analyze(paths, by="layer", **options):
    """``analysis(paths, **options).df(by)``: one level of the analysis as a tidy DataFrame."""
    return analysis(paths, **options).df(by)
