"""Small CLI consistency items (issue 34, item 5): one reading of list options in every verb, one column per
--engine, `cdma info`'s two iteration counts told apart, and `cdma bench` saying when it timed cached data."""

import json
import pathlib

import pytest

from conftest import DATA, cdma_cli

VGG = DATA / "vgg-fmnist.h5"


# --codecs takes one comma-separated value in analyze, report and bench: `--codecs zvc,lz4` works everywhere, and a
# second word is never read as a codec in one verb and as a trace in another.
@pytest.mark.parametrize("verb,extra", [("analyze", ["-q"]), ("report", ["--no-replay", "-o", "{tmp}/r.html"]),
                                        ("bench", ["--rounds", "1", "--min-ms", "0", "-q"])])
def test_codecs_is_one_comma_separated_value_in_every_verb(verb, extra, tmp_path):
    extra = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    assert cdma_cli(verb, VGG, "--codecs", "zvc,lz4", *extra).returncode == 0
    # a space-separated list: the second codec lands among the traces and is named as a codec, exit 2
    p = cdma_cli(verb, VGG, "--codecs", "zvc", "lz4", *extra, check=False)
    assert p.returncode == 2, (verb, p.returncode, p.stderr)
    assert "'lz4' is a codec name, not a trace file" in p.stderr and "--codecs zvc,lz4" in p.stderr, p.stderr
    # the option before the traces: it takes one value, the trace stays a trace
    p = cdma_cli(verb, "--codecs", "zvc", VGG, *extra, check=False)
    assert p.returncode == 0, (verb, p.stderr)


def test_report_list_options_do_not_swallow_traces(tmp_path):
    out = tmp_path / "r.html"
    p = cdma_cli("report", "--layouts", "stored,NHWC", "--dtypes", "stored", "--ops", "conv,pool", VGG, "--no-replay",
                 "-o", out, check=False)
    assert p.returncode == 0, p.stderr
    assert out.stat().st_size > 0


def test_engine_is_one_value_per_flag_and_repeatable():
    p = cdma_cli("replay", "--engine", "mc", "--engine", "sm:lz4", VGG, "--json", "-")
    configs = [t["config"] for t in json.loads(p.stdout)["runs"][0]["totals"]]
    assert configs == ["oracle", "vDNN", "cDMA-zvc-mc", "cDMA-lz4-sm"], configs


@pytest.mark.parametrize("verb,args", [
    ("replay", ["--net", "vgg16", "--ratio", "2.6", "--engine", "mc", "--engine", "mc"]),
    ("replay", ["--net", "vgg16", "--ratio", "2.6", "--engine", "mc", "--engine", "mc:zvc"]),  # zvc is the default
    ("replay", ["--net", "vgg16", "--ratio", "2.6", "--engine", "sm:zlib", "--engine", "sm:zlib-6"]),
    ("report", [VGG, "--engine", "dma", "--engine", "dma:zvc", "-o", "{tmp}/r.html"]),
])
def test_repeated_engine_is_refused(verb, args, tmp_path):
    args = [str(a).replace("{tmp}", str(tmp_path)) for a in args]
    p = cdma_cli(verb, *args, check=False)
    assert p.returncode == 2, p.stderr
    assert "is named twice" in p.stderr, p.stderr
    assert not (tmp_path / "r.html").exists()


def test_info_tells_the_two_iteration_counts_apart():
    table = cdma_cli("info", VGG).stdout
    lines = [l.strip() for l in table.splitlines() if l.strip().startswith("iterations ")]
    # the iterations the tensors carry, and the producer's attribute (cdma train: iterations run), each labelled
    assert lines == ["iterations   5 with tensors (0..599)",
                     "iterations attribute 600 (the producer's count: iterations run, or optimizer steps)"], lines


def last_level_cache():
    sizes = []
    for f in pathlib.Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        t = f.read_text().strip()
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1], 1)
        sizes.append(int(t.rstrip("KMG")) * mult)
    return max(sizes, default=0)


def test_bench_says_when_it_timed_cached_data(tmp_path):
    llc = last_level_cache()
    p = cdma_cli("bench", VGG, "-c", "zvc", "--rounds", "1", "--min-ms", "0", "--json", tmp_path / "b.json")
    doc = json.loads((tmp_path / "b.json").read_text())
    assert doc["largest_tensor_bytes"] == 256 * 1024  # pool1's and conv1_2's input: 4 x 16 x 32 x 32 fp32
    assert doc["last_level_cache_bytes"] == (llc or None)
    cached = llc > 0 and 2 * doc["largest_tensor_bytes"] <= llc
    assert doc["in_cache"] == cached
    assert ("in-cache speeds" in p.stdout) == cached, p.stdout
    if llc == 0:
        pytest.skip("no cache sizes in /sys on this machine")


def test_bench_on_tensors_larger_than_the_cache_says_nothing_of_the_cache(tmp_path):
    llc = last_level_cache()
    if llc == 0:
        pytest.skip("no cache sizes in /sys on this machine")
    # one tensor of at least the cache's size (fp32), so twice it does not fit
    c = -(-llc // (4 * 64 * 64)) + 1
    t = tmp_path / "big.h5"
    cdma_cli("synth", "-o", t, "--shape", f"1,{c},64,64", "--layers", "1", "--iterations", "1")
    p = cdma_cli("bench", t, "-c", "zvc", "--rounds", "1", "--min-ms", "0", "--json", tmp_path / "b.json")
    doc = json.loads((tmp_path / "b.json").read_text())
    assert doc["largest_tensor_bytes"] >= llc and doc["in_cache"] is False
    assert "in-cache speeds" not in p.stdout, p.stdout
