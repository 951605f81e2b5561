"""The Python API under careless use (issue 29): user code (a progress callback) that opens a trace
while an analysis runs, Ctrl-C, bounded JSON indent, values that are refused with a clear error
instead of being taken for something else, a Trace used after close, /stats rows validated.

Cases that could hang run in a child interpreter with a time limit, so that a regression fails the
test instead of hanging the suite."""

import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import cdma
from conftest import DATA, SOURCE_DIR

VGG = DATA / "vgg-fmnist.h5"


def run_child(code, timeout=120, **kw):
    """Runs `code` in a fresh interpreter with this build's package; returns the CompletedProcess."""
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=SOURCE_DIR, env=env, **kw)


# --- the HDF5 lock is never held while user code runs ---------------------------------------------

def test_progress_callback_that_opens_a_trace_does_not_deadlock():
    p = run_child(f"""
        import cdma
        seen = []
        def progress(done, total, tdone, ttotal):
            t = cdma.open({str(VGG)!r})          # takes the HDF5 lock the analysis held
            seen.append(len(t.tensors()))
            t.close()
        a = cdma.analysis({str(VGG)!r}, codecs="zvc", threads=1, read="hdf5", progress=progress)
        assert seen and all(n == seen[0] for n in seen), seen
        print("ok", len(seen), len(a.df()))
    """, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ok ")


def test_progress_callback_that_analyses_does_not_deadlock():
    # A nested analysis from the callback (once): the same lock, taken again by user code.
    p = run_child(f"""
        import cdma
        nested = []
        def progress(*_):
            if not nested:
                nested.append(cdma.analysis({str(VGG)!r}, codecs="zvc", threads=1))
        a = cdma.analysis({str(VGG)!r}, codecs="zvc", threads=1, progress=progress)
        assert nested and nested[0].to_json() == a.to_json()
        print("ok")
    """, timeout=180)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ok"


def test_keyboard_interrupt_from_callback_ends_the_analysis():
    def progress(*_):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        cdma.analysis(VGG, codecs="zvc", threads=1, progress=progress)
    # the lock was given back: the next call works
    assert len(cdma.analysis(VGG, codecs="zvc", threads=1).df()) > 0


def test_sigint_ends_an_analysis_whose_callback_is_slow():
    # Ctrl-C (SIGINT) while the callback runs: the analysis stops and KeyboardInterrupt arrives.
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time, cdma
        def progress(*_):
            print("in callback", flush=True)
            t = cdma.open({str(VGG)!r}); t.close()
            time.sleep(0.2)
        try:
            while True:
                cdma.analysis({str(VGG)!r}, codecs="zvc,zstd-1", threads=1, read="hdf5", progress=progress)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(7)
    """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=SOURCE_DIR)
    try:
        assert child.stdout.readline().strip() == "in callback"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 7, err
    assert "interrupted" in out


# --- JSON indent -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vgg_analysis():
    return cdma.analysis(VGG, codecs="zvc,lz4", threads=1)


@pytest.mark.parametrize("indent", [0, 1, 3, 64])
def test_to_json_indent_is_the_document(vgg_analysis, indent):
    import json
    text = vgg_analysis.to_json(indent=indent)
    assert json.loads(text) == vgg_analysis.json()
    assert text.isprintable() or set(text) - set("\n") <= set(map(chr, range(32, 0x110000)))
    for line in text.splitlines():
        lead = len(line) - len(line.lstrip(" "))
        assert indent == 0 and lead == 0 or indent and lead % indent == 0, line[:80]


def test_to_json_one_line(vgg_analysis):
    assert "\n" not in vgg_analysis.to_json(indent=None).rstrip("\n")


@pytest.mark.parametrize("indent,exc", [(-1, ValueError), (65, ValueError), (1025, ValueError), (5000, ValueError),
                                        (2**70, ValueError), (1.5, TypeError), ("2", TypeError), (True, TypeError)])
def test_to_json_refuses_bad_indent(vgg_analysis, indent, exc):
    # indent above about 1024 once copied heap bytes into the output (nlohmann's indent buffer)
    with pytest.raises(exc, match="indent"):
        vgg_analysis.to_json(indent=indent)


# --- values refused rather than taken for something else -------------------------------------------

def test_analysis_refuses_no_trace():
    with pytest.raises(ValueError, match="no trace"):
        cdma.analysis([])


@pytest.mark.parametrize("chunk,exc", [(2**70, ValueError), (-1, ValueError), (1, ValueError), (3.5, TypeError),
                                       (True, TypeError)])
def test_analysis_chunk_checked(chunk, exc):
    with pytest.raises(exc, match="chunk"):
        cdma.analysis(VGG, codecs="zvc", chunk=chunk)


@pytest.mark.parametrize("threads,exc", [(-1, ValueError), (2**70, ValueError), (1.5, TypeError)])
def test_analysis_threads_checked(threads, exc):
    with pytest.raises(exc, match="threads"):
        cdma.analysis(VGG, codecs="zvc", threads=threads)


@pytest.mark.parametrize("iterations,exc", [([1.9], TypeError), (["12"], TypeError), ([True], TypeError),
                                            ([-1], ValueError), (2**70, ValueError)])
def test_analysis_iterations_checked(iterations, exc):
    with pytest.raises(exc, match="iterations"):
        cdma.analysis(VGG, codecs="zvc", iterations=iterations)


def test_analysis_iterations_text_is_the_cli_syntax():
    # "12" is iteration 12 (as --iterations 12), never [1, 2]
    a = cdma.analysis(VGG, codecs="zvc", iterations="0")
    b = cdma.analysis(VGG, codecs="zvc", iterations=[0])
    assert a.to_json() == b.to_json()


def test_codecs_size_chunk_checked():
    import numpy as np
    x = np.zeros(64, dtype=np.float32)
    for chunk, exc in [(1, ValueError), (3, ValueError), (-4, ValueError), (2**70, ValueError), (4.0, TypeError)]:
        with pytest.raises(exc, match="chunk"):
            cdma.codecs.size("zvc", x, chunk=chunk)
    assert cdma.codecs.size("zvc", x, chunk=4) == 64 * cdma.codecs.size("zvc", x[:1])


def test_codecs_decode_count_checked():
    import numpy as np
    x = np.arange(4000, dtype=np.float32)
    blob = cdma.codecs.encode("zvc", x)
    for count, exc in [(3999.9, TypeError), ("4000", TypeError), (-1, ValueError), (2**70, ValueError)]:
        with pytest.raises(exc, match="count"):
            cdma.codecs.decode("zvc", blob, "float32", count)
    assert (cdma.codecs.decode("zvc", blob, "float32", np.int64(4000)) == x).all()


# --- a Trace used after close ----------------------------------------------------------------------

def test_trace_used_after_close_says_so():
    t = cdma.open(VGG)
    n = len(t)
    t.close()
    assert t.closed and n > 0
    for use in (lambda: len(t), lambda: t.read(0), lambda: t.tensors(), lambda: t.attrs, lambda: t.stats(),
                lambda: t.timeline(), lambda: list(t)):
        with pytest.raises(cdma.UsageError, match="closed"):
            use()
    assert "closed" in repr(t) and t.path == str(VGG)


# --- /stats rows are validated ---------------------------------------------------------------------

def test_bad_stats_row_is_refused_by_info_and_stats(tmp_path, cli):
    import h5py
    import numpy as np
    p = tmp_path / "badstats.h5"
    w = cdma._native.TraceWriter(str(p), {"producer": "test", "source": "synthetic"})
    w.append_stats({"iteration": 0, "call": 1, "layer_index": 0, "layer": "conv1", "op": "conv", "role": "x",
                    "dtype": "float32", "elements": 100, "nonzeros": 40, "zero_runs": 5})
    w.append_stats({"iteration": 0, "call": 2, "layer_index": 1, "layer": "relu1", "op": "relu", "role": "x",
                    "dtype": "float32", "elements": 100, "nonzeros": 40, "zero_runs": 5})
    w.close()
    assert len(cdma.open(p).stats()) == 2  # consistent rows read
    with h5py.File(p, "r+") as f:  # row 1 claims more nonzeros than elements
        rows = f["stats"][...]
        rows["nonzeros"][1] = 500
        f["stats"][...] = rows
    with pytest.raises(cdma.TraceError, match=r"badstats\.h5.*/stats\[1\].*inconsistent counts"):
        cdma.open(p).stats()
    r = cli("info", p, check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "badstats.h5" in r.stderr and "/stats[1]" in r.stderr


# --- a full disk while writing (the native writer cdma.torch uses) ----------------------------------

def test_native_writer_on_a_full_disk_leaves_an_incomplete_readable_trace(tmp_path):
    # The disk fills up by a file size limit (RLIMIT_FSIZE; write() fails with EFBIG), in a child.
    p = tmp_path / "full.h5"
    r = run_child(f"""
        import resource, signal, numpy as np, cdma
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (600 * 1024, 600 * 1024))
        w = cdma._native.TraceWriter({str(p)!r}, {{"producer": "test", "source": "synthetic"}})
        x = np.ones((1, 16384), dtype=np.float32)
        ok = 0
        try:
            for i in range(200):
                w.append_tensor({{"iteration": 0, "layer": f"l{{i}}", "layer_index": i, "op": "relu", "role": "x",
                                 "layout": "NC", "dtype": "float32", "dims": [1, 16384]}}, x)
                ok += 1
        except cdma.TraceError as e:
            assert {str(p)!r} in str(e), e
        try:
            w.close()
            raise SystemExit("close() did not report the incomplete trace")
        except cdma.TraceError as e:
            assert "complete = 0" in str(e), e
        print(ok)
    """)
    assert r.returncode == 0, r.stderr
    ok = int(r.stdout)
    assert 0 < ok < 200
    t = cdma.open(p)
    assert t.attrs["complete"] is False or t.attrs["complete"] == 0
    assert len(t) == ok
    assert any("complete = 0" in w for w in t.warnings)
    assert float(t.read(ok - 1).min()) == 1.0


@pytest.mark.parametrize("call", ["open", "analysis", "replay", "capture"])
def test_a_path_with_a_nul_is_refused_not_opened_as_its_prefix(tmp_path, call):
    bad = os.path.join(DATA, "vgg-fmnist.h5") + "\0junk"
    with pytest.raises(ValueError, match="NUL"):
        if call == "open":
            cdma.open(bad)
        elif call == "analysis":
            cdma.analysis([bad])
        elif call == "replay":
            cdma.replay(networks=["vgg16"], ratios=bad)
        else:
            torch = pytest.importorskip("torch")
            capture = importlib.import_module("cdma.torch").Capture
            capture(str(tmp_path / "t.h5") + "\0x", torch.nn.Linear(2, 2))
