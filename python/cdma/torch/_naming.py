"""How cdma.torch names, types and lays out what autograd saves (docs/TORCH_CAPTURE.md).

Pure functions over torch tensors and modules, shared by the capture (_capture.py) and its tests.
"""

import re

import torch

from ..errors import UsageError

# op of a module type, as `cdma train` names its layers (docs/spec/TRACE_FORMAT.md's op list).
# Checked in order; a type matches when it is a subclass of the given class (by name, so that
# classes missing from an older torch are simply skipped).
_OPS = [
    (("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
      "LazyConv1d", "LazyConv2d", "LazyConv3d"), "conv"),
    (("Linear", "Bilinear", "LazyLinear"), "linear"),
    (("ReLU", "ReLU6"), "relu"),
    (("MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d",
      "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
      "LPPool1d", "LPPool2d", "FractionalMaxPool2d", "FractionalMaxPool3d"), "pool"),
    (("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LazyBatchNorm1d", "LazyBatchNorm2d",
      "LazyBatchNorm3d"), "bn"),
    (("LocalResponseNorm", "CrossMapLRN2d"), "lrn"),
    (("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"), "dropout"),
    (("Softmax", "LogSoftmax", "Softmin", "Softmax2d"), "softmax"),
]
_OP_CLASSES = [(tuple(getattr(torch.nn, n) for n in names if hasattr(torch.nn, n)), op) for names, op in _OPS]

OUTSIDE = "(outside)"  # the layer of tensors saved while no module of the model runs (the loss)
COMPILED = "(compiled)"  # the layer of tensors a torch.compile graph saves (module names do not survive it)


def op_of(module):
    """The trace `op` of a module: conv, linear, relu, pool, bn, lrn, dropout, softmax, or other
    (containers, other activations, norms other than batch norm, and anything unknown)."""
    for classes, op in _OP_CLASSES:
        if classes and isinstance(module, classes):
            return op
    return "other"


# Element types the trace format stores, and how their bytes go to the writer (numpy dtype of a
# view of the same bytes: bfloat16 and bool have no numpy type of their own).
DTYPES = {
    torch.float32: ("float32", None),
    torch.float16: ("float16", None),
    torch.bfloat16: ("bfloat16", torch.int16),  # stored as uint16 bit patterns
    torch.int8: ("int8", None),
    torch.uint8: ("uint8", None),
    torch.bool: ("uint8", torch.uint8),  # a dropout mask of torch 2.x: one byte 0/1 per element
}
# Same-width integer views in which "zero" means "all bits zero" (-0.0 and NaN are nonzero, as in
# the analyzer's zero scan, formats/zero_scan.hpp).
BITS = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16,
        torch.int8: torch.int8, torch.uint8: torch.uint8, torch.bool: torch.uint8}


def layout_of(t):
    """(layout, stored view) of a saved tensor: the trace layout and a view of `t` whose C order is
    the stored order (the writer's bytes). From the strides:

    - rank 4, contiguous: NCHW; channels_last (and not contiguous): NHWC, dims [N, H, W, C];
      any other strides: NCHW, the elements copied into NCHW order.
    - rank 2: NC (a transposed view copied into [N, F] order).
    - rank 3 and 5 or more: NC, dims [d0, d1 x d2 x ...] (the elements in C order of the
      tensor's logical shape: a sequence [N, T, F] becomes [N, T*F], a 3-D conv input
      [N, C, D, H, W] becomes [N, C*D*H*W]); the trace has no layout of those ranks.
    Rank 0 and 1 are not activations (see is_activation) and raise ValueError.
    """
    r = t.dim()
    if r == 4:
        if t.is_contiguous():
            return "NCHW", t
        if t.is_contiguous(memory_format=torch.channels_last):
            return "NHWC", t.permute(0, 2, 3, 1)
        return "NCHW", t
    if r == 2:
        return "NC", t
    if r >= 3:
        return "NC", t.reshape(t.shape[0], -1)
    raise ValueError(f"rank {r} has no trace layout")


def parse_budget(budget):
    """A byte budget: an int >= 0, or text in cdma's byte-size grammar (formats/byte_size.hpp:
    digits and an optional binary unit B, K/KiB, M/MiB, G/GiB, T/TiB, case-insensitive; at most
    2^62), or None (no limit). Raises UsageError naming the value."""
    if budget is None:
        return None
    if isinstance(budget, bool):
        raise UsageError(f"budget: {budget!r} is not a byte size")
    if isinstance(budget, int):
        if budget < 0:
            raise UsageError(f"budget: {budget} must not be negative")
        return budget
    if not isinstance(budget, str):
        raise UsageError(f"budget: {budget!r} is not a byte size (e.g. 512M, 2G)")
    m = re.fullmatch(r"([0-9]+)([A-Za-z]*)", budget)
    if not m:
        raise UsageError(f"budget: '{budget}' is not a byte size (digits and a unit B, K, M, G, T, e.g. 2G)")
    units = {"": 0, "b": 0, "k": 10, "kib": 10, "m": 20, "mib": 20, "g": 30, "gib": 30, "t": 40, "tib": 40}
    unit = m.group(2).lower()
    if unit not in units:
        raise UsageError(f"budget: unknown unit '{m.group(2)}' in '{budget}' (B, K, M, G, T)")
    v = int(m.group(1)) << units[unit]
    if v > 1 << 62:
        raise UsageError(f"budget: '{budget}' is more than 2^62 bytes")
    return v
