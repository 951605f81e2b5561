"""Small CLI promises of issue 20: an empty selection is an error, not an empty table; --verify says
what it verified; the progress bar leaves no spurious final line; cdma info shows the extension
attributes producers write."""

import pytest

from conftest import DATA, cdma_cli

VGG = DATA / "vgg-fmnist.h5"


def test_filters_that_match_nothing_are_an_error(tmp_path):
    out = tmp_path / "a.json"
    p = cdma_cli("analyze", VGG, "--ops", "no-such-op", "--json", out, check=False)
    assert p.returncode == 2 and "no tensor or /stats row passes the filters" in p.stderr
    assert not out.exists()
    assert cdma_cli("analyze", VGG, "--ops", "conv", "-q", "--json", out).returncode == 0 and out.exists()


def test_empty_selection_is_refused_by_the_library_too(tmp_path):
    """The refusal lives in the library (analyze::nothing_selected): cdma.analysis() raises, and
    cdma report writes no page, with the CLI's sentence."""
    import cdma

    with pytest.raises(ValueError, match="no tensor or /stats row passes the filters"):
        cdma.analysis(VGG, ops=["no-such-op"])
    assert len(cdma.analysis(VGG, ops=["conv"], codecs="zvc").df()) > 0
    page = tmp_path / "r.html"
    p = cdma_cli("report", VGG, "--ops", "no-such-op", "--no-replay", "-o", page, check=False)
    assert p.returncode == 2 and "passes the filters" in p.stderr and not page.exists()


def test_read_modes_give_the_same_json(tmp_path):
    """--read mmap (default), pread and hdf5 are three ways to the same bytes. The trace is written
    contiguous (cdma synth), so that mmap and pread really take their paths (--timing's mapped=)."""
    t = tmp_path / "s.h5"
    cdma_cli("synth", "-o", t, "--shape", "2,16,64,64", "--layers", "3", "--density", "0.3")
    docs = {}
    for m in ("mmap", "pread", "hdf5"):
        p = cdma_cli("analyze", t, "-q", "--read", m, "-c", "zvc,zrle-4,lz4", "--timing", "--json", "-")
        docs[m] = p.stdout
        mapped = int(p.stderr.split("mapped=")[1].split()[0])
        assert (mapped > 0) == (m != "hdf5"), (m, p.stderr)
    assert docs["mmap"] == docs["pread"] == docs["hdf5"] and '"tensor"' in docs["mmap"]
    assert cdma_cli("analyze", VGG, "--read", "pread", "--no-mmap", check=False).returncode == 2


def test_python_read_modes(tmp_path):
    """cdma.analysis(read=...) takes the CLI's three modes (same numbers) and refuses other names
    and a contradicting zero_copy=False."""
    import cdma
    t = tmp_path / "s.h5"
    cdma_cli("synth", "-o", t, "--shape", "2,16,64,64", "--layers", "2", "--density", "0.4")
    got = {m: cdma.analysis(t, codecs="zvc,zrle-4", read=m).to_json() for m in ("mmap", "pread", "hdf5")}
    assert got["mmap"] == got["pread"] == got["hdf5"]
    with pytest.raises(ValueError, match="read must be"):
        cdma.analysis(t, read="mmap2")
    with pytest.raises(ValueError, match="contradicts"):
        cdma.analysis(t, read="pread", zero_copy=False)


def test_verify_says_what_it_verified():
    p = cdma_cli("analyze", VGG, "--verify", "-q", "-c", "zvc,lz4", "--json", "-")
    assert "verified: every encoding (zvc, lz4) of the 75 tensors analysed decoded to the original bytes" in p.stderr
    assert "verified" not in cdma_cli("analyze", VGG, "-q", "--json", "-").stderr


def test_progress_bar_leaves_no_final_line():
    p = cdma_cli("analyze", VGG, "--progress", "always", "-q", "--json", "-")
    assert "0/0 tensors" not in p.stderr  # the old final call drew an empty Progress


def test_info_shows_extension_attributes():
    p = cdma_cli("info", VGG)
    for key in ("status", "batch_size", "capture_batch", "test_accuracy"):
        assert key in p.stdout, (key, p.stdout)
    assert "finished" in p.stdout
