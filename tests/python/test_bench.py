"""`cdma bench`: codec speed on a trace's own tensors against memcpy (issue 20). Speeds are not
asserted (they depend on the machine); what is checked is that every number is the quantity it says:
the compressed sizes equal the analysis of the same tensors, the ratios follow from the bytes, and
the speed ratios are the speeds over the memcpy speed of the same rows."""

import json

import pytest

from conftest import DATA, cdma_cli, cdma_json

VGG = DATA / "vgg-fmnist.h5"


def test_bench_sizes_equal_the_analysis_and_ratios_are_consistent(tmp_path):
    out = tmp_path / "b.json"
    p = cdma_cli("bench", VGG, "--rounds", "1", "--min-ms", "0", "--json", out, "-c", "zvc,zrle-4,lz4")
    assert "enc/mcpy" in p.stdout and "SIMD path" in p.stdout
    doc = json.loads(out.read_text())
    assert doc["schema"] == "cdma-bench" and doc["codecs"] == ["zvc", "zrle-4", "lz4"]
    assert doc["cpu"] and doc["simd"] in ("scalar", "avx2", "avx512")
    ana = cdma_json("analyze", VGG, "-c", "zvc,zrle-4,lz4", "-q")
    net = ana["network"][0]
    totals = [r for r in doc["rows"] if r["layer"] is None]
    assert [r["codec"] for r in totals] == doc["codecs"]
    for r in totals:
        assert r["tensors"] == net["tensors"] == 75 and r["bytes"] == net["bytes"]
        assert r["compressed_bytes"] == net["codecs"][r["codec"]]["bytes"]
        assert r["ratio"] == pytest.approx(r["bytes"] / r["compressed_bytes"], rel=1e-12)
        for k in ("encode", "decode"):
            assert r[f"{k}_gbps"] > 0
            assert r[f"{k}_vs_memcpy"] == pytest.approx(r[f"{k}_gbps"] / r["memcpy_gbps"], rel=1e-9)
    layers = [r for r in doc["rows"] if r["layer"] is not None and r["codec"] == "zvc"]
    by_layer = {(l["layer_index"], l["layer"]): l for l in ana["layer"]}
    assert len(layers) == len(by_layer)
    for r in layers:
        assert r["compressed_bytes"] == by_layer[(r["layer_index"], r["layer"])]["codecs"]["zvc"]["bytes"]
    assert sum(r["bytes"] for r in layers) == net["bytes"]


def test_bench_refuses_what_it_cannot_measure(tmp_path):
    p = cdma_cli("bench", VGG, "--layers", "no-such-layer", check=False)
    assert p.returncode == 2 and "nothing was measured" in p.stderr
    p = cdma_cli("bench", VGG, "-c", "zfoo", check=False)
    assert p.returncode != 0 and "unknown codec" in p.stderr
    p = cdma_cli("bench", tmp_path / "missing.h5", check=False)
    assert p.returncode == 1 and "missing.h5: no such file" in p.stderr  # a missing input is bad input, as everywhere
