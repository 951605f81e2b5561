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


def layout_of(t, batch=None):
    """(layout, stored view) of a saved tensor: the trace layout and a view of `t` whose C order is
    the stored order (the writer's bytes); dimension 0 of the view is the batch. From the strides:

    - rank 4, contiguous: NCHW (attention scores [N, H, T, T] too); channels_last (and not
      contiguous): NHWC, dims [N, H, W, C]; any other strides: NCHW, the elements copied into
      NCHW order.
    - rank 3, a sequence [N, T, C]: NHWC with W = 1, dims [N, T, 1, C] (C order of [N, T, C]: a
      sequence is an image of height T, one column, C channels last). When `batch` (the model's
      batch size) is dimension 1 and not dimension 0 ([T, N, C], as nn.MultiheadAttention keeps it
      inside), and the tensor is contiguous in [T, N, C] or [N, T, C] order, the elements are
      copied into [N, T, C] order (other strides, such as the keys [N*H, d, T] of torch 1.x's
      attention, are left as they are).
    - rank 2: NC (a transposed view copied into [N, F] order).
    - rank 5 or more: NC, dims [d0, d1 x d2 x ...] (the elements in C order of the tensor's
      logical shape: a 3-D conv input [N, C, D, H, W] becomes [N, C*D*H*W]).
    Rank 0 and 1 are not activations (see is_activation) and raise ValueError.
    """
    r = t.dim()
    if r == 4:
        if t.is_contiguous():
            return "NCHW", t
        if t.is_contiguous(memory_format=torch.channels_last):
            return "NHWC", t.permute(0, 2, 3, 1)
        return "NCHW", t
    if r == 3:
        if batch is not None and t.shape[0] != batch and t.shape[1] == batch and \
                (t.is_contiguous() or t.transpose(0, 1).is_contiguous()):
            t = t.transpose(0, 1)
        return "NHWC", t.unsqueeze(2)
    if r == 2:
        return "NC", t
    if r >= 5:
        return "NC", t.reshape(t.shape[0], -1)
    raise ValueError(f"rank {r} has no trace layout")


def cut_batch(view, samples, batch=None, folded_from=None):
    """The first `samples` entries of the batch of a stored view (dimension 0, see layout_of):
    view[:samples] when dimension 0 is the batch (or the batch is not known). A view whose
    dimension 0 folds the batch with other dimensions ([N*T, C] from a linear layer's input, [N*H,
    T, d] from attention) is cut to its first samples * (rows / N) rows when `folded_from` (the
    tensor the saved one is a view of) tells that the batch is the outer factor: a contiguous base
    whose dimension 0 is the batch, of which the saved tensor is a contiguous view of every element.
    Else None: the row order is not known (a [T*N, C] from a sequence-first model) and the tensor is
    kept whole."""
    if batch is None or view.shape[0] == batch:
        return view[:samples]
    rows = view.shape[0]
    if (folded_from is not None and batch > 0 and rows % batch == 0 and folded_from.dim() > 0
            and folded_from.shape[0] == batch and folded_from.is_contiguous() and view.is_contiguous()
            and view.numel() == folded_from.numel() and view.data_ptr() == folded_from.data_ptr()):
        return view[: samples * (rows // batch)]
    return None


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
