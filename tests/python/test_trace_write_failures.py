"""Trace writes that fail on the file (issue 29): the process ends with the documented exit code (1),
never a signal, and the old output is untouched.

HDF5 1.10 keeps the id of a file whose close failed (its last metadata could not be written) and
its termination at exit closed it again: SIGSEGV in H5F__close_cb after the error was printed.
"""

import os
import pathlib
import resource
import signal
import subprocess
import sys

import pytest

from conftest import BIN_DIR, SOURCE_DIR

SPOOL = SOURCE_DIR / "tests" / "fuzz" / "corpus" / "spool_reader" / "legacy_full.spool"


def limited(size_bytes):
    def pre():
        resource.setrlimit(resource.RLIMIT_FSIZE, (size_bytes, size_bytes))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return pre


def trace_commands():
    return {
        "synth": ["synth", "-f", "--shape", "2,8", "--layers", "1", "--iterations", "1", "-o"],
        "synth, many tensors": ["synth", "-f", "--shape", "8,64,8,8", "--layers", "4", "--iterations", "50", "-o"],
        "capture --convert": ["capture", "--convert", SPOOL, "-f", "-o"],
    }


def run(args, out, preexec_fn=None):
    return subprocess.run([str(BIN_DIR / "cdma"), *map(str, args), str(out)], capture_output=True, text=True,
                          preexec_fn=preexec_fn, timeout=120)


@pytest.mark.parametrize("verb", list(trace_commands()))
@pytest.mark.parametrize("limit", [100, 3000, 5000, 600 * 1024])
def test_a_failed_trace_write_exits_1_without_a_signal(verb, limit, tmp_path):
    out = tmp_path / "out.h5"
    out.write_text("old")
    p = run(trace_commands()[verb], out, preexec_fn=limited(limit))
    if limit == 600 * 1024 and verb != "synth, many tensors":
        assert p.returncode == 0, p.stderr  # fits: written
        return
    assert p.returncode == 1, (verb, limit, p.returncode, p.stderr)  # not -11 (SIGSEGV at exit)
    assert "file size limit" in p.stderr or "File too large" in p.stderr, p.stderr
    assert out.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir() if ".tmp." in x.name] == []


@pytest.mark.parametrize("verb", list(trace_commands()))
def test_a_full_tmpfs_exits_1_without_a_signal(verb, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        out = mnt / "out.h5"
        out.write_text("old")
        # Fill the tmpfs but for a few KiB, so that even the small outputs do not fit.
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        os.truncate(mnt / "filler", max(0, os.path.getsize(mnt / "filler") - 8192))
        p = run(trace_commands()[verb], out)
        assert p.returncode == 1, (verb, p.returncode, p.stderr)
        assert "No space left on device" in p.stderr, p.stderr
        assert out.read_text() == "old"
        assert [x.name for x in mnt.iterdir() if ".tmp." in x.name] == []
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_native_writer_on_a_failed_disk_exits_normally(tmp_path):
    """The Python binding: a writer whose constructor or append failed, then a normal interpreter exit."""
    code = f"""
import sys, numpy as np, cdma._native as n
attrs = {{"producer": "test", "source": "synthetic"}}
try:
    n.TraceWriter({str(tmp_path / 'a.h5')!r}, attrs, overwrite=True)
except Exception as e:
    print("constructor:", type(e).__name__)
w = n.TraceWriter({str(tmp_path / 'b.h5')!r}, attrs, overwrite=True) if len(sys.argv) > 1 else None
sys.exit(3)
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=limited(3000),
                       timeout=120)
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert "constructor:" in p.stdout
