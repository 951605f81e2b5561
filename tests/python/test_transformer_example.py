"""python/examples/transformer_traces.py (issue 33): a tiny GPT-style decoder trained 3 steps under
cdma.torch.capture, fp32 and bf16 autocast, against an independent saved_tensors_hooks dump of the
same seeded run: the same buffers (dtype, bytes, elements), no parameters (not even autocast's bf16
weight casts), the same losses with and without the capture; and cut_folded's copy keeps exactly the
first sample's rows of the tensors whose dimension 0 folds the batch. Seconds on 2 cores."""

import importlib.util
import json
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cdma  # noqa: E402
import cdma.torch  # noqa: E402
from conftest import SOURCE_DIR  # noqa: E402

STEPS = 3
TEXT = b"".join(b"Permission is hereby granted, free of charge, to any person obtaining a copy %d.\n" % i
                for i in range(200))


@pytest.fixture(scope="module")
def tt():
    path = SOURCE_DIR / "python" / "examples" / "transformer_traces.py"
    spec = importlib.util.spec_from_file_location("transformer_traces", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["transformer_traces"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    p = tmp_path_factory.mktemp("corpus") / "text.txt"
    p.write_bytes(TEXT)
    return str(p)


def argv(corpus, act, dtype, out, *extra):
    return ["--model", "gpt", "--act", act, "--dtype", dtype, "--d-model", "32", "--layers", "2", "--heads", "2",
            "--seq", "16", "--batch", "4", "--steps", str(STEPS), "--val-batches", "1", "--log", "0",
            "--corpus", corpus, "--capture-spread", str(STEPS), "--deflate", "1", "-o", str(out), "-f", *extra]


STORED = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16", torch.bool: "uint8",
          torch.uint8: "uint8", torch.int8: "int8"}
CAST_OR_VIEW = {"ToCopyBackward0", "TBackward0", "ViewBackward0", "ExpandBackward0", "TransposeBackward0",
                "PermuteBackward0", "UnsafeViewBackward0", "ReshapeAliasBackward0", "AliasBackward0"}


def reaches_parameter(fn, params):
    """True when autograd's graph from `fn` reaches a parameter's AccumulateGrad through casts and views only."""
    while fn is not None:
        if type(fn).__name__ == "AccumulateGrad":
            return any(fn.variable is p for p in params)
        if type(fn).__name__ not in CAST_OR_VIEW:
            return False
        nxt = [f for f, _ in fn.next_functions if f is not None]
        if len(nxt) != 1:
            return False
        fn = nxt[0]
    return False


def elements_key(dtype, a):
    """Layout-independent identity of a buffer: dtype, element count and its sorted bit patterns."""
    bits = np.ascontiguousarray(a).reshape(-1).view({4: np.int32, 2: np.int16, 1: np.uint8}[a.dtype.itemsize])
    return dtype, bits.size, np.sort(bits).tobytes()


def independent_dump():
    """Per step, the buffers autograd saves (own hooks, not cdma.torch's): not parameters (the object,
    a view of it, or a cast / view chain to it), rank >= 2, a stored dtype, once per (storage,
    offset, elements, version)."""
    saved, weights = {}, {}

    def dump(model, i):
        params = list(model.parameters())
        seen = set()
        saved[i] = []
        # The parameters as this step's forward reads them, in float32 and as autocast's bf16 casts.
        weights[i] = {p.detach().numpy().tobytes() for p in params} | \
            {p.detach().to(torch.bfloat16).view(torch.int16).numpy().tobytes() for p in params} | \
            {p.detach().t().contiguous().to(torch.bfloat16).view(torch.int16).numpy().tobytes()
             for p in params if p.dim() == 2}

        def pack(t):
            base = t._base if t._base is not None else t
            if any(base is p for p in params) or reaches_parameter(t.grad_fn, params) or t.dim() < 2 \
                    or t.dtype not in STORED:
                return t
            st = t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()
            key = (st.data_ptr(), t.storage_offset(), t.numel(), t.dtype, t._version)
            if key not in seen:
                seen.add(key)
                d = t.detach().contiguous()
                a = d.view(torch.int16).numpy() if d.dtype == torch.bfloat16 else d.numpy()
                saved[i].append(elements_key(STORED[t.dtype], a))
            return t

        return torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)

    return saved, weights, dump


