"""cdma.torch: capture what PyTorch's autograd keeps for backward into a cdma trace (format v1).

    import cdma.torch
    with cdma.torch.capture("run.h5", model, every=10, budget="2G", mode="full") as cap:
        for x, y in loader:
            loss = loss_fn(model(x), y); loss.backward(); opt.step(); opt.zero_grad()
            cap.step()                      # one training iteration ended

Every activation autograd saves for backward (torch.autograd.graph.saved_tensors_hooks) is recorded
once per buffer, named by the module that consumes it; parameters and non-activation tensors are
not recorded. Tensors go through the project's C++ trace writer (cdma._native.TraceWriter). An
unmodified script: `cdma capture --torch -o run.h5 -- python train.py`. The rules, the launcher and
the measured overhead: docs/TORCH_CAPTURE.md.
"""

from ._capture import MODES, PRODUCER, Capture, capture
from ._naming import COMPILED, OUTSIDE, cut_batch, layout_of, op_of, parse_budget

__all__ = ["COMPILED", "Capture", "MODES", "OUTSIDE", "PRODUCER", "capture", "cut_batch", "layout_of", "op_of",
           "parse_budget"]
