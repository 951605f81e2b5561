"""The arrays the native module hands to numpy hold the trace's values, checked against h5py (an
independent reader) on the sample traces. A module built with pybind11 < 2.12 and run under numpy 2
returned arrays of stride 0: every numeric column of tensors() repeated its last value
(iteration 599 in every row) and read() failed. Run under Debian's numpy 1.x (ctest) and under
numpy 2 (scripts/test-venv.sh)."""

import h5py
import numpy as np
import pandas as pd
import pytest

import cdma
from conftest import SAMPLE_TRACES, SOURCE_DIR

TRACES = SAMPLE_TRACES + [SOURCE_DIR / "data" / "resnet18-fmnist-torch.h5"]


def h5_tensor_columns(path):
    """The numeric tensors() columns as h5py sees them: one row per tensor, in capture order."""
    cdma_names = cdma.open(path).tensors()["name"].tolist()
    rows = []
    with h5py.File(path, "r") as f:
        g = f["tensors"]
        assert sorted(cdma_names) == sorted(g.keys()), f"{path}: cdma and h5py list other tensors"
        for n in cdma_names:
            d = g[n]
            elements = int(np.prod(d.shape, dtype=np.int64))
            rows.append({
                "iteration": int(d.attrs["iteration"]),
                "layer_index": int(d.attrs["layer_index"]),
                "elements": elements,
                "bytes": elements * d.dtype.itemsize,
                "call": int(d.attrs["call"]) if "call" in d.attrs else None,
            })
    return pd.DataFrame(rows)


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.name)
def test_tensors_numeric_columns_are_the_traces(path):
    df = cdma.open(path).tensors()
    want = h5_tensor_columns(path)
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    assert set(numeric) >= {"iteration", "layer_index", "elements", "bytes", "call"}, numeric
    for col in numeric:
        assert col in want.columns, f"{col}: no h5py counterpart in this test (add one)"
        got = [None if pd.isna(v) else int(v) for v in df[col]]
        exp = [None if pd.isna(v) else int(v) for v in want[col]]
        # The stride-0 symptom first, so that the failure names it.
        if len(set(exp)) > 1:
            assert len(set(got)) > 1, f"{path.name}: tensors().{col} is constant ({got[0]}) where the trace is not"
        assert got == exp, f"{path.name}: tensors().{col} differs from h5py"
    assert [tuple(d) for d in df["dims"]] == [tuple(h5py.File(path, "r")["tensors"][n].shape) for n in df["name"]]


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.name)
def test_read_equals_h5py(path):
    t = cdma.open(path)
    with h5py.File(path, "r") as f:
        for info, arr in t:
            ref = f["tensors"][info.name][()]
            assert arr.shape == ref.shape, info.name
            assert arr.dtype.itemsize == ref.dtype.itemsize, info.name
            assert all(s != 0 for s, n in zip(arr.strides, arr.shape) if n > 1), f"{info.name}: strides {arr.strides}"
            assert arr.tobytes() == np.ascontiguousarray(ref).tobytes(), f"{path.name}: read({info.name!r}) differs from h5py"


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.name)
def test_timeline_numeric_columns_are_the_traces(path):
    tl = cdma.open(path).timeline()
    with h5py.File(path, "r") as f:
        ref = f["timeline"][()]
    assert len(tl) == len(ref) > 1
    for col in ref.dtype.names:
        if ref.dtype[col].kind not in "iu":
            continue
        got, exp = tl[col].to_numpy(), ref[col]
        if len(np.unique(exp)) > 1:
            assert len(np.unique(got)) > 1, f"{path.name}: timeline().{col} is constant where the trace is not"
        assert np.array_equal(got, exp), f"{path.name}: timeline().{col} differs from h5py"
