"""The Python API (import cdma) against the cdma command and against h5py.

Every number cdma.analyze() and cdma.replay() return is compared with the JSON the CLI writes for
the same inputs; traces are compared with what h5py reads from the same files; codec sizes with
the CLI's per-tensor sizes and with len(encode())."""

import io
import json
import math
import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pandas as pd
import pytest

import cdma
from conftest import DATA, SAMPLE_TRACES, SOURCE_DIR, cdma_cli, cdma_json

VGG = DATA / "vgg-fmnist.h5"
SQZ = DATA / "squeezenet-fmnist.h5"
LEVEL_KEYS = {
    "tensor": ["name"],
    "layer": ["layer_index", "layer", "op", "role"],
    "iteration": ["iteration"],
    "layer_iteration": ["layer_index", "layer", "op", "role", "iteration"],
    "network": [],
}


@pytest.fixture(scope="module")
def h5py_trace(tmp_path_factory):
    """A trace written by h5py alone (tests/formats/h5py_write_trace.py): every dtype and layout,
    a chunked + deflated dataset, /timeline and /stats; with what a reader must find."""
    d = tmp_path_factory.mktemp("h5py")
    out, exp = d / "h5py.h5", d / "expected.json"
    subprocess.run([sys.executable, str(SOURCE_DIR / "tests/formats/h5py_write_trace.py"), str(out), str(exp)],
                   check=True)
    return out, json.loads(exp.read_text())


# --- traces ------------------------------------------------------------------------------------

def test_readme_example_runs():
    p = subprocess.run([sys.executable, "-c",
                        "import cdma; t = cdma.open('data/vgg-fmnist.h5'); print(t.tensors().head())"],
                       capture_output=True, text=True, cwd=SOURCE_DIR)
    assert p.returncode == 0, p.stderr
    assert "conv1_1" in p.stdout and "0000000000" in p.stdout


@pytest.mark.parametrize("path", SAMPLE_TRACES, ids=lambda p: p.name)
def test_trace_matches_h5py(path):
    t = cdma.open(path)
    df = t.tensors()
    with h5py.File(path, "r") as f:
        assert t.attrs["producer"] == f.attrs["producer"]
        assert t.attrs["model"] == f.attrs["model"]
        assert t.attrs["complete"] == bool(f.attrs["complete"])
        names = sorted(f["tensors"].keys())
        assert list(df["name"]) == names
        for _, row in df.iterrows():
            d = f["tensors"][row["name"]]
            for key in ("iteration", "layer", "layer_index", "op", "role", "phase", "layout", "dtype"):
                v = d.attrs[key]
                v = v.decode() if isinstance(v, bytes) else v
                assert row[key] == v, (row["name"], key)
            assert row["offload"] == bool(d.attrs["offload"])
            assert row["dims"] == d.shape
            a = t.read(row["name"])
            ref = d[()]
            assert a.dtype == ref.dtype and a.shape == ref.shape
            assert np.array_equal(a, ref)
            assert row["bytes"] == ref.nbytes and row["elements"] == ref.size
        tl = t.timeline()
        assert len(tl) == len(f["timeline"])
        assert list(tl["start_ns"]) == list(f["timeline"]["start_ns"])
        assert list(tl["layer"]) == [s.decode() for s in f["timeline"]["layer"]]


def test_h5py_written_trace(h5py_trace):
    path, exp = h5py_trace
    t = cdma.open(path)
    assert t.attrs["dropped_tensors"] == 3 and t.attrs["device"] is None
    df = t.tensors()
    assert len(df) == len(exp["tensors"])
    for (_, row), e in zip(df.iterrows(), exp["tensors"]):
        assert row["name"] == e["name"] and list(row["dims"]) == e["dims"]
        assert row["dtype"] == e["dtype"] and row["layout"] == e["layout"] and row["call"] == e["call"]
        assert row["offloaded"] == e["offloaded"]
        if e["offload"] is None:
            assert row["offload"] is pd.NA  # not written: not filled in
        else:
            assert row["offload"] == bool(e["offload"])
        a = t.read(row["name"])
        assert a.tobytes().hex() == e["hex"]
        assert list(a.shape) == e["dims"]
    bf = t.read(2)
    assert bf.dtype == np.uint16
    widened = cdma.bfloat16_to_float32(bf)
    assert widened.dtype == np.float32
    assert np.array_equal(widened.view(np.uint32) >> 16, bf.astype(np.uint32))
    assert t.timeline().values.tolist() == exp["timeline"]
    assert t.stats().values.tolist() == exp["stats"]


