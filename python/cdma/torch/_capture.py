"""cdma.torch.Capture: what autograd saves for backward, into a trace v1 file through the project's
C++ writer (cdma._native.TraceWriter). The rules (what is recorded, names, layouts, sampling) are in
docs/TORCH_CAPTURE.md; this file implements them.

Hot path: the saved-tensor pack hook and the module hooks. In an iteration that is not sampled they
return at once; in a sampled one the pack hook copies (mode "full") or counts (mode "insitu") each
new buffer and the records are written at the end of the iteration (step()), when every consumer
of every buffer is known. The host program never fails because of the capture: an error in a hook,
or a failed write at step() / close() (a full disk), disables the capture with a warning
(Capture.error keeps it).
"""

import json
import numbers
import os
import platform
import sys
import threading
import time
import warnings
import weakref

import torch

from .. import _native
from ..errors import Error, UsageError, path_arg
from ._naming import BITS, COMPILED, DTYPES, OUTSIDE, cut_batch, layout_of, op_of, parse_budget

__all__ = ["Capture", "capture"]

PRODUCER = "cdma.torch 0.1.0"
MODES = ("full", "insitu")

_active = threading.local()  # .capture: the capture whose saved-tensor hooks this thread runs

# torch >= 2.0: True while Dynamo traces (module hooks then return at once, so that a compiled graph
# is the graph of the program without the capture); torch.compiler.disable keeps the root module's
# hooks out of Dynamo's trace (they run in Python, before and after the compiled graph).
_compiler = getattr(torch, "compiler", None)
_is_compiling = getattr(_compiler, "is_compiling", None) or (lambda: False)
_dynamo_disable = getattr(_compiler, "disable", None)
_graph_task = getattr(torch._C, "_current_graph_task_id", None)
_top = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)

# grad_fn nodes that copy, cast or view one tensor: a chain of them from a saved tensor to a
# parameter's AccumulateGrad makes the tensor a copy of the parameter (autocast's weight casts).
_COPY_NODES = frozenset(
    ("ToCopyBackward0", "_ToCopyBackward0", "CopyBackwards", "CloneBackward0", "TBackward0", "ViewBackward0",
     "UnsafeViewBackward0", "ReshapeAliasBackward0", "AliasBackward0", "PermuteBackward0", "TransposeBackward0",
     "ExpandBackward0", "UnsqueezeBackward0", "SqueezeBackward0", "SqueezeBackward1", "SqueezeBackward2",
     "ContiguousBackward0"))


def _top_hooks():
    """The (pack, unpack) pair a tensor saved now on this thread goes to, or None (torch 1.x: not
    known, None)."""
    if _top is None:
        return None
    try:
        return _top(False)
    except TypeError:
        return _top()


def _in_backward():
    """True while autograd runs a backward pass on this thread: activation checkpointing's
    recomputation (its forward calls and saves are not the forward's)."""
    if _graph_task is not None:
        return _graph_task() != -1
    # torch 1.x: checkpoint recomputes from CheckpointFunction.backward (reentrant) or from its
    # unpack hook (non-reentrant), both in torch/utils/checkpoint.py.
    f = sys._getframe(1)
    for _ in range(32):
        if f is None:
            return False
        code = f.f_code
        if code.co_name in ("backward", "unpack", "unpack_hook") and code.co_filename.endswith("checkpoint.py") \
                and os.path.basename(os.path.dirname(code.co_filename)) == "utils":
            return True
        f = f.f_back
    return False


def _outer_hooks_probe():
    """torch 1.x, which cannot list saved-tensor hooks: True when hooks that replace the saved
    tensor (save_on_cpu's copy) are active on this thread. Saves a one-element tensor once."""
    with torch.enable_grad():
        x = torch.ones(1, requires_grad=True)
        y = x * x
        try:
            return y.grad_fn._saved_self is not x
        except Exception:  # noqa: BLE001 - an attribute older torch lacks: no verdict
            return False


def _in_compiled_graph():
    """True when the tensor being saved comes from a torch.compile graph (AOTAutograd's runtime is
    on the Python stack): module hooks did not run inside it, so module names are unknown."""
    if _dynamo_disable is None:
        return False
    f = sys._getframe(2)
    for _ in range(16):
        if f is None:
            return False
        if "aot_autograd" in f.f_code.co_filename:
            return True
        f = f.f_back
    return False


def _distributed():
    """(rank, world size) of an initialized torch.distributed process group, else (0, 1)."""
    dist = getattr(torch, "distributed", None)
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except (RuntimeError, ValueError):
        pass
    return 0, 1


def rank_path(path, rank):
    """The trace of `rank` in a distributed run: `{rank}` in `path` replaced, else `.rank<R>`
    before the extension (run.h5 -> run.rank1.h5)."""
    if "{rank}" in path:
        return path.replace("{rank}", str(rank))
    stem, ext = os.path.splitext(path)
    return f"{stem}.rank{rank}{ext or '.h5'}"