@pytest.mark.parametrize("act,dtype", [("relu2", "bf16"), ("gelu", "fp32"), ("swiglu", "bf16")])
def test_trace_is_what_autograd_saves(tt, corpus, tmp_path, act, dtype):
    out = tmp_path / "t.h5"
    args = argv(corpus, act, dtype, out, "--samples", "0")
    assert tt.main(args) == 0
    a = tt.parser().parse_args(args)
    plain = tt.train(a, log=None)["losses"]
    saved, weights, dump = independent_dump()
    dumped = tt.train(a, dump=dump, log=None)["losses"]
    assert dumped == plain and len(plain) == STEPS

    t = cdma.open(out)
    df = t.tensors()
    assert sorted(set(df.iteration)) == list(range(STEPS))
    assert t.attrs["framework"].startswith("torch ")
    assert "transformer_traces.py" in t.attrs["command"] and f"--act {act}" in t.attrs["command"]
    for i in range(STEPS):
        rows = df[df.iteration == i]
        got = sorted(elements_key(rows.dtype[k], t.read(int(k))) for k in rows.index)
        want = sorted(saved[i])
        assert len(want) > 10
        assert got == want, f"step {i}: {len(got)} recorded, {len(want)} saved"
        if dtype == "bf16":
            assert "bfloat16" in set(rows.dtype)
        # The MLP's tensors are there, named by the module that keeps them.
        assert {"blocks.0.mlp.fc1", "blocks.0.mlp.fc2", "blocks.1.mlp.fc2"} <= set(rows.layer)
        assert "blocks.0.mlp.act" in set(rows.layer)
        # No parameters: no recorded buffer holds a weight of that step, nor its bf16 cast.
        for k in rows.index:
            assert t.read(int(k)).tobytes() not in weights[i]
    counters = json.loads(t.attribute("capture_counters"))
    assert counters["parameters"] > 0 and counters["recorded"] == len(df)


def test_relu2_act_saves_the_sparse_relu_output(tt, corpus, tmp_path):
    out = tmp_path / "r.h5"
    assert tt.main(argv(corpus, "relu2", "fp32", out, "--samples", "0")) == 0
    t = cdma.open(out)
    df = t.tensors()
    act = df[(df.layer == "blocks.0.mlp.act") & (df.iteration == 0)]
    fc2 = df[(df.layer == "blocks.0.mlp.fc2") & (df.iteration == 0)]
    assert len(act) == 1 and len(fc2) == 1
    r, sq = t.read(int(act.index[0])), t.read(int(fc2.index[0]))
    assert (r >= 0).all() and 0 < (r != 0).mean() < 1
    np.testing.assert_array_equal(sq.reshape(-1), (r * r).reshape(-1))  # fc2 keeps relu(h)^2


def test_cut_folded_keeps_the_first_sample(tt, corpus, tmp_path):
    full, cut = tmp_path / "full.h5", tmp_path / "cut.h5"
    assert tt.main(argv(corpus, "gelu", "bf16", full, "--samples", "1", "--cut-to", str(cut))) == 0
    f, c = cdma.open(full), cdma.open(cut)
    df, dc = f.tensors(), c.tensors()
    assert len(df) == len(dc) and list(df.layer) == list(dc.layer) and list(df.dtype) == list(dc.dtype)
    n_cut = 0
    for k in df.index:
        a, b = f.read(int(k)), c.read(int(k))
        d0 = df.dims[k][0]
        if df.op[k] == "linear" and len(df.dims[k]) == 2 and d0 == 4 * 16:
            assert b.shape == (16, *a.shape[1:]) and (b == a[:16]).all()
            n_cut += 1
        elif df.layer[k].endswith(".attn") and len(df.dims[k]) == 4 and d0 == 4 * 2:
            assert b.shape == (2, *a.shape[1:]) and (b == a[:2]).all()
            n_cut += 1
        else:
            assert (a == b).all() and a.shape == b.shape
    assert n_cut > 0
    assert json.loads(c.attribute("cut_folded"))["tensors_cut"] == n_cut
    assert c.attrs["command"] == f.attrs["command"] and c.attribute("capture_counters") == f.attribute(
        "capture_counters")
    assert len(c.timeline()) == len(f.timeline())
    # Only some iterations (the committed traces keep the first and the last).
    two = tmp_path / "two.h5"
    assert tt.main(argv(corpus, "gelu", "bf16", tmp_path / "unused.h5", "--cut-from", str(full), "--cut-to",
                        str(two), "--cut-iterations", "0,last")) == 0
    t2 = cdma.open(two)
    assert sorted(set(t2.tensors().iteration)) == [0, STEPS - 1]
    assert sorted(set(t2.timeline().iteration)) == [0, STEPS - 1]
    assert json.loads(t2.attribute("cut_folded"))["iterations"] == [0, STEPS - 1]
    with pytest.raises(SystemExit, match="iteration"):
        tt.cut_folded(full, tmp_path / "bad.h5", 16, 2, iterations=[7])