def test_iteration_is_lazy_and_complete():
    t = cdma.open(VGG)
    seen = 0
    for info, arr in t:
        assert arr.shape == info.dims and arr.nbytes == info.bytes
        seen += 1
    assert seen == len(t) == 80
    with pytest.raises(KeyError):
        t.read("no-such-tensor")
    with pytest.raises(IndexError):
        t.read(10_000)


def test_trace_errors_carry_the_cli_message(tmp_path):
    bad = tmp_path / "not-a-trace.h5"
    bad.write_bytes(b"this is not HDF5")
    with pytest.raises(cdma.TraceError) as ei:
        cdma.open(bad)
    assert ei.value.file == str(bad)
    p = cdma_cli("info", bad, check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == f"cdma info: error: {ei.value}"
    with pytest.raises(cdma.TraceError):
        cdma.open(tmp_path / "missing.h5")


# --- codecs ------------------------------------------------------------------------------------

CODECS = ["zvc", "zrle-1", "zrle-4", "zrle-16", "zlib-0", "zlib-6", "zlib-9", "zstd-1", "zstd-19", "lz4"]


def sparse(rng, n, dtype, density):
    x = rng.standard_normal(n).astype(np.float32)
    x[rng.random(n) > density] = 0
    if dtype == "bfloat16":
        return (x.view(np.uint32) >> 16).astype(np.uint16)
    if dtype in ("int8", "uint8"):
        return (x * 20).astype(dtype)
    return x.astype(dtype)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int8", "uint8"])
def test_codec_round_trip_random(codec, dtype):
    rng = np.random.default_rng(hash((codec, dtype)) % 2**32)
    for n, density in [(0, 0.5), (1, 1.0), (31, 0.0), (1000, 0.3), (4097, 0.05), (20000, 0.9)]:
        x = sparse(rng, n, dtype, density)
        blob = cdma.codecs.encode(codec, x, dtype=dtype)
        assert isinstance(blob, bytes)
        assert cdma.codecs.size(codec, x, dtype=dtype) == len(blob)
        y = cdma.codecs.decode(codec, blob, dtype, n)
        assert y.tobytes() == x.tobytes()
        # bytes in, the same stream out
        assert cdma.codecs.encode(codec, x.tobytes(), dtype=dtype) == blob


def test_zvc_size_formula():
    # docs/spec/CODECS.md: 4*ceil(n/32) mask bytes + w bytes per nonzero.
    rng = np.random.default_rng(3)
    x = sparse(rng, 1000, "float32", 0.25)
    nnz = int(np.count_nonzero(x))
    assert cdma.codecs.size("zvc", x) == 4 * math.ceil(1000 / 32) + 4 * nnz


def test_codec_sizes_equal_the_cli_per_tensor():
    doc = cdma_json("analyze", VGG, "--all-tensors", "-q")
    t = cdma.open(VGG)
    rows = [r for r in doc["tensor"] if r["layout"] == "stored" and r["dtype"] == "stored"]
    assert len(rows) == len(t)
    for r in rows:
        x = t.read(r["name"])
        for codec, c in r["codecs"].items():
            assert cdma.codecs.size(codec, x) == c["bytes"], (r["name"], codec)


def test_codec_errors():
    with pytest.raises(cdma.CodecError) as ei:
        cdma.codecs.encode("zfoo", np.zeros(4, np.float32))
    p = cdma_cli("analyze", VGG, "-c", "zfoo", check=False)
    assert p.returncode != 0 and str(ei.value) in p.stderr
    blob = cdma.codecs.encode("zvc", np.ones(64, np.float32))
    with pytest.raises(cdma.CodecError):
        cdma.codecs.decode("zvc", blob[:-3], "float32", 64)
    with pytest.raises(cdma.CodecError):
        cdma.codecs.decode("lz4", b"\xff" * 40, "float32", 64)
    with pytest.raises(ValueError):
        cdma.codecs.encode("zvc", b"abc")  # bytes need a dtype
    with pytest.raises(cdma.UsageError):
        cdma.codecs.encode("zvc", b"abc", dtype="float32")  # not whole elements
    assert cdma.codecs.canonical("zrle") == "zrle-4"
    assert cdma.codecs.defaults() == ["zvc", "zrle-4", "zlib-6", "zstd-1", "lz4"]


def test_codecs_do_not_copy_strided_input_silently_wrong():
    x = np.arange(64, dtype=np.float32).reshape(8, 8)[:, ::2]  # not contiguous
    y = cdma.codecs.decode("zvc", cdma.codecs.encode("zvc", x), "float32", x.size)
    assert np.array_equal(y, x.ravel())


def test_codec_releases_the_gil():
    # While one thread compresses 16 MiB with zlib-1 (about a second), the main thread keeps running
    # Python. With the GIL held for the whole call, no main-thread step could fall inside the call.
    x = np.random.default_rng(0).standard_normal(4 << 20).astype(np.float32)
    window = {}

    def work():
        window["start"] = time.perf_counter()
        cdma.codecs.encode("zlib-1", x)
        window["end"] = time.perf_counter()

    th = threading.Thread(target=work)
    stamps = []
    th.start()
    while th.is_alive():
        stamps.append(time.perf_counter())
        time.sleep(0.001)
    th.join()
    lo, hi = window["start"], window["end"]
    mid = [s for s in stamps if lo + 0.1 * (hi - lo) < s < hi - 0.1 * (hi - lo)]
    assert hi - lo > 0.05
    assert len(mid) >= 10, (hi - lo, len(mid))


# --- analysis ----------------------------------------------------------------------------------

def check_against_json(df, doc, level, codecs):
    """Every row of the JSON level, every measure and codec, equals the DataFrame's."""
    rows = doc[level]
    assert len(df) == len(rows) * len(codecs)
    paths = {t["index"]: t["path"] for t in doc["traces"]}
    models = {t["index"]: t["model"] for t in doc["traces"]}
    i = 0
    for r in rows:
        for codec in codecs:
            d = df.iloc[i]
            i += 1
            assert d["trace"] == r["trace"] and d["path"] == paths[r["trace"]] and d["model"] == models[r["trace"]]
            for k in LEVEL_KEYS[level] + ["layout", "dtype"]:
                assert d[k] == r[k], (level, k)
            for k in ("tensors", "iterations", "elements", "bytes", "nonzeros", "zero_runs", "density"):
                assert d[k] == r[k], (level, k)
            c = r["codecs"][codec]
            assert d["codec"] == codec
            for k, jk in (("compressed_bytes", "bytes"), ("ratio", "ratio"), ("mean_ratio", "mean_ratio")):
                if c[jk] is None:
                    assert pd.isna(d[k])
                else:
                    assert d[k] == c[jk], (level, codec, k)
            assert d["exact"] == c.get("exact", True)


@pytest.mark.parametrize("level", list(LEVEL_KEYS))
def test_analyze_equals_cli_json(level):
    codecs = ["zvc", "zrle-2", "zlib-1", "zstd-3", "lz4"]
    paths = [str(VGG), str(SQZ)]
    doc = cdma_json("analyze", *paths, "-c", ",".join(codecs), "--layouts", "stored,NHWC", "--dtypes",
                    "stored,bfloat16", "-q")
    df = cdma.analyze(paths, by=level, codecs=codecs, layouts=["stored", "NHWC"], dtypes="stored,bfloat16")
    check_against_json(df, doc, level, codecs)


def test_analyze_options_and_h5py_trace(h5py_trace):
    path, _ = h5py_trace
    for extra, kw in [((), {}), (("--all-tensors",), dict(all_tensors=True)),
                      (("--chunk", "16", "--iterations", "0-1"), dict(chunk="16", iterations=[(0, 1)])),
                      (("--ops", "conv,linear"), dict(ops=["conv", "linear"]))]:
        doc = cdma_json("analyze", path, *extra, "-q")
        a = cdma.analysis([path], **kw)
        for level in LEVEL_KEYS:
            check_against_json(a.df(level), doc, level, doc["options"]["codecs"])
        assert a.to_json() == cdma_cli("analyze", path, *extra, "-q", "--json", "-").stdout


def test_cli_csv_has_path_and_model_and_long_form(tmp_path):
    wide, long_ = tmp_path / "wide.csv", tmp_path / "long.csv"
    cdma_cli("analyze", VGG, SQZ, "--csv", wide, "-q")
    cdma_cli("analyze", VGG, SQZ, "--csv", long_, "--long", "-q")
    w = pd.read_csv(wide)
    assert list(w.columns[:3]) == ["trace", "path", "model"]
    assert set(w["model"]) == {"vgg", "squeezenet"} and set(w["path"]) == {str(VGG), str(SQZ)}
    l = pd.read_csv(long_, float_precision="round_trip")
    df = cdma.analyze([VGG, SQZ], by="layer")
    assert list(l.columns) == list(df.columns)
    assert len(l) == len(df)
    for col in ("bytes", "compressed_bytes", "nonzeros"):
        assert list(l[col]) == list(df[col])
    for col in ("ratio", "mean_ratio", "density"):
        # reals are written in the shortest text that reads back to the same double
        assert np.array_equal(l[col].to_numpy(), df[col].to_numpy(dtype=float), equal_nan=True)
    p = cdma_cli("analyze", VGG, "--long", check=False)
    assert p.returncode == 2  # --long needs --csv


def test_analyze_errors():
    with pytest.raises(cdma.CodecError):
        cdma.analyze([VGG], codecs=["zvc", "nope"])
    with pytest.raises(cdma.UsageError):
        cdma.analyze([VGG], by="rows")
    with pytest.raises(cdma.TraceError):
        cdma.analyze([DATA / "missing.h5"])


def test_analyze_progress_and_interrupt():
    calls = []
    cdma.analysis([VGG], progress=lambda *a: calls.append(a))
    assert calls and calls[-1][0] == calls[-1][1]  # the last call: all bytes done

    def stop(*_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cdma.analysis([VGG, SQZ], progress=stop)


# --- replay ------------------------------------------------------------------------------------

def check_replay(r, doc):
    assert r.json == doc
    i = 0
    for run in doc["runs"]:
        for tot in run["totals"]:
            row = r.totals.iloc[i]
            i += 1
            assert row["network"] == run["network"] and row["config"] == tot["config"]
            for k in ("time_s", "forward_s", "backward_s", "stall_s", "offloaded_bytes", "link_bytes",
                      "overhead_vs_oracle"):
                assert row[k] == tot[k], k
            assert (pd.isna(row["speedup_vs_vdnn"]) if tot["speedup_vs_vdnn"] is None
                    else row["speedup_vs_vdnn"] == tot["speedup_vs_vdnn"])
            assert row["unmeasured_layers"] == len(run["unmeasured"]["layers"])
    assert i == len(r.totals)
    n = 0
    for run in doc["runs"]:
        for layer in run["layers"]:
            for cfg, c in layer["configs"].items():
                m = r.layers[(r.layers["network"] == run["network"]) & (r.layers["index"] == layer["index"])
                             & (r.layers["config"] == cfg)]
                assert len(m) == 1
                m = m.iloc[0]
                assert m["layer"] == layer["name"] and m["compute_fwd_s"] == layer["fwd_s"]
                for k in ("fwd_s", "bwd_s", "offload_s", "prefetch_s", "demand_fetch_s", "offload_bytes",
                          "link_bytes", "ratio", "fwd_stall_s", "bwd_stall_s", "prefetch_layer"):
                    assert m[k] == c[k], k
                n += 1
    assert n == len(r.layers)
    for s in doc["summary"]:
        m = r.summary[r.summary["network"] == s["network"]]
        assert len(m) == len(s) - 4  # network, oracle_s, vdnn_s, vdnn_overhead + one per engine
        for _, row in m.iterrows():
            assert row["speedup_vs_vdnn"] == s[row["engine"]] and row["vdnn_overhead"] == s["vdnn_overhead"]


def test_replay_trace_equals_cli_json():
    doc = cdma_json("replay", VGG, "-q")
    check_replay(cdma.replay(VGG), doc)


def test_replay_zoo_with_measured_ratios():
    args = ["--net", "vgg16", "--net", "squeezenet", "--ratios", str(VGG), "--fill", "average", "--gpu", "h100",
            "--link", "pcie5", "--engine", "mc:zvc", "--engine", "sm:lz4", "-q"]
    doc = cdma_json("replay", *args)
    r = cdma.replay(networks=["vgg16", "squeezenet"], ratios=VGG, fill="average", gpu="h100", link="pcie5",
                    engines=["mc:zvc", "sm:lz4"])
    check_replay(r, doc)
    # The ratios of an Analysis object in memory give the same times as the trace file route.
    a = cdma.analysis([VGG], codecs=["zvc", "lz4"])
    r2 = cdma.replay(networks=["vgg16", "squeezenet"], ratios=a, fill="average", gpu="h100", link="pcie5",
                     engines=["mc:zvc", "sm:lz4"])
    assert list(r2.totals["time_s"]) == list(r.totals["time_s"])


def test_replay_sweep_and_csv(tmp_path):
    csv, layers_csv = tmp_path / "sweep.csv", tmp_path / "layers.csv"
    args = ["--net", "alexnet", "--sweep", "density", "--sweep-values", "0.1,0.5,0.9", "-q"]
    doc = cdma_json(*["replay", *args])
    r = cdma.replay(networks="alexnet", sweep="density", sweep_values=[0.1, 0.5, 0.9])
    assert r.json == doc
    rows = doc["sweeps"][0]["rows"]
    assert list(r.sweep["value"].unique()) == [0.1, 0.5, 0.9]
    for row in rows:
        s = r.sweep[r.sweep["value"] == row["value"]].set_index("config")
        assert s.loc["oracle", "time_s"] == row["oracle_s"] and s.loc["vDNN", "time_s"] == row["vdnn_s"]
        for eng, e in row["engines"].items():
            assert s.loc[eng, "time_s"] == e["time_s"] and s.loc[eng, "speedup_vs_vdnn"] == e["speedup_vs_vdnn"]
    cdma_cli("replay", *args, "--csv", csv, "--csv-layers", layers_csv)
    c = pd.read_csv(csv, float_precision="round_trip")
    assert list(c.columns) == list(r.sweep.columns) and np.array_equal(c["time_s"], r.sweep["time_s"])
    l = pd.read_csv(layers_csv, float_precision="round_trip")
    assert len(l) == len(r.layers) and np.array_equal(l["offload_s"], r.layers["offload_s"])


def test_replay_totals_csv_equals_frame(tmp_path):
    csv = tmp_path / "t.csv"
    cdma_cli("replay", "--net", "paper", "--ratio", "2.6", "-q", "--csv", csv)
    c = pd.read_csv(csv, float_precision="round_trip")
    r = cdma.replay(networks=["paper"], ratio=2.6)
    assert list(c["network"]) == list(r.totals["network"])
    assert np.array_equal(c["time_s"], r.totals["time_s"]) and np.array_equal(c["link_bytes"], r.totals["link_bytes"])
    # The paper set's average cDMA speedup, from the DataFrame, is the CLI summary's.
    doc = cdma_json("replay", "--net", "paper", "--ratio", "2.6", "-q")
    mc = r.summary[r.summary["engine"] == "cDMA-zvc-mc"]["speedup_vs_vdnn"]
    assert mc.mean() == pytest.approx(np.mean([s["cDMA-zvc-mc"] for s in doc["summary"]]), rel=1e-12)


def test_replay_errors_carry_the_cli_message():
    with pytest.raises(cdma.UsageError) as ei:
        cdma.replay(networks=["vgg16"], gpu="no-such-gpu", ratio=2)
    p = cdma_cli("replay", "--net", "vgg16", "--gpu", "no-such-gpu", "--ratio", "2", check=False)
    assert p.returncode == 2 and p.stderr.strip() == f"cdma replay: {ei.value}"
    with pytest.raises(cdma.UsageError):
        cdma.replay(networks=["vgg16"])  # a zoo network needs a ratio source
    with pytest.raises(cdma.UsageError):
        cdma.replay(networks=["nonet"], ratio=2)


def test_import_without_pythonpath_after_the_readme_build():
    # scripts/test.sh and scripts/demo.sh register the build's package for /usr/bin/python3
    # (scripts/python-path.sh writes a cdma.pth); the README promises that plain `import cdma` works.
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.run(["/usr/bin/python3", "-c", "import cdma, sys; print(cdma.__file__)"], capture_output=True,
                       text=True, env=env, cwd="/")
    assert p.returncode == 0, "import cdma failed without PYTHONPATH (run scripts/python-path.sh): " + p.stderr
    assert p.stdout.strip().endswith("python/cdma/__init__.py")


def test_gpu_overrides_and_engine_placements():
    # --peak-tflops and --dram-gbps override the preset (every number of the model has a flag).
    base = cdma.replay(networks="vgg16", ratio=2)
    fast = cdma.replay(networks="vgg16", ratio=2, peak_tflops=2 * 12.15, dram_gbps=2 * 547.7)
    doc = cdma_json("replay", "--net", "vgg16", "--ratio", "2", "--peak-tflops", str(2 * 12.15), "--dram-gbps",
                    str(2 * 547.7), "-q")
    assert fast.json == doc
    o0, o1 = base.totals["time_s"][0], fast.totals["time_s"][0]
    assert o1 == pytest.approx(o0 / 2, rel=1e-6)  # a roofline at twice the peak and twice the bandwidth
    with pytest.raises(cdma.UsageError):
        cdma.replay(networks="vgg16", ratio=2, engines=["none"])
    p = cdma_cli("replay", "--net", "vgg16", "--ratio", "2", "--engine", "none", check=False)
    assert p.returncode == 2 and "dma, mc or sm" in p.stderr
    p = cdma_cli("replay", "--net", "vgg16", "--ratio", "2", "--peak-tflops", "0", check=False)
    assert p.returncode == 2
    assert "source: https://" in cdma_cli("replay", "--list").stdout
