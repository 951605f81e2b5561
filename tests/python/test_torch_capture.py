"""cdma.torch.capture (python/cdma/torch/) against an independent saved_tensors_hooks dump of an
identical seeded run: the same buffers per iteration, no parameters, no duplicates; in-situ counts
equal to the full capture's; sampling, budget, layouts and errors. Tiny models: seconds on 2 cores."""

import contextlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

import cdma  # noqa: E402
import cdma.torch  # noqa: E402

ITERATIONS = 3
BATCH = 4


class Net(nn.Module):
    """In-place ReLU, max-pool, a residual add, batch norm, dropout and a linear layer."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.relu2 = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        x = self.pool(self.relu1(self.bn1(self.conv1(x))))
        y = self.bn2(self.conv2(x))
        y += x  # residual add, in place on bn2's output
        x = self.relu2(y)
        return self.fc(self.drop(torch.flatten(x, 1)))


def train(capture=None, dump=None, iterations=ITERATIONS, memory_format=None):
    """Trains a seeded Net; returns (model, losses). `capture`: a cdma.torch.Capture to drive;
    `dump`: a callable(model, iteration) -> context manager installed around each iteration."""
    torch.manual_seed(7)
    model = Net()
    if memory_format is not None:
        model = model.to(memory_format=memory_format)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(3)
    losses = []
    if capture is not None:
        capture.attach(model)
        capture.start()
    try:
        for i in range(iterations):
            x = torch.randn(BATCH, 1, 16, 16, generator=g)
            if memory_format is not None:
                x = x.contiguous(memory_format=memory_format)
            y = torch.randint(0, 10, (BATCH,), generator=g)
            with dump(model, i) if dump is not None else contextlib.nullcontext():
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(loss.item())
            if capture is not None:
                capture.step()
    finally:
        if capture is not None:
            capture.close()
    return model, losses


STORED = (torch.float32, torch.float16, torch.bfloat16, torch.bool, torch.uint8, torch.int8)


def independent_dump():
    """Every tensor autograd saves, per iteration, through hooks of its own (not cdma.torch's):
    saved tensors that are not parameters (by object identity, or a view whose _base is one), of
    rank >= 2 and of a dtype the trace stores, deduplicated by (storage, offset, element count,
    version). Returns (saved: iteration -> [(shape, dtype, nbytes, bytes)], dump)."""
    saved = {}

    def dump(model, i):
        params = list(model.parameters())
        seen = set()
        saved[i] = []

        def pack(t):
            base = t._base if t._base is not None else t
            if any(base is p for p in params) or t.dim() < 2 or t.dtype not in STORED:
                return t
            key = (t.storage().data_ptr(), t.storage_offset(), t.numel(), t._version)
            if key not in seen:
                seen.add(key)
                saved[i].append((tuple(t.shape), str(t.dtype).replace("torch.", ""), t.numel() * t.element_size(),
                                 t.detach().contiguous().numpy().tobytes()))
            return t

        return torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)

    return saved, dump


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("torch")
    _, plain = train()
    saved, dump = independent_dump()
    _, dumped = train(dump=dump)
    full, insitu = d / "full.h5", d / "insitu.h5"
    cap = cdma.torch.Capture(full, budget=None)
    model, captured = train(capture=cap)
    _, insitu_losses = train(capture=cdma.torch.Capture(insitu, mode="insitu"))
    return {"plain": plain, "dumped": dumped, "captured": captured, "insitu": insitu_losses, "saved": saved,
            "full": full, "insitu_path": insitu, "model": model, "cap": cap}


def test_capture_does_not_change_training(runs):
    assert len(runs["plain"]) == ITERATIONS
    assert runs["captured"] == runs["plain"]  # exactly: the same floats
    assert runs["insitu"] == runs["plain"]
    assert runs["dumped"] == runs["plain"]


def test_same_buffers_as_an_independent_dump(runs):
    t = cdma.open(runs["full"])
    df = t.tensors()
    assert sorted(set(df.iteration)) == list(range(ITERATIONS))
    for i in range(ITERATIONS):
        rows = df[df.iteration == i]
        got = []
        for k in rows.index:
            a = t.read(int(k))
            got.append((tuple(rows.dims[k]), rows.dtype[k], int(rows.bytes[k]), a.tobytes()))
        want = runs["saved"][i]
        assert len(want) > 5
        # Same buffers: shape (NCHW or NC, as saved first), dtype, bytes and the bytes themselves.
        assert sorted(got) == sorted(want)
        # No duplicates: every buffer once.
        assert len({g[3] for g in got}) == len(got)


def test_no_parameters_and_the_offload_set(runs):
    t = cdma.open(runs["full"])
    df = t.tensors()
    params = {p.detach().numpy().tobytes() for p in runs["model"].parameters()}
    for k in df.index:
        assert t.read(int(k)).tobytes() not in params
    assert set(df.role) == {"x"} and set(df.phase) == {"forward"}
    # The network input is the only tensor not offloaded: conv1's x, one per iteration.
    not_off = df[~df.offloaded]
    assert list(not_off.layer) == ["conv1"] * ITERATIONS
    assert all(tuple(d) == (BATCH, 1, 16, 16) for d in not_off.dims)
    c = runs["cap"].counters
    assert c["parameters"] > 0 and c["rank_below_2"] > 0 and c["dtype_not_stored"] > 0  # weights, BN stats, indices
    assert c["deduplicated"] > 0  # the in-place ReLU outputs, saved by the ReLU and by their consumer


def test_names_by_consumer(runs):
    df = cdma.open(runs["full"]).tensors()
    it0 = df[df.iteration == 0]
    layers = list(it0.layer)
    # bn1 saves conv1's output; relu1's in-place output is max-pool's input (saved by both: once);
    # conv2 saves the pool output; bn2 its input; relu2's output (after the residual add) reaches
    # dropout as a flattened view: named by dropout, with dropout's mask; fc saves the dropout
    # output; the loss's log-softmax output is saved outside the model.
    assert layers == ["conv1", "bn1", "pool", "conv2", "bn2", "drop", "drop", "fc", cdma.torch.OUTSIDE]
    assert list(it0.op) == ["conv", "bn", "pool", "conv", "bn", "dropout", "dropout", "linear", "other"]
    idx = dict(zip(it0.layer, it0.layer_index))
    assert idx["conv1"] < idx["bn1"] < idx["pool"] < idx["conv2"] < idx["bn2"] < idx["drop"] < idx["fc"]
    assert tuple(it0.dims.iloc[5]) == (BATCH, 8, 8, 8)  # relu2's output as saved first (NCHW), not the view
    assert set(it0.layout) == {"NCHW", "NC"}
    tl = cdma.open(runs["full"]).timeline()
    assert {"relu1", "relu2", "conv1", "fc"} <= set(tl.layer) and (tl.end_ns >= tl.start_ns).all()


def bits_counts(a):
    bits = a.reshape(-1).view({4: np.int32, 2: np.int16, 1: np.uint8}[a.dtype.itemsize])
    zero = bits == 0
    runs = int(zero[:1].sum() + (zero[1:] & ~zero[:-1]).sum())
    return int((~zero).sum()), runs


def test_insitu_counts_equal_the_full_capture(runs):
    full = cdma.open(runs["full"])
    df = full.tensors()
    want = []
    for k in df.index[df.offloaded]:
        a = full.read(int(k))
        nz, zr = bits_counts(a)
        want.append((int(df.iteration[k]), df.layer[k], int(df.layer_index[k]), df.op[k], int(a.size), nz, zr))
    st = cdma.open(runs["insitu_path"]).stats()
    got = [(int(r.iteration), r.layer, int(r.layer_index), r.op, int(r.elements), int(r.nonzeros), int(r.zero_runs))
           for r in st.itertuples()]
    assert got == want
    assert any(w[5] < w[4] for w in want)  # there are zeros to count (post-ReLU tensors)
    assert len(cdma.open(runs["insitu_path"]).tensors()) == 0


def test_sampling_budget_and_samples(tmp_path):
    p = tmp_path / "every.h5"
    train(capture=cdma.torch.Capture(p, every=2, first=2), iterations=6)
    assert sorted(set(cdma.open(p).tensors().iteration)) == [0, 2]
    p = tmp_path / "list.h5"
    train(capture=cdma.torch.Capture(p, iterations=[1, 4]), iterations=6)
    assert sorted(set(cdma.open(p).tensors().iteration)) == [1, 4]
    p = tmp_path / "budget.h5"
    train(capture=cdma.torch.Capture(p, budget="20K"), iterations=2)
    t = cdma.open(p)
    assert t.tensors().bytes.sum() <= 20 * 1024
    assert t.attrs["dropped_tensors"] > 0
    p = tmp_path / "samples.h5"
    train(capture=cdma.torch.Capture(p, samples=1), iterations=1)
    t = cdma.open(p)
    assert all(d[0] == 1 for d in t.tensors().dims)
    assert t._r.root_attribute("batch_size") == str(BATCH)


def test_channels_last_is_nhwc(tmp_path):
    p = tmp_path / "cl.h5"
    _, a = train(capture=cdma.torch.Capture(p), memory_format=torch.channels_last, iterations=1)
    t = cdma.open(p)
    df = t.tensors()
    four = df[df.dims.map(len) == 4]
    assert "NHWC" in set(four.layout)
    k = four.index[four.layout == "NHWC"][0]
    n, h, w, c = df.dims[k]
    assert t.read(int(k)).shape == (n, h, w, c)
    # In situ, zero runs are counted in the stored (NHWC) order too: the same counts as the bytes.
    q = tmp_path / "cl-insitu.h5"
    _, b = train(capture=cdma.torch.Capture(q, mode="insitu"), memory_format=torch.channels_last, iterations=1)
    assert a == b
    st = cdma.open(q).stats()
    want = [bits_counts(t.read(int(i))) for i in df.index[df.offloaded]]
    assert [(int(r.nonzeros), int(r.zero_runs)) for r in st.itertuples()] == want


def test_bfloat16_under_autocast(tmp_path):
    p = tmp_path / "bf16.h5"
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    with cdma.torch.capture(p, m) as cap:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = m(torch.randn(2, 1, 8, 8))
        out.float().sum().backward()
        cap.step()
    df = cdma.open(p).tensors()
    assert "bfloat16" in set(df.dtype)


def test_bad_arguments(tmp_path):
    m = Net()
    with pytest.raises(cdma.UsageError, match="mode"):
        cdma.torch.capture(tmp_path / "a.h5", m, mode="fast")
    with pytest.raises(cdma.UsageError, match="unit"):
        cdma.torch.capture(tmp_path / "a.h5", m, budget="3Q")
    with pytest.raises(cdma.UsageError, match="nn.Module"):
        cdma.torch.capture(tmp_path / "a.h5", "resnet")
    with pytest.raises(cdma.UsageError, match="either"):
        cdma.torch.capture(tmp_path / "a.h5", m, every=2, iterations=[1])
    with pytest.raises(cdma.UsageError, match="every"):
        cdma.torch.capture(tmp_path / "a.h5", m, every=0)
    (tmp_path / "exists.h5").write_bytes(b"x")
    with pytest.raises(cdma.Error):
        with cdma.torch.capture(tmp_path / "exists.h5", m):
            pass
    assert (tmp_path / "exists.h5").read_bytes() == b"x"
