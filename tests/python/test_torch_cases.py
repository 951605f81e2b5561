"""cdma.torch under what PyTorch users do (issue 30 item 3, issue 29's cdma.torch cases): autocast,
torch.compile, another saved_tensors_hooks user (save_on_cpu) inside or outside, activation
checkpointing, transformer tensors, two captures, exceptions, other threads, DataParallel / DDP.
Each case is either captured correctly (checked against an independent saved_tensors_hooks dump of
the same seeded run) or refused / warned, and never changes the training run's losses. Tiny models.
The table of cases and versions: docs/TORCH_CAPTURE.md."""

import contextlib
import os
import threading
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.utils.checkpoint  # noqa: E402

import cdma  # noqa: E402
import cdma.torch  # noqa: E402

TORCH2 = int(torch.__version__.split(".")[0]) >= 2
needs_torch2 = pytest.mark.skipif(not TORCH2, reason="a PyTorch 2.x feature")
STORED = (torch.float32, torch.float16, torch.bfloat16, torch.bool, torch.uint8, torch.int8)
BATCH = 4


class Small(nn.Module):
    """conv, batch norm, ReLU, max-pool, linear: a weight-cast, a layout copy, pool indices and
    batch-norm statistics to tell apart from activations."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.bn(self.conv(x)))), 1))


def batches(n, shape=(BATCH, 1, 8, 8), classes=5):
    g = torch.Generator().manual_seed(3)
    return [(torch.randn(*shape, generator=g), torch.randint(0, classes, (shape[0],), generator=g)) for _ in range(n)]


def run(make, data, *, capture=None, dump=None, wrap=None, around=None, step=None):
    """Trains the seeded model make() on data; returns (model, losses). capture: a Capture attached
    to the model (unless wrap attached it), started around the loop and stepped after each
    iteration; dump(model, i): a context manager around each forward (what the backward
    recomputes is not saved by the forward); wrap(model): what is called (torch.compile,
    DataParallel); around(): a context manager around the whole loop (save_on_cpu);
    step(model, x, y): the loss."""
    torch.manual_seed(7)
    model = make()
    called = wrap(model) if wrap is not None else model
    if capture is not None and capture._model is None:
        capture.attach(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    with around() if around is not None else contextlib.nullcontext():
        with capture if capture is not None else contextlib.nullcontext():
            for i, (x, y) in enumerate(data):
                with dump(model, i) if dump is not None else contextlib.nullcontext():
                    loss = step(called, x, y) if step is not None else nn.functional.cross_entropy(called(x), y)
                loss.backward()
                opt.step()
                opt.zero_grad()
                losses.append(loss.item())
                if capture is not None:
                    capture.step()
    return model, losses


def is_param_copy(t, params):
    """Independent of cdma: a tensor holding a parameter's values (a cast or a layout copy), or a
    view of one."""
    base = t._base if t._base is not None else t
    for p in params:
        if base is p:
            return True
        for cand in (base, t):
            if tuple(cand.shape) in (tuple(p.shape), tuple(reversed(p.shape))) and cand.numel() == p.numel():
                q = p.detach().to(cand.dtype)
                if tuple(cand.shape) != tuple(p.shape):
                    q = q.t()
                if torch.equal(cand.detach(), q):
                    return True
    return False


def independent_dump(batch=BATCH, compiled=False):
    """Every tensor autograd saves per iteration, through hooks of its own: not parameters or
    copies of their values, rank >= 2, a stored dtype, deduplicated by (storage, offset, count,
    version). compiled: also leaves out what a torch.compile graph keeps that is not an
    activation: int8 max-pool offsets and per-channel statistics ([1, C, 1, 1]). Returns
    (saved: iteration -> [(shape, dtype, bytes)], dump)."""
    saved = {}

    def dump(model, i):
        params = list(model.parameters()) + list(model.buffers())
        seen = set()
        saved[i] = []

        def pack(t):
            if t.dim() < 2 or t.dtype not in STORED or is_param_copy(t, params):
                return t
            if compiled and (t.dtype == torch.int8 or sum(d != 1 for d in t.shape) <= 1):
                return t
            key = (t.untyped_storage().data_ptr() if TORCH2 else t.storage().data_ptr(), t.storage_offset(),
                   t.numel(), t._version)
            if key not in seen:
                seen.add(key)
                saved[i].append((tuple(t.shape), str(t.dtype).replace("torch.", ""),
                                 t.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes()))
            return t

        return torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)

    return saved, dump


def trace_rows(path):
    """iteration -> sorted [(numel, dtype, bytes)] of a trace, and its tensors() frame."""
    t = cdma.open(path)
    df = t.tensors()
    out = {}
    for k in df.index:
        a = t.read(int(k))
        if df.layout[k] == "NHWC":
            a = np.ascontiguousarray(a.transpose(0, 3, 1, 2))  # compared in the logical (NCHW) order
        out.setdefault(int(df.iteration[k]), []).append((int(a.size), df.dtype[k], a.tobytes()))
    return {i: sorted(v) for i, v in out.items()}, df


def as_rows(saved):
    """The dump in trace_rows' form (element count instead of shape: layouts may reorder dims)."""
    return {i: sorted((int(np.prod(s)), d if d != "bool" else "uint8", b) for s, d, b in v) for i, v in saved.items()}