def _key(t):
    """Identity of the bytes a tensor holds now: one buffer region (device, first element, element
    count, dtype) at one version. Views that cover the same elements (flatten, transpose, the
    result of an in-place op) share it; a later in-place change (a new version) does not."""
    return (t.device, t.data_ptr(), t.numel(), t.dtype, t._version)


class _Packed:
    """What the pack hook hands autograd for a recorded (or deduplicated) tensor: the tensor itself,
    plus a release when autograd frees it, so that an address freed and reused later in the same
    iteration (gradient accumulation) is never taken for the same buffer."""

    __slots__ = ("t", "cap", "key", "gen")

    def __init__(self, t, cap, key, gen):
        self.t, self.cap, self.key, self.gen = t, cap, key, gen

    def __del__(self):
        try:
            self.cap._release(self.key, self.gen)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


class _Record:
    __slots__ = ("key", "alive", "seq", "iteration", "saver", "saver_call", "consumer", "consumer_call", "reader",
                 "reader_call", "dtype", "layout", "dims", "data", "event", "counts", "network_input", "refs", "nbytes")


class _Frame:
    """A module call on the forward stack."""

    __slots__ = ("module", "name", "call", "inputs", "start", "mark")


def _clean_name(model, name):
    """A module's layer name: its qualified name in `model`, without the wrappers' own level
    (torch.compile's `_orig_mod`, DataParallel's and DistributedDataParallel's `module`)."""
    parts = [p for p in name.split(".") if p and p != "_orig_mod"]
    wrappers = tuple(getattr(torch.nn.parallel, n) for n in ("DataParallel", "DistributedDataParallel")
                     if hasattr(torch.nn.parallel, n))
    inner = getattr(model, "_orig_mod", model)
    if wrappers and isinstance(inner, wrappers) and parts[:1] == ["module"]:
        parts = parts[1:]
    return ".".join(parts)


def _tensors(args):
    for a in args:
        if isinstance(a, torch.Tensor):
            yield a
        elif isinstance(a, (list, tuple)):
            yield from _tensors(a)
        elif isinstance(a, dict):
            yield from _tensors(a.values())


def _device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} CPUs)"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _iteration_list(iterations):
    """iterations= as a sorted list: an int, or an iterable of ints. A str is refused (it is iterable:
    "12" was taken as [1, 2]), and so is anything that is not an integer (3.5, "3", True)."""
    def integer(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)
    if integer(iterations):
        return [int(iterations)]
    if isinstance(iterations, (str, bytes, bytearray)):
        raise TypeError(f"cdma.torch.capture: iterations must be an int or a list of integers, not the "
                        f"{type(iterations).__name__} {iterations!r}")
    try:
        items = list(iterations)
    except TypeError:
        raise TypeError(f"cdma.torch.capture: iterations must be an int or a list of integers, not "
                        f"{type(iterations).__name__}") from None
    for v in items:
        if not integer(v):
            raise TypeError(f"cdma.torch.capture: iterations must hold integers, not {v!r} "
                            f"({type(v).__name__})")
    return sorted({int(v) for v in items})


