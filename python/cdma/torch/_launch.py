"""The capture of `cdma capture --torch -- CMD`: armed by the bootstrap sitecustomize
(_bootstrap/sitecustomize.py) once the program has imported torch, configured by the CDMA_TORCH_*
variables the launcher sets (cli/torch_launch.cpp). The rules (docs/TORCH_CAPTURE.md):

- The model: the first module called at top level (no other module running) with gradients
  enabled that has parameters. Its submodules name the layers, as with capture(path, model).
- Iterations: an iteration ends each time step() of the first optimizer the program creates
  returns (other optimizers' steps do not count); tensors saved before the first step are
  iteration 0.
- The file: CDMA_TORCH_OUTPUT, created when the process records its first tensor; if another
  process of the command already made it, <stem>.<pid>.h5 beside it. A process that records
  nothing writes no file. Forked children (DataLoader workers) never capture or touch the file.
- The trace is closed at interpreter exit (atexit); a killed process leaves a trace readable up to
  its last written tensor (complete = 0).
"""

import atexit
import ctypes
import importlib
import os
import sys
import types

import torch

from ..errors import Error, UsageError
from ._capture import Capture, _dynamo_disable

_armed = None  # the process's Capture


def _settings():
    env = os.environ
    out = env["CDMA_TORCH_OUTPUT"]

    def num(name):
        v = env.get(name, "")
        if v == "":
            return None
        try:
            return int(v)
        except ValueError:
            raise UsageError(f"{name}={v!r} is not an integer")

    its = env.get("CDMA_TORCH_ITERATIONS", "")
    iterations = None
    if its:
        try:
            iterations = [int(x) for x in its.split(",") if x.strip()]
        except ValueError:
            raise UsageError(f"CDMA_TORCH_ITERATIONS={its!r} is not a comma-separated list of integers")
    return dict(path=out, every=num("CDMA_TORCH_EVERY"), first=num("CDMA_TORCH_FIRST"), iterations=iterations,
                budget=env.get("CDMA_TORCH_BUDGET") or "2G", mode=env.get("CDMA_TORCH_MODE") or "full",
                samples=num("CDMA_TORCH_SAMPLES"), deflate_level=num("CDMA_TORCH_DEFLATE") or 0,
                model_name=env.get("CDMA_TORCH_MODEL") or None,
                command=env.get("CDMA_TORCH_COMMAND") or " ".join([sys.executable, *sys.argv]))


class _LaunchCapture(Capture):
    """A Capture whose model is found at its first call and whose file falls back to a per-process
    name when another process of the command holds the first one."""

    def _open_writer(self, device):
        if self._writer is not None:
            return
        self._name_by_rank()  # a distributed run: <stem>.rank<R>.h5 first, then the pid fallback below
        if os.path.exists(self.path):
            stem, ext = os.path.splitext(self.path)
            self.path = f"{stem}.{os.getpid()}{ext or '.h5'}"
        try:
            super()._open_writer(device)
        except Error:
            if not os.path.exists(self.path):
                raise
            stem, ext = os.path.splitext(self.path)
            self.path = f"{stem}.{os.getpid()}{ext or '.h5'}"
            super()._open_writer(device)
        if os.environ.get("CDMA_TORCH_VERBOSE"):
            print(f"cdma capture --torch: pid {os.getpid()} writes {self.path}", file=sys.stderr)


def _find_model(cap):
    """A global forward pre-hook: attaches the capture to the model at its first top-level call."""
    handle = None

    def pre(module, args):
        if cap._model is None and torch.is_grad_enabled() and any(p.requires_grad for p in module.parameters()):
            handle.remove()
            cap.attach(module)
            cap._pre_hook(module, args)  # its own hook was registered after this call began
        return None

    if _dynamo_disable is not None:
        pre = _dynamo_disable(pre)  # a compiled model's first call: attach outside Dynamo's trace
    handle = torch.nn.modules.module.register_module_forward_pre_hook(pre)


def _count_steps(cap):
    """Ends an iteration each time the first optimizer's step() returns."""
    first = {"opt": None}

    def on_step(opt):
        if first["opt"] is None:
            first["opt"] = opt
        if first["opt"] is opt and not cap._closed:
            try:
                cap.step()
            except Exception as e:  # noqa: BLE001 - never fail the host program
                cap._fail(e)

    reg = getattr(importlib.import_module("torch.optim.optimizer"), "register_optimizer_step_post_hook", None)
    if reg is not None:  # torch >= 2.0
        reg(lambda opt, args, kwargs: on_step(opt))
        return
    # torch 1.x: wrap the step of each optimizer as it is created, as a bound method (so that
    # lr_scheduler's own wrapper, which needs __self__ and __func__, still works).
    init = torch.optim.Optimizer.__init__

    def patched_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        inner = self.step.__func__

        def step(self, *a, **k):
            out = inner(self, *a, **k)
            on_step(self)
            return out

        self.step = types.MethodType(step, self)

    torch.optim.Optimizer.__init__ = patched_init


def _in_forked_child():
    """After fork (a DataLoader worker): this process never captures, and never closes the parent's
    file (its writer is leaked on purpose: closing it would write to the parent's trace)."""
    cap = _armed
    if cap is None:
        return
    w = cap._writer
    if w is not None:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(w))
    cap._writer = None
    cap._sampling = False
    cap._closed = True
    cap.error = RuntimeError("forked child: not capturing")


def arm_from_env():
    """Arms the capture of this process from CDMA_TORCH_* (once)."""
    global _armed
    if _armed is not None or not os.environ.get("CDMA_TORCH_OUTPUT"):
        return _armed
    cap = _LaunchCapture(**_settings())
    cap.start()
    try:
        _find_model(cap)
        _count_steps(cap)
    except BaseException:
        cap.close()
        raise
    _armed = cap
    os.register_at_fork(after_in_child=_in_forked_child)
    atexit.register(_close_at_exit)
    return cap


def _close_at_exit():
    cap = _armed
    if cap is None or cap._closed:
        return
    try:
        cap.close()
    except Exception as e:  # noqa: BLE001
        print(f"cdma capture --torch: error closing {cap.path}: {type(e).__name__}: {e}", file=sys.stderr)