def check_against_dump(path, saved):
    got, df = trace_rows(path)
    want = {i: v for i, v in as_rows(saved).items() if v}
    summary = lambda rows: {i: [(n, d) for n, d, _ in v] for i, v in rows.items()}  # noqa: E731
    assert summary(got) == summary(want)
    assert got == want
    return df


# --- autocast -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.bfloat16, pytest.param(torch.float16, marks=needs_torch2)])
def test_autocast_parameter_casts_are_not_activations(tmp_path, dtype):
    data = batches(2)

    def step(m, x, y):
        with torch.autocast("cpu", dtype=dtype):
            out = m(x)
        return nn.functional.cross_entropy(out.float(), y)

    _, plain = run(Small, data, step=step)
    saved, dump = independent_dump()
    _, dumped = run(Small, data, step=step, dump=dump)
    p = tmp_path / "amp.h5"
    cap = cdma.torch.Capture(p, budget=None)
    model, captured = run(Small, data, step=step, capture=cap)
    assert captured == plain == dumped
    df = check_against_dump(p, saved)
    name = str(dtype).replace("torch.", "")
    assert name in set(df.dtype)
    assert cap.counters["parameters"] > 0
    # The network input's autocast copy is the network input (not offloaded), one per iteration.
    inputs = df[~df.offloaded]
    assert list(inputs.layer) == ["conv", "conv"] and set(inputs.dtype) == {name}
    assert all(tuple(d) == (BATCH, 1, 8, 8) for d in inputs.dims)


# --- torch.compile --------------------------------------------------------------------------------

@needs_torch2
def test_compile_is_captured_not_crashed(tmp_path):
    data = batches(2)
    compile_ = lambda m: torch.compile(m)  # noqa: E731 - the default backend (inductor)
    saved, dump = independent_dump(compiled=True)
    _, plain = run(Small, data, wrap=compile_, dump=dump)  # no capture (the dump only reads)
    p = tmp_path / "compiled.h5"
    cap = cdma.torch.Capture(p, budget=None)
    holder = {}

    def wrap(m):
        holder["c"] = c = torch.compile(m)
        cap.attach(c)
        return c

    _, captured = run(Small, data, wrap=wrap, capture=cap)
    assert captured == plain
    df = check_against_dump(p, saved)
    assert cap.error is None
    t = cdma.open(p)
    assert set(df.layer) <= {cdma.torch.COMPILED, cdma.torch.OUTSIDE}
    assert cdma.torch.COMPILED in set(df.layer)
    assert "torch.compile" in t._r.root_attribute("capture_compiled")
    assert not df[~df.offloaded].empty  # the network input, as the compiled graph saved it

    # model.compile() (in place), the capture attached to the uncompiled model
    q = tmp_path / "compiled-inplace.h5"
    cap2 = cdma.torch.Capture(q, budget=None)

    def inplace(m):
        m.compile()
        cap2.attach(m)
        return m

    _, captured2 = run(Small, data, wrap=inplace, capture=cap2)
    assert captured2 == plain
    check_against_dump(q, saved)
    assert cap2.error is None