class Capture:
    """A capture in progress (see capture()). Use as a context manager, or call start() / close()."""

    def __init__(self, path, model=None, *, every=None, first=None, iterations=None, budget="2G", mode="full",
                 samples=None, deflate_level=0, overwrite=False, timeline=True, model_name=None, command=None,
                 attributes=None):
        if model is not None and not isinstance(model, torch.nn.Module):
            raise UsageError(f"cdma.torch.capture: model must be a torch.nn.Module, not {type(model).__name__}")
        if mode not in MODES:
            raise UsageError(f"cdma.torch.capture: unknown mode '{mode}' (full, insitu)")
        if iterations is not None and (every is not None or first is not None):
            raise UsageError("cdma.torch.capture: give either iterations=[...] or every/first, not both")
        for name, v, lo in (("every", every, 1), ("first", first, 0), ("samples", samples, 1)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < lo):
                raise UsageError(f"cdma.torch.capture: {name} must be an integer >= {lo}, not {v!r}")
        if iterations is not None:
            iterations = _iteration_list(iterations)
            if iterations and iterations[0] < 0:
                raise UsageError(f"cdma.torch.capture: iteration {iterations[0]} is negative")
        if not isinstance(deflate_level, int) or not 0 <= deflate_level <= 9:
            raise UsageError(f"cdma.torch.capture: deflate_level must be 0-9, not {deflate_level!r}")
        self.path = path_arg(path, "path")
        self.mode = mode
        self.every = every or 1
        self.first = first
        self.iterations = None if iterations is None else frozenset(iterations)
        self.budget_text = budget
        self.budget = parse_budget(budget)
        self.samples = samples
        self.deflate_level = deflate_level
        self.overwrite = overwrite
        self.keep_timeline = timeline
        self.model_name = model_name
        self.command = command if command is not None else " ".join([sys.executable, *sys.argv])
        self.attributes = dict(attributes or {})
        self.iteration = 0
        self.error = None  # the exception that disabled the capture, if one did
        self._model = None
        self._writer = None
        self._hooks = []
        self._saved_hooks = None
        self._names = {}  # module -> qualified name
        self._index = {}  # layer name -> layer_index (first forward call order)
        self._params = set()  # data_ptr of every parameter and buffer of the model
        self._leaf = set()
        self._by_name = {}
        self._stack = []
        self._calls = 0
        self._gen = 0
        self._live = {}  # key -> record of a buffer autograd still holds (this iteration)
        self._pending = []  # records of this iteration, in save order
        self._timeline = []
        self._root_inputs = set()
        self._kept_bytes = 0
        self._sampled_count = 0
        self._sampling = False
        self._started = False
        self._closed = False
        self._stream = None
        self._thread = None  # the thread whose saved-tensor hooks the capture runs (start())
        self._outer = None  # (pack, unpack) entered before the capture on that thread: still called
        self._param_shapes = {}  # shape -> [(parameter, transposed)]: candidates of a parameter copy
        self._root_tensors = []  # this iteration's network inputs (their autocast copies are inputs too)
        self._grad_forward = False  # the model ran with gradients in this (sampled) iteration
        self._saved_at_start = 0
        self._partial = []  # iterations in which a forward raised (its records dropped)
        self._interrupted = None  # the exception that ended the `with` block
        self._warned = set()
        self._warnings = []
        self.rank, self.world_size = 0, 1
        self._batch_now = None  # dimension 0 of the model's first input in this forward: the batch
        self.batch_size = None
        self.counters = {"saved": 0, "recorded": 0, "deduplicated": 0, "recorded_bytes": 0, "parameters": 0,
                         "rank_below_2": 0, "dtype_not_stored": 0, "network_inputs": 0, "dropped": 0,
                         "dropped_bytes": 0, "iterations": 0, "sampled_iterations": 0, "recomputed": 0,
                         "compiled": 0, "compiled_not_activations": 0, "partial_forward_tensors": 0,
                         "samples_uncut": 0}
        self._skipped_dtypes = {}
        if model is not None:
            self.attach(model)

    # --- lifecycle ---

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and self._interrupted is None:
            self._interrupted = f"{exc_type.__name__}: {exc}"
        self.close()
        return False

    def start(self):
        """Opens the trace and installs the saved-tensor hooks on this thread. Raises UsageError when
        another capture is active on this thread (saved-tensor hooks are a per-thread stack: the
        inner capture would hide every tensor from the outer one)."""
        if self._started:
            raise UsageError("cdma.torch.capture: already started")
        other = getattr(_active, "capture", None)
        if other is not None and not other._closed:
            raise UsageError(f"cdma.torch.capture: another capture is already active on this thread (writing "
                             f"{other.path}); one capture per thread: close it before starting one for {self.path}")
        self._started = True
        self._thread = threading.get_ident()
        if self._model is not None:
            self._open_writer(self._model_device())
            self._install_module_hooks()
        # A saved_tensors_hooks pair the program entered before (save_on_cpu, its own offloader) keeps
        # getting every tensor: the capture's hooks pass what they see on to it.
        top = _top_hooks()
        self._outer = None if top is None or getattr(top[0], "_checkpoint_internal", False) else top
        if _top is None and _outer_hooks_probe():
            self._warn_once("outer", (
                "cdma.torch: a torch.autograd.graph.saved_tensors_hooks (save_on_cpu, an offloader) is active "
                f"where the capture starts; torch {torch.__version__} cannot name it to pass tensors on, so the "
                "capture shadows it until close(): its packing (offloading) is off meanwhile (torch 2.x chains both)"))
        self._saved_hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._saved_hooks.__enter__()
        _active.capture = self
        self._sampling = self._is_sampled(self.iteration)
        return self

    def attach(self, model):
        """Names layers from `model` (an nn.Module): forward hooks on it and every submodule."""
        if self._model is not None:
            raise UsageError("cdma.torch.capture: a model is already attached")
        self._model = model
        for name, m in model.named_modules():
            self._names[m] = _clean_name(model, name) or "model"
        if self._started:
            self._install_module_hooks()
        for t in (*model.parameters(), *model.buffers()):
            self._params.add((t.device, t.data_ptr()))
            if t.dim() >= 1:
                self._param_shapes.setdefault(tuple(t.shape), []).append((t, False))
            if t.dim() == 2:
                self._param_shapes.setdefault(tuple(reversed(t.shape)), []).append((t, True))
        self._leaf = {m for m in model.modules() if next(m.children(), None) is None}

    def _install_module_hooks(self):
        # Installed from start() (or attach() after it) to close(): a capture never started leaves
        # the model as it was.
        # Under torch.compile the hooks of the modules inside a compiled graph return at once
        # (_is_compiling), so that Dynamo compiles the program's graph unchanged; the model's own
        # hooks are kept out of Dynamo (torch.compiler.disable): they run in Python around the
        # compiled graph and delimit the forward. Only once the program uses Dynamo (torch.compile
        # imported it): importing it costs seconds. A model compiled after its hooks were installed
        # still runs (its own hooks then return at once too: the network input is not told apart).
        dynamo = _dynamo_disable is not None and "torch._dynamo" in sys.modules
        for m in self._names:
            pre, post = self._pre_hook, self._post_hook
            if m is self._model and dynamo:
                pre, post = _dynamo_disable(pre), _dynamo_disable(post)
            self._hooks.append(m.register_forward_pre_hook(pre))
            self._hooks.append(m.register_forward_hook(post))

    def _model_device(self):
        for p in self._model.parameters():
            return p.device
        return torch.device("cpu")

    def _name_by_rank(self):
        """In a distributed run (torch.distributed initialized, world size > 1) each rank writes its
        own trace: rank_path(path, rank). Once, before the file is created."""
        if self._writer is None and self.world_size == 1:
            self.rank, self.world_size = _distributed()
            if self.world_size > 1:
                self.path = rank_path(self.path, self.rank)

    def _open_writer(self, device):
        if self._writer is not None:
            return
        self._name_by_rank()
        attrs = {"producer": PRODUCER, "source": "torch-cuda" if device.type == "cuda" else "torch-cpu",
                 "model": self.model_name or (type(self._model).__name__ if self._model is not None else None),
                 "device": _device_name(device), "framework": f"torch {torch.__version__}",
                 "command": self.command}
        self._writer = _native.TraceWriter(self.path, attrs, overwrite=self.overwrite,
                                           deflate_level=self.deflate_level, flush_every=1)

    def step(self):
        """Ends the current training iteration: writes its records, then counts the next one."""
        if self._closed:
            raise UsageError("cdma.torch.capture: step() after close()")
        self._end_raised_forward()  # between iterations no module runs
        if self._sampling and self.error is None and self._grad_forward and \
                self.counters["saved"] == self._saved_at_start:
            self._warn_once("nothing-saved", (
                f"cdma.torch: iteration {self.iteration} ran the model with gradients but no saved tensor reached "
                "the capture: another torch.autograd.graph.saved_tensors_hooks (save_on_cpu, an offloader) "
                "entered inside the capture shadows it, saved-tensor hooks are disabled, or nothing in the forward "
                "required gradients; nothing of that "
                "iteration is recorded (enter the other hooks outside the capture: it then passes tensors on to "
                "them)"))
        if self.error is None:
            try:
                self._flush()
            except Exception as e:  # noqa: BLE001 - a failed write (disk full): the capture stops, training goes on
                self._fail(e)
        self.iteration += 1
        self.counters["iterations"] = self.iteration
        self._gen += 1
        self._live = {}
        self._root_tensors = []
        self._root_inputs = set()
        self._grad_forward = False
        self._saved_at_start = self.counters["saved"]
        self._sampling = self.error is None and self._is_sampled(self.iteration)

    def close(self):
        """Writes what is pending, the counters, and closes the trace: complete = 1, or 0 when a write
        failed or the `with` block ended by an exception (capture_interrupted names it). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._end_raised_forward()
        self._root_tensors = []
        self._sampling = False
        if getattr(_active, "capture", None) is self:
            _active.capture = None
        for h in self._hooks:
            h.remove()
        self._hooks = []
        if self._saved_hooks is not None:
            self._saved_hooks.__exit__(None, None, None)
            self._saved_hooks = None
        try:
            if self.error is None:
                try:
                    self._flush()
                except Exception as e:  # noqa: BLE001
                    self._fail(e)
        finally:
            try:
                self._finish_writer()
            except Error:
                # After a failed write the writer closes the file with complete = 0 and says so again:
                # that failure was reported (warning, cap.error) when it happened.
                if not isinstance(self.error, Error):
                    raise

    def _finish_writer(self):
        w, self._writer = self._writer, None
        if w is None:
            return
        try:
            c = dict(self.counters, skipped_dtypes=self._skipped_dtypes)
            w.set_dropped_tensors(self.counters["dropped"])
            w.set_attribute("capture_counters", json.dumps(c, sort_keys=True))
            w.set_attribute("capture_options", json.dumps({
                "mode": self.mode, "every": self.every, "first": self.first,
                "iterations": None if self.iterations is None else sorted(self.iterations),
                "budget": self.budget_text, "samples": self.samples, "deflate_level": self.deflate_level}))
            w.set_attribute("iterations", str(self.iteration))
            if self.batch_size is not None:
                w.set_attribute("batch_size", str(self.batch_size))
            if self.samples is not None:
                w.set_attribute("capture_batch", str(self.samples))
            for k, v in self.attributes.items():
                w.set_attribute(str(k), str(v))
            if self.error is not None:
                w.set_attribute("capture_error", f"{type(self.error).__name__}: {self.error}")
            if self.world_size > 1:
                w.set_attribute("rank", str(self.rank))
                w.set_attribute("world_size", str(self.world_size))
            if self.counters["compiled"]:
                w.set_attribute("capture_compiled", (
                    f"{self.counters['compiled']} saved tensors came from torch.compile graphs (what AOTAutograd "
                    f"keeps for backward), recorded under layer {COMPILED}, op other: module names, consumers and "
                    "/timeline rows do not survive compilation; parameters and their layout copies, int8 max-pool "
                    "offsets and per-channel statistics are not recorded (counted in capture_counters)"))
            if self._partial:
                w.set_attribute("capture_partial_forwards", json.dumps(self._partial))
            if self._warnings:
                w.set_attribute("capture_warnings", json.dumps(self._warnings))
            if self._interrupted is not None:
                w.set_attribute("capture_interrupted", (
                    f"the program raised {self._interrupted} inside the capture during iteration {self.iteration}: "
                    "the trace ends there (the tensors written are whole; the iterations after were not run)"))
        finally:
            # An exception that ended the `with` block: the run did not end, the trace must not claim
            # to be whole (complete = 0; every tensor written stays readable).
            w.close(complete=self._interrupted is None)

    # --- sampling ---

    def _is_sampled(self, i):
        if self.iterations is not None:
            return i in self.iterations
        if i % self.every:
            return False
        return self.first is None or self._sampled_count < self.first

    def _warn_once(self, kind, text):
        """A RuntimeWarning, once per kind; kept in the trace's capture_warnings attribute."""
        if kind in self._warned:
            return
        self._warned.add(kind)
        self._warnings.append(text)
        warnings.warn(text, RuntimeWarning, stacklevel=3)

    def _end_raised_forward(self):
        """Frames left on the stack when the model is called again, at step() or close() are of
        calls that raised (no post-hook ran): the model's forward, or a submodule called on its own.
        What was recorded since the outermost of them began is dropped, so that an iteration holds
        only forwards that ended."""
        if self._stack:
            outer, self._stack = self._stack[0], []
            self._drop_partial(outer.mark)

    def _drop_partial(self, mark):
        p0, t0 = mark
        dropped = self._pending[p0:]
        del self._pending[p0:]
        del self._timeline[t0:]
        c = self.counters
        for r in dropped:
            if self._live.get(r.key) is r:
                del self._live[r.key]
            c["recorded"] -= 1
            c["recorded_bytes"] -= r.nbytes
            if r.data is not None:
                self._kept_bytes -= r.nbytes
        c["partial_forward_tensors"] += len(dropped)
        if self.iteration not in self._partial:
            self._partial.append(self.iteration)
        self._warnings.append(f"iteration {self.iteration}: a forward raised; {len(dropped)} tensors dropped")
        warnings.warn(f"cdma.torch: a forward of iteration {self.iteration} raised; the {len(dropped)} tensors it "
                      "saved are not recorded (the trace keeps forwards that ended; root attribute "
                      "capture_partial_forwards lists such iterations)", RuntimeWarning, stacklevel=3)

    def _fail(self, e):
        if self.error is None:
            self.error = e
            self._sampling = False
            warnings.warn(f"cdma.torch: capture disabled after an error: {type(e).__name__}: {e} (the trace keeps "
                          "what was written before; complete = 0 when a write failed)", RuntimeWarning, stacklevel=3)

    # --- module hooks ---

    def _layer_index(self, name):
        i = self._index.get(name)
        if i is None:
            i = self._index[name] = len(self._index)
        return i

    def _pre_hook(self, module, args):
        if _is_compiling():
            return None  # Dynamo is tracing this call: the compiled graph must not change
        try:
            if threading.get_ident() != self._thread:
                if self._sampling and torch.is_grad_enabled() and not _in_backward():
                    self._warn_once("thread", (
                        f"cdma.torch: the model ran with gradients in thread {threading.current_thread().name}, "
                        "but the capture's torch.autograd.graph.saved_tensors_hooks are installed in the thread "
                        "that started it (saved-tensor hooks are per thread): nothing this thread saves is "
                        "recorded; start the capture in the training thread"))
                return None
            if self._sampling and torch.is_grad_enabled() and _in_backward():
                return None  # activation checkpointing recomputes in backward: not a forward call
            name = self._names.get(module)
            if name is None:
                return None
            self._layer_index(name)
            if module is self._model:
                self._end_raised_forward()
            f = _Frame()
            f.mark = (len(self._pending), len(self._timeline))
            f.module, f.name, f.call = module, name, self._calls
            self._calls += 1
            f.inputs = None
            if self._sampling and torch.is_grad_enabled():
                self._check_shadowed()
                ts = list(_tensors(args))
                f.inputs = {_key(t) for t in ts}
                if module is self._model:
                    self._grad_forward = True
                    self._root_inputs |= {_key(t) for t in ts if not t.requires_grad}
                    self._root_tensors.extend(t for t in ts if not t.requires_grad)
                    first = next(_tensors(args), None)
                    self._batch_now = int(first.shape[0]) if first is not None and first.dim() > 0 else None
                    if self.batch_size is None:
                        first = next(_tensors(args), None)
                        if first is not None and first.dim() > 0:
                            self.batch_size = int(first.shape[0])
                if module in self._leaf:
                    for k in f.inputs:
                        r = self._live.get(k)
                        if r is not None and r.consumer is None and r.reader is None:
                            r.reader, r.reader_call = name, f.call
            f.start = time.perf_counter_ns()
            self._stack.append(f)
        except Exception as e:  # noqa: BLE001 - never fail the host program
            self._fail(e)
        return None

    def _post_hook(self, module, args, output):
        if _is_compiling():
            return None
        try:
            if threading.get_ident() != self._thread:
                return None
            # Pop to this module's frame: frames above it are of calls that raised (no post-hook).
            if not any(fr.module is module for fr in self._stack):
                return None
            while self._stack[-1].module is not module:
                self._stack.pop()
            f = self._stack.pop()
            if self.keep_timeline and f.inputs is not None and module in self._leaf:
                self._timeline.append({"iteration": self.iteration, "call": f.call,
                                       "layer_index": self._index[f.name], "phase": 0, "op": op_of(module),
                                       "layer": f.name, "start_ns": f.start, "end_ns": time.perf_counter_ns(),
                                       "device_ns": -1})
        except Exception as e:  # noqa: BLE001
            self._fail(e)
        return None

    # --- saved-tensor hooks ---

    def _check_shadowed(self):
        """Warns (once) when another saved_tensors_hooks pair entered inside the capture receives the
        saved tensors instead of it (torch 2.x; activation checkpointing's own hooks are expected)."""
        top = _top_hooks()
        if top is None or top[0] == self._pack or getattr(top[0], "_checkpoint_internal", False):
            return
        mod = getattr(top[0], "__module__", "") or ""
        if mod.startswith("torch.utils.checkpoint"):
            return
        what = f"{mod}.{getattr(top[0], '__qualname__', repr(top[0]))}"
        self._warn_once("shadowed", (
            f"cdma.torch: another torch.autograd.graph.saved_tensors_hooks ({what}; save_on_cpu or an offloader) "
            "was entered inside the capture and shadows it: the tensors saved under it are not recorded; enter it "
            "outside the capture (the capture then records every tensor and passes it on)"))

    def _unpack(self, p):
        t = p.t if type(p) is _Packed else p
        return t if self._outer is None else self._outer[1](t)

    def _release(self, key, gen):
        if gen != self._gen:
            return
        r = self._live.get(key)
        if r is not None:
            r.refs -= 1
            if r.refs <= 0:
                del self._live[key]

    def _pack(self, t):
        p = t
        if self._sampling:
            try:
                p = self._pack_sampled(t)
            except Exception as e:  # noqa: BLE001 - never fail the host program
                self._fail(e)
                p = t
        if self._outer is None:
            return p
        # the program's own hooks, entered before the capture, pack the tensor as without it
        packed = self._outer[0](t)
        if type(p) is _Packed:
            p.t = packed
            return p
        return packed

    def _is_param_copy(self, t):
        """A copy of a parameter's values: autocast's cast (a chain of cast / view nodes from the
        tensor's grad_fn to the parameter's AccumulateGrad), or, for a tensor made without autograd
        (a frozen parameter's cast, a torch.compile graph's layout copy), equal values."""
        node = t.grad_fn
        for _ in range(8):
            if node is None:
                break
            kind = type(node).__name__
            if kind == "AccumulateGrad":
                v = node.variable
                return (v.device, v.data_ptr()) in self._params
            if kind not in _COPY_NODES:
                return False
            nxt = [n for n, _ in node.next_functions if n is not None]
            if len(nxt) != 1:
                return False
            node = nxt[0]
        if t.grad_fn is not None or t.requires_grad:
            return False
        base = t._base if t._base is not None else t
        for cand in (base, t) if base is not t else (t,):
            for p, transposed in self._param_shapes.get(tuple(cand.shape), ()):
                q = p.detach().t() if transposed else p.detach()
                if q.device == cand.device and torch.equal(cand.detach(), q.to(cand.dtype)):
                    return True
        return False

    def _is_input_copy(self, t):
        """A copy of a network input in another dtype (autocast's cast of the batch)."""
        if t.requires_grad or t.grad_fn is not None:
            return False
        for x in self._root_tensors:
            if x.shape == t.shape and x.dtype != t.dtype and x.device == t.device and torch.equal(x.to(t.dtype), t):
                return True
        return False

    def _pack_sampled(self, t):
        c = self.counters
        if _in_backward():
            c["recomputed"] += 1  # activation checkpointing's recomputation: saved in the forward already
            return t
        c["saved"] += 1
        compiled = _in_compiled_graph()
        if compiled:
            c["compiled"] += 1
        if isinstance(t, torch.nn.Parameter) or (t.device, t.data_ptr()) in self._params:
            c["parameters"] += 1  # a parameter, a view of one (a linear layer's weight.t()), or a buffer
            return t
        if t.dim() < 2:
            c["rank_below_2"] += 1  # batch norm's per-channel mean / inverse std, scalars
            return t
        if self._is_param_copy(t):
            c["parameters"] += 1  # a copy of a parameter: autocast's cast, a compiled graph's layout copy
            return t
        if compiled and (t.dtype in (torch.int8, torch.uint8) or sum(d != 1 for d in t.shape) <= 1):
            c["compiled_not_activations"] += 1  # inductor's int8 max-pool offsets, [1, C, 1, 1] statistics
            return t
        if t.dtype not in DTYPES:
            c["dtype_not_stored"] += 1  # max-pool indices and targets (int64), float64
            name = str(t.dtype).replace("torch.", "")
            self._skipped_dtypes[name] = self._skipped_dtypes.get(name, 0) + 1
            return t
        key = _key(t)
        r = self._live.get(key)
        if r is not None and r.alive is not None and r.alive() is None:
            del self._live[key]  # its tensor is gone (the outer hooks hold a copy): the address was reused
            r = None
        if r is not None:  # the same buffer, saved again (conv input = ReLU output, a view, ...)
            c["deduplicated"] += 1
            r.refs += 1
            frame = self._stack[-1] if self._stack else None
            if r.consumer is None and r.saver != COMPILED and frame is not None and frame.inputs is not None and \
                    key in frame.inputs:
                r.consumer, r.consumer_call = frame.name, frame.call  # a later module saves it as its input
            return _Packed(t, self, key, self._gen)
        if self._model is None:
            return t  # not attached yet (the launcher attaches at the model's first call)
        return self._new_record(t, key, compiled)

    def _new_record(self, t, key, compiled=False):
        c = self.counters
        frame = self._stack[-1] if self._stack else None
        r = _Record()
        r.key, r.seq, r.iteration, r.refs = key, c["recorded"], self.iteration, 1
        # Under outer hooks autograd holds their packed copy, not the tensor: the buffer is the same
        # only while the tensor (or the base of its views) lives.
        r.alive = None if self._outer is None else weakref.ref(t._base if t._base is not None else t)
        r.saver, r.saver_call = (frame.name, frame.call) if frame else (OUTSIDE, -1)
        if compiled:
            r.saver, r.saver_call = COMPILED, -1
        r.consumer = r.consumer_call = r.reader = r.reader_call = None
        if not compiled and frame is not None and frame.inputs is not None and key in frame.inputs:
            r.consumer, r.consumer_call = frame.name, frame.call  # the saving module's own input
        r.network_input = key in self._root_inputs or self._is_input_copy(t)
        layout, view = layout_of(t.detach(), self._batch_now)
        if self.samples is not None:
            cut = cut_batch(view, self.samples, self._batch_now, t._base)
            if cut is None:
                c["samples_uncut"] += 1  # no batch dimension found: kept whole
            else:
                view = cut
        dtype, as_type = DTYPES[t.dtype]
        r.dtype, r.layout, r.dims = dtype, layout, list(view.shape)
        r.nbytes = view.numel() * view.element_size()
        r.data = r.event = r.counts = None
        if self.mode == "full":
            if self.budget is not None and self._kept_bytes + r.nbytes > self.budget:
                c["dropped"] += 1
                c["dropped_bytes"] += r.nbytes
                return t
            self._kept_bytes += r.nbytes
            if as_type is not None:
                view = view.view(as_type)
            r.data, r.event = self._copy(view)
        else:
            r.counts = self._count(view.view(BITS[t.dtype]))
        if self._writer is None:
            self._open_writer(t.device)
        c["recorded"] += 1
        c["recorded_bytes"] += r.nbytes
        self._live[key] = r
        self._pending.append(r)
        return _Packed(t, self, key, self._gen)

    def _copy(self, view):
        """The stored-order bytes of `view` on the host, and an event to wait for (None on the CPU).

        On a GPU the copy goes to pinned host memory on a side stream that first waits for the
        training stream's work so far, so training does not wait for it; record_stream keeps the
        caching allocator from reusing the source before the copy ran. Written at step()."""
        if view.device.type != "cuda":
            return view.contiguous().clone() if view.is_contiguous() else view.contiguous(), None
        if self._stream is None:
            self._stream = torch.cuda.Stream(device=view.device)
        src = view
        self._stream.wait_stream(torch.cuda.current_stream(view.device))
        with torch.cuda.stream(self._stream):
            dense = src.contiguous()
            host = torch.empty(dense.shape, dtype=dense.dtype, pin_memory=True)
            host.copy_(dense, non_blocking=True)
            ev = torch.cuda.Event()
            ev.record(self._stream)
        src.record_stream(self._stream)
        if dense.data_ptr() != src.data_ptr():
            dense.record_stream(self._stream)
        return host, ev

    def _count(self, bits):
        """Nonzeros and zero runs of `bits` (same-width integers, stored order) as 0-dim tensors on
        the tensor's device (on a GPU on the side stream, read at step())."""
        def count():
            flat = bits.reshape(-1)
            n = flat.numel()
            if n == 0:
                z = torch.zeros((), dtype=torch.int64, device=flat.device)
                return z, z
            zero = flat == 0
            nonzeros = n - zero.sum()
            runs = zero[:1].sum() + (zero[1:] & ~zero[:-1]).sum()
            return nonzeros, runs

        if bits.device.type != "cuda":
            return count() + (None,)
        if self._stream is None:
            self._stream = torch.cuda.Stream(device=bits.device)
        self._stream.wait_stream(torch.cuda.current_stream(bits.device))
        with torch.cuda.stream(self._stream):
            nz, runs = count()
            ev = torch.cuda.Event()
            ev.record(self._stream)
        bits.record_stream(self._stream)
        return nz, runs, ev

    # --- writing ---

    def _flush(self):
        pending, self._pending = self._pending, []
        timeline, self._timeline = self._timeline, []
        if self._sampling and (pending or timeline):
            self._sampled_count += 1
            self.counters["sampled_iterations"] = self._sampled_count
        if self._writer is None:
            return
        w = self._writer
        for r in pending:
            if r.consumer is not None:
                layer, call = r.consumer, r.consumer_call
            elif r.reader is not None:
                layer, call = r.reader, r.reader_call
            else:
                layer, call = r.saver, r.saver_call
            module = self._module_of(layer)
            op = op_of(module) if module is not None else "other"
            index = self._layer_index(layer)
            if self.mode == "full":
                if r.event is not None:
                    r.event.synchronize()
                arr = r.data.numpy()
                if r.dtype == "bfloat16":
                    arr = arr.view("uint16")
                meta = {"iteration": r.iteration, "layer": layer, "layer_index": index, "op": op, "role": "x",
                        "phase": "forward", "layout": r.layout, "dtype": r.dtype, "dims": r.dims,
                        "offload": not r.network_input}
                if call >= 0:
                    meta["call"] = call
                w.append_tensor(meta, arr)
            else:
                if r.network_input:  # /stats has no offload column: a row not offloaded is left out
                    self.counters["network_inputs"] += 1
                    continue
                nz, runs, ev = r.counts
                if ev is not None:
                    ev.synchronize()
                elements = 1
                for d in r.dims:
                    elements *= d
                w.append_stats({"iteration": r.iteration, "call": call, "layer_index": index, "layer": layer,
                                "op": op, "role": "x", "dtype": r.dtype, "elements": elements,
                                "nonzeros": int(nz), "zero_runs": int(runs)})
            if r.network_input and self.mode == "full":
                self.counters["network_inputs"] += 1
        for row in timeline:
            w.append_timeline(row)
        w.flush()

    def _module_of(self, name):
        m = self._by_name.get(name)
        if m is None and name != OUTSIDE:
            for mod, n in self._names.items():
                if n == name:
                    m = self._by_name[name] = mod
                    break
        return m


