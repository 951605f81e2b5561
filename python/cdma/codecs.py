"""The codecs of docs/spec/CODECS.md on numpy arrays and bytes: the C++ implementations the CLI uses.

Streams carry no header (the caller knows the element count and width, as a DMA engine knows the
transfer size). Inputs are not copied (any C-contiguous buffer: numpy array, bytes, memoryview);
the GIL is released while a codec runs. Codec specs as ``cdma analyze -c`` takes them: ``zvc``,
``zrle-K`` (K 1..16), ``zlib-L`` (0..9), ``zstd-L``, ``lz4``, ``bpc``, ``ebpc``, ``expzstd``
(``families()``, ``help()``).

    >>> import numpy as np, cdma
    >>> x = np.maximum(np.random.randn(1024).astype(np.float32), 0)
    >>> blob = cdma.codecs.encode("zvc", x)
    >>> y = cdma.codecs.decode("zvc", blob, "float32", x.size)
    >>> bool((x == y).all()), cdma.codecs.size("zvc", x) == len(blob)
    (True, True)
"""


import numpy as np

from . import _native
from .errors import int_arg

_INT64_MAX = 2**63 - 1


def _count(v, name, lo=0, hi=_INT64_MAX):
    return int_arg(v, name, lo, hi)

#: numpy dtype of each trace dtype; bfloat16 elements are their raw 16-bit patterns (uint16).
NUMPY_DTYPES = {
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(np.uint16),
    "int8": np.dtype(np.int8),
    "uint8": np.dtype(np.uint8),
}
_WIDTH = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "uint8": 1}


def _width(data, dtype):
    if dtype is not None:
        if dtype not in _WIDTH:
            raise ValueError(f"unknown dtype {dtype!r} (one of {', '.join(_WIDTH)})")
        return _WIDTH[dtype]
    if isinstance(data, np.ndarray):
        if data.dtype.itemsize not in (1, 2, 4):
            raise ValueError(f"{data.dtype} elements are not 1, 2 or 4 bytes wide: pass dtype=")
        return data.dtype.itemsize
    raise ValueError("dtype= is needed for a buffer that is not a numpy array (float32, float16, bfloat16, ...)")


def _buffer(data):
    # Non-contiguous arrays are copied once into C order; everything else is used in place.
    if isinstance(data, np.ndarray) and not data.flags.c_contiguous:
        return np.ascontiguousarray(data)
    return data


def encode(codec, data, dtype=None):
    """Encodes ``data`` (a numpy array, or bytes with ``dtype``) with ``codec``; returns bytes."""
    return _native.codec_encode(codec, _buffer(data), _width(data, dtype))


def decode(codec, data, dtype, count):
    """Decodes ``count`` elements of ``dtype`` from ``data``; returns a 1-D numpy array.

    Raises cdma.CodecError when the stream is malformed or decodes to another size."""
    if dtype not in NUMPY_DTYPES:
        raise ValueError(f"unknown dtype {dtype!r} (one of {', '.join(NUMPY_DTYPES)})")
    count = _count(count, "count")
    out = np.empty(count, dtype=NUMPY_DTYPES[dtype])
    _native.codec_decode_into(codec, data, _WIDTH[dtype], out)
    return out


def size(codec, data, dtype=None, chunk=0):
    """Encoded size in bytes of ``data`` (from counts for zvc and zrle-K, without encoding).

    ``chunk``: bytes per independent chunk (0 = the whole buffer, else at least 4), as ``cdma analyze
    --chunk``."""
    chunk = _count(chunk, "chunk")
    if 0 < chunk < 4:
        raise ValueError(f"chunk: {chunk} bytes is too small (0 = the whole buffer, else >= 4)")
    return _native.codec_size(codec, _buffer(data), _width(data, dtype), chunk)


def canonical(codec):
    """The canonical name of a codec spec ("zrle" -> "zrle-4")."""
    return _native.codec_name(codec)


def families():
    """The codec families: zvc, zrle, zlib, zstd, lz4, bpc, ebpc, expzstd."""
    return _native.codec_families()


def defaults():
    """The analyzer's default codec list (zvc, zrle-4, zlib-6, zstd-1, lz4)."""
    return _native.default_codecs()


def help():  # noqa: A001 - the CLI's word for it
    """The accepted specs as one line."""
    return _native.codec_help()