# --- another saved_tensors_hooks user -------------------------------------------------------------

def counting_offloader():
    """A saved_tensors_hooks user of the program's own: counts what it packs and unpacks."""
    n = {"pack": 0, "unpack": 0}

    def pack(t):
        n["pack"] += 1
        return (t.device, t.to("cpu", copy=True))

    def unpack(p):
        n["unpack"] += 1
        return p[1].to(p[0])

    return n, lambda: torch.autograd.graph.saved_tensors_hooks(pack, unpack)


def test_capture_inside_save_on_cpu_keeps_the_offloading(tmp_path):
    data = batches(2)
    if not TORCH2:  # no API to find the outer hooks: a warning names the shadowed offloading
        n, offloader = counting_offloader()
        with pytest.warns(RuntimeWarning, match="shadows it"):
            _, losses = run(Small, data, around=offloader, capture=cdma.torch.Capture(tmp_path / "old.h5"))
        assert losses == run(Small, data)[1]
        return
    _, plain = run(Small, data)
    n, offloader = counting_offloader()
    _, alone = run(Small, data, around=offloader)
    packed_alone = n["pack"]
    n["pack"] = n["unpack"] = 0
    saved, dump = independent_dump()
    run(Small, data, dump=dump)
    p = tmp_path / "inside.h5"
    cap = cdma.torch.Capture(p, budget=None)
    _, captured = run(Small, data, around=offloader, capture=cap)
    assert captured == plain == alone
    assert n["pack"] == packed_alone > 0 and n["unpack"] > 0  # the program's offloader still runs
    check_against_dump(p, saved)
    # and with torch's own save_on_cpu
    q = tmp_path / "inside-soc.h5"
    cap = cdma.torch.Capture(q, budget=None)
    _, captured = run(Small, data, around=lambda: torch.autograd.graph.save_on_cpu(), capture=cap)
    assert captured == plain
    check_against_dump(q, saved)


def test_save_on_cpu_inside_the_capture_is_reported(tmp_path):
    data = batches(2)
    _, plain = run(Small, data)
    p = tmp_path / "shadowed.h5"
    cap = cdma.torch.Capture(p)
    with pytest.warns(RuntimeWarning, match="save_on_cpu|shadow") as w:
        _, captured = run(Small, data, capture=cap, dump=lambda m, i: torch.autograd.graph.save_on_cpu())
    assert captured == plain
    text = " ".join(str(x.message) for x in w)
    assert "no saved tensor" in text and "saved_tensors_hooks" in text
    assert "iteration 0" in text
    assert "shadow" in cdma.open(p)._r.root_attribute("capture_warnings")


# --- two captures, exceptions, threads ------------------------------------------------------------

def test_a_second_capture_on_the_same_thread_is_refused(tmp_path):
    a, b = Small(), Small()
    with cdma.torch.capture(tmp_path / "a.h5", a) as cap:
        with pytest.raises(cdma.UsageError, match="already active"):
            cdma.torch.capture(tmp_path / "b.h5", b).start()
        nn.functional.cross_entropy(a(batches(1)[0][0]), batches(1)[0][1]).backward()
        cap.step()
    assert len(cdma.open(tmp_path / "a.h5").tensors()) > 0
    assert not (tmp_path / "b.h5").exists()
    # after the first closed, a new one may start
    with cdma.torch.capture(tmp_path / "c.h5", b) as cap:
        nn.functional.cross_entropy(b(batches(1)[0][0]), batches(1)[0][1]).backward()
        cap.step()
    assert len(cdma.open(tmp_path / "c.h5").tensors()) > 0


class Fails(Small):
    def __init__(self):
        super().__init__()
        self.fail = False

    def forward(self, x):
        h = self.pool(self.relu(self.bn(self.conv(x))))
        if self.fail:
            raise ValueError("bad batch")
        return self.fc(torch.flatten(h, 1))