def capture(path, model=None, *, every=None, first=None, iterations=None, budget="2G", mode="full", samples=None,
            deflate_level=0, overwrite=False, timeline=True, model_name=None, command=None, attributes=None):
    """Captures what autograd saves for backward while `model` trains, into the trace `path`.

        with cdma.torch.capture("run.h5", model, every=10, budget="2G") as cap:
            for x, y in loader:
                loss = loss_fn(model(x), y); loss.backward(); opt.step(); opt.zero_grad()
                cap.step()                       # one training iteration ended

    model: the nn.Module whose submodules name the layers (qualified names; `op` from the type;
      layer_index in first-call order). every / first: keep every N-th iteration, at most K of
      them; iterations: the iterations to keep instead (an int or a list of ints; a str is
      refused: TypeError). budget: tensor bytes kept in all ("2G", an int, None for no limit);
      beyond it tensors are dropped and counted in dropped_tensors. mode: "full" (tensor bytes) or "insitu" (nonzeros and zero runs counted on
      the tensor's device into /stats; no bytes kept, budget unused). samples: keep only the first
      K entries of dimension 0 (the batch) of each tensor. deflate_level: 0-9 (HDF5 shuffle +
      deflate). overwrite: replace an existing file. timeline: forward time of each leaf module
      into /timeline. model_name, command, attributes: root attributes.
    Raises cdma.UsageError for a bad argument and cdma.TraceError when the file cannot be written.
    See docs/TORCH_CAPTURE.md for what is and is not recorded."""
    return Capture(path, model, every=every, first=first, iterations=iterations, budget=budget, mode=mode,
                   samples=samples, deflate_level=deflate_level, overwrite=overwrite, timeline=timeline,
                   model_name=model_name, command=command, attributes=attributes)