def test_a_forward_that_raised_is_dropped_and_marked(tmp_path):
    torch.manual_seed(7)
    m = Fails()
    (x, y), = batches(1)
    p = tmp_path / "raised.h5"
    with pytest.warns(RuntimeWarning, match="raised"):
        with cdma.torch.capture(p, m) as cap:
            nn.functional.cross_entropy(m(x), y).backward()
            cap.step()
            m.fail = True
            with pytest.raises(ValueError):
                m(x)
            m.fail = False
            nn.functional.cross_entropy(m(x), y).backward()  # the retry, same iteration
            cap.step()
            nn.functional.cross_entropy(m(x), y).backward()
            with pytest.raises(RuntimeError):
                m.fc(torch.zeros(1, 3))  # a submodule's call that raised, outside the model's forward
            cap.step()
    t = cdma.open(p)
    df = t.tensors()
    per = df.groupby("iteration").size()
    assert list(per.index) == [0, 1, 2] and per[0] == per[1] == per[2]  # iteration 1: the retry only
    assert t._r.root_attribute("capture_partial_forwards") == "[1, 2]"
    tl = t.timeline()
    assert (tl.layer == "conv").sum() == 3


def test_an_exception_inside_the_with_is_recorded(tmp_path):
    m = Small()
    (x, y), = batches(1)
    p = tmp_path / "interrupted.h5"
    with pytest.raises(KeyError):
        with cdma.torch.capture(p, m) as cap:
            nn.functional.cross_entropy(m(x), y).backward()
            cap.step()
            raise KeyError("stop")
    t = cdma.open(p)
    assert "KeyError" in t._r.root_attribute("capture_interrupted")
    # The run did not end: the trace does not claim to be whole (complete = 0, with the reader's
    # warning), and every tensor written before reads.
    assert not t.attrs["complete"]
    assert any("complete = 0" in w for w in t.warnings)
    assert len(t.tensors()) > 0
    for i in range(len(t.tensors())):
        t._r.read(i)
    # a clean close has no such attribute, and is complete
    q = tmp_path / "clean.h5"
    with cdma.torch.capture(q, m) as cap:
        nn.functional.cross_entropy(m(x), y).backward()
        cap.step()
    assert cdma.open(q)._r.root_attribute("capture_interrupted") is None
    assert cdma.open(q).attrs["complete"]


def test_iterations_takes_an_int_or_integers_only(tmp_path):
    m = Small()
    for bad in ("12", b"12", 3.5, [1, 3.5], ["3"], [True], None.__class__):
        with pytest.raises(TypeError, match="iterations"):
            cdma.torch.capture(tmp_path / "a.h5", m, iterations=bad)
    assert not (tmp_path / "a.h5").exists()
    assert cdma.torch.capture(tmp_path / "a.h5", m, iterations=12).iterations == {12}
    assert cdma.torch.capture(tmp_path / "a.h5", m, iterations=(4, 1, 4)).iterations == {1, 4}
    assert cdma.torch.capture(tmp_path / "a.h5", m, iterations=range(2)).iterations == {0, 1}


def test_training_in_another_thread_is_warned(tmp_path):
    m = Small()
    (x, y), = batches(1)
    p = tmp_path / "thread.h5"
    caught = []

    def train():
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            nn.functional.cross_entropy(m(x), y).backward()
        caught.extend(w)

    with cdma.torch.capture(p, m) as cap:
        th = threading.Thread(target=train)
        th.start()
        th.join()
        cap.step()
    text = " ".join(str(w.message) for w in caught)
    assert "thread" in text and "saved_tensors_hooks" in text


# --- activation checkpointing ---------------------------------------------------------------------

class Checkpointed(nn.Module):
    def __init__(self, reentrant):
        super().__init__()
        self.reentrant = reentrant
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x):
        h = self.relu1(self.conv1(x))
        h = torch.utils.checkpoint.checkpoint(self.block, h, use_reentrant=self.reentrant)
        return self.fc(torch.flatten(h, 1))


@pytest.mark.parametrize("reentrant", [False, True])
def test_checkpointing_recomputation_is_not_recorded(tmp_path, reentrant):
    if not reentrant and not TORCH2:
        pytest.skip("use_reentrant=False: checked under torch 2.x")
    data = batches(2)
    make = lambda: Checkpointed(reentrant)  # noqa: E731
    _, plain = run(make, data)
    saved, dump = independent_dump()
    _, dumped = run(make, data, dump=dump)
    p = tmp_path / "ckpt.h5"
    cap = cdma.torch.Capture(p, budget=None)
    _, captured = run(make, data, capture=cap)
    assert captured == plain == dumped
    check_against_dump(p, saved)
    tl = cdma.open(p).timeline()
    # one forward row per leaf module call, none from the backward's recomputation (the reentrant
    # checkpoint runs its block's forward without gradients: no rows, as any forward without them)
    for layer in ("conv1", "block.0", "block.2", "fc"):
        rows = tl[tl.layer == layer]
        want = [] if reentrant and layer.startswith("block") else [0, 1]
        assert list(rows.iteration) == want, layer
    assert set(tl.phase) == {0}
    assert cap.counters["recomputed"] > 0 if reentrant else True


# --- transformer tensors --------------------------------------------------------------------------

T, C = 5, 8


class Encoder(nn.Module):
    """Input [N, T, C]; the encoder layer batch first, or not ([T, N, C] inside, as
    nn.MultiheadAttention's default)."""

    def __init__(self, batch_first):
        super().__init__()
        self.batch_first = batch_first
        self.layer = nn.TransformerEncoderLayer(C, 2, dim_feedforward=16, dropout=0.0, batch_first=batch_first)
        self.head = nn.Linear(C, 5)

    def forward(self, x):
        h = self.layer(x) if self.batch_first else self.layer(x.transpose(0, 1)).transpose(0, 1)
        return self.head(h.mean(1))


@pytest.mark.parametrize("batch_first", [True, False])
def test_transformer_shapes_and_samples_along_the_batch(tmp_path, batch_first):
    data = batches(2, shape=(BATCH, T, C))
    Encoder_ = lambda: Encoder(batch_first)  # noqa: E731
    saved, dump = independent_dump()
    _, dumped = run(Encoder_, data, dump=dump)
    p = tmp_path / "enc.h5"
    _, captured = run(Encoder_, data, capture=cdma.torch.Capture(p, budget=None))
    assert captured == dumped
    t = cdma.open(p)
    df = t.tensors()
    # the same tensors as the dump (element values; [T, N, C] tensors are stored in [N, T, C] order)
    got = sorted((int(df.iteration[k]), df.dtype[k], np.sort(t.read(int(k)).reshape(-1)).tobytes()) for k in df.index)
    want = sorted((i, d if d != "bool" else "uint8",
                   np.sort(np.frombuffer(b, dtype={"float32": np.float32, "bool": np.uint8}[d])).tobytes())
                  for i, v in saved.items() for s, d, b in v)
    assert got == want
    # sequences keep their shape as NHWC [N, T, 1, C]: no rank-3 tensor flattened into NC
    seq = [tuple(d) for d in df.dims if len(d) == 4 and d[2] == 1]
    assert (BATCH, T, 1, C) in seq
    ranks = {len(s) for v in saved.values() for s, _, _ in v}
    assert 3 in ranks
    assert all(len(d) == 4 for d, lay in zip(df.dims, df.layout) if lay != "NC")
    n3 = sum(len(s) == 3 for s, _, _ in saved[0])
    assert (df[df.iteration == 0].dims.map(lambda d: len(d) == 4 and d[2] == 1)).sum() >= n3
    # batch first: [T, N, C] turned to [N, T, C]
    assert all(d[0] == BATCH for d in df.dims if len(d) == 4 and d[2] == 1 and d[3] in (C, 16))
    # samples=1: the batch dimension cut to 1; a tensor whose dimension 0 is not the batch (a
    # flattened [T*N, C]) kept whole and counted
    q = tmp_path / "enc-samples.h5"
    cap = cdma.torch.Capture(q, budget=None, samples=1)
    _, sampled = run(Encoder_, data, capture=cap)
    assert sampled == dumped
    sdf = cdma.open(q).tensors()
    assert len(sdf) == len(df)
    uncut = 0
    for full, cut in zip(df.dims, sdf.dims):
        if full[0] == BATCH:
            assert cut[0] == 1 and tuple(cut[1:]) == tuple(full[1:]), (full, cut)
        elif full[0] % BATCH == 0 and cut[0] == full[0] // BATCH:  # a folded batch, batch outer
            assert tuple(cut[1:]) == tuple(full[1:]), (full, cut)
        else:
            assert tuple(cut) == tuple(full)
            uncut += 1
    assert uncut == cap.counters["samples_uncut"] < len(df) // 2


class FoldedMlp(nn.Module):
    """Linear layers over [N, T, C]: each saves its input as the 2-D view [N*T, C] of a batch-first
    tensor (batch_first) or of a [T, N, C] one (not): the batch folded into dimension 0."""

    def __init__(self, batch_first):
        super().__init__()
        self.batch_first = batch_first
        self.fc1, self.fc2, self.head = nn.Linear(C, 16), nn.Linear(16, C), nn.Linear(C, 5)

    def forward(self, x):
        h = x if self.batch_first else x.transpose(0, 1).contiguous()
        a = nn.functional.gelu(self.fc1(h))  # [N, T, 16] or [T, N, 16], contiguous; GELU saves its input, not a
        h = self.fc2(a.reshape(-1, 16)).reshape(a.shape[0], a.shape[1], C)  # fc2 saves the 2-D view
        return self.head((h if self.batch_first else h.transpose(0, 1)).mean(1))


@pytest.mark.parametrize("batch_first", [True, False])
def test_samples_cut_a_folded_batch_only_when_it_is_the_outer_factor(tmp_path, batch_first):
    data = batches(2, shape=(BATCH, T, C))
    make = lambda: FoldedMlp(batch_first)  # noqa: E731
    full_p, cut_p = tmp_path / "full.h5", tmp_path / "cut.h5"
    _, full_losses = run(make, data, capture=cdma.torch.Capture(full_p, budget=None))
    cap = cdma.torch.Capture(cut_p, budget=None, samples=1)
    _, cut_losses = run(make, data, capture=cap)
    assert cut_losses == full_losses
    full, cut = cdma.open(full_p), cdma.open(cut_p)
    fdf, cdf = full.tensors(), cut.tensors()
    fc2 = [k for k in fdf.index if fdf.layer[k] == "fc2" and int(fdf.iteration[k]) == 0]
    assert len(fc2) == 1, fdf[["layer", "dims"]]
    k = fc2[0]
    assert tuple(fdf.dims[k]) == (BATCH * T, 16)
    if batch_first:  # [N*T, 16] of a batch-first tensor: the first sample's T rows, the same values
        assert tuple(cdf.dims[k]) == (T, 16)
        np.testing.assert_array_equal(cut.read(int(k)), full.read(int(k))[:T])
    else:  # [T*N, 16]: the row order mixes the samples, kept whole and counted
        assert tuple(cdf.dims[k]) == (BATCH * T, 16)
        assert cap.counters["samples_uncut"] >= 1


# --- DataParallel, DistributedDataParallel --------------------------------------------------------

def test_data_parallel_names_the_inner_model(tmp_path):
    data = batches(2)
    saved, dump = independent_dump()
    _, dumped = run(Small, data, dump=dump)
    p = tmp_path / "dp.h5"
    cap = cdma.torch.Capture(p, budget=None)

    def wrap(m):
        dp = nn.DataParallel(m)  # on the CPU: calls the module in this thread
        cap.attach(dp)
        return dp

    _, captured = run(Small, data, wrap=wrap, capture=cap)
    assert captured == dumped
    df = check_against_dump(p, saved)
    assert {"conv", "bn", "pool", "fc"} <= set(df.layer)  # not module.conv


def _ddp_worker(rank, world, folder, results):
    import json

    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=world)
    try:
        data = [(x[rank::world], y[rank::world]) for x, y in batches(2, shape=(2 * world, 1, 8, 8))]
        ddp = lambda m: torch.nn.parallel.DistributedDataParallel(m)  # noqa: E731
        saved, dump = independent_dump(batch=2)
        _, plain = run(Small, data, wrap=ddp, dump=dump)  # no capture (the dump only reads)
        cap = cdma.torch.Capture(os.path.join(folder, "run.h5"), budget=None)

        def wrap(m):
            d = ddp(m)
            cap.attach(d)
            return d

        _, captured = run(Small, data, wrap=wrap, capture=cap)
        got, df = trace_rows(cap.path)
        want = {i: v for i, v in as_rows(saved).items() if v}
        out = {"plain": plain, "captured": captured, "path": cap.path, "same": got == want,
               "layers": sorted(set(df.layer))}
        with open(os.path.join(folder, f"result{rank}.json"), "w") as f:
            json.dump(out, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                    reason="torch.distributed with gloo")
def test_distributed_data_parallel_one_trace_per_rank(tmp_path):
    import json

    import torch.multiprocessing as mp
    world = 2
    mp.spawn(_ddp_worker, args=(world, str(tmp_path), None), nprocs=world, join=True)
    losses = set()
    for rank in range(world):
        r = json.loads((tmp_path / f"result{rank}.json").read_text())
        assert r["captured"] == r["plain"]
        assert r["same"]
        assert r["path"] == str(tmp_path / f"run.rank{rank}.h5")
        assert {"conv", "bn", "fc"} <= set(r["layers"])
        t = cdma.open(r["path"])
        assert t._r.root_attribute("rank") == str(rank) and t._r.root_attribute("world_size") == str(world)
        losses.add(tuple(r["captured"]))
    assert len(losses) == world  # each rank trained its own shard
    assert not (tmp_path / "run.h5").exists()


LAUNCHED_COMPILE = """
import json, sys
sys.path.insert(0, {tests!r})
import torch
import cdma.torch._launch as launch
cap = launch.arm_from_env()   # what `cdma capture --torch` does at `import torch`
from test_torch_cases import Small, batches
torch.manual_seed(7)
model = Small()
compiled = torch.compile(model)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
losses = []
for x, y in batches(2):
    loss = torch.nn.functional.cross_entropy(compiled(x), y)
    loss.backward(); opt.step(); opt.zero_grad()
    losses.append(loss.item())
cap.close()
print(json.dumps({{"losses": losses, "error": repr(cap.error), "path": cap.path}}))
"""


@needs_torch2
def test_launcher_capture_of_a_compiled_model(tmp_path):
    import json
    import subprocess
    import sys
    out = tmp_path / "launched.h5"
    env = dict(os.environ, CDMA_TORCH_OUTPUT=str(out))
    p = subprocess.run([sys.executable, "-c", LAUNCHED_COMPILE.format(tests=os.path.dirname(__file__))],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    _, plain = run(Small, batches(2), wrap=lambda m: torch.compile(m))
    assert r["losses"] == plain and r["error"] == "None"
    df = cdma.open(out).tensors()
    assert sorted(set(df.iteration)) == [0, 1] and cdma.torch.COMPILED in set(df.layer)


FULL_DISK = """
import json, resource, signal, sys, warnings
sys.path.insert(0, {tests!r})
import torch
import cdma, cdma.torch
from test_torch_cases import Small, batches, run
data = batches(6, shape=(64, 1, 8, 8))
_, plain = run(Small, data)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (400 * 1024, 400 * 1024))   # the disk fills up in iteration 1 or 2
cap = cdma.torch.Capture({path!r}, budget=None)
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    _, captured = run(Small, data, capture=cap)
print(json.dumps({{"same": captured == plain, "error": repr(cap.error), "warnings": [str(x.message) for x in w]}}))
# The interpreter exits normally (a failed write once crashed HDF5's termination at exit).
"""


def test_a_full_disk_stops_the_capture_not_the_training(tmp_path):
    import json
    import subprocess
    import sys
    p = tmp_path / "full.h5"
    r = subprocess.run([sys.executable, "-c", FULL_DISK.format(tests=os.path.dirname(__file__), path=str(p))],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["same"]  # the training ran to its end, same losses
    assert "TraceError" in out["error"] and any("capture disabled" in w for w in out["warnings"])
    # (close() returned: the child printed after it, and exited 0 with no signal.) The trace does not
    # claim to be whole: complete = 0, and the tensors written before the failure read.
    t = cdma.open(p)
    assert not t.attrs["complete"]
    assert len(t.tensors()) > 0
    for i in range(len(t.tensors())):
        t._r.read(i)
