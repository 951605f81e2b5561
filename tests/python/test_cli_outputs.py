"""One output writer for every verb (issue 29, High 1 and Medium 8/12; formats/output_file.hpp): a
device or FIFO given as an output is written in place, never replaced (tests run as root: /dev/null
and /dev/full are checked to still be character devices afterwards); a symlink's target is written
and the link kept; a regular file is replaced atomically (a failed write leaves it untouched and no
temporary behind); every write error is exit 1 naming the file and the system's reason. HDF5
outputs (synth, capture --convert) refuse a non-regular path. `capture -f` replaces an old trace
only once a new one exists."""

import json
import os
import pathlib
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

from conftest import BIN_DIR, SOURCE_DIR, cdma_cli

SPOOL = SOURCE_DIR / "tests" / "fuzz" / "corpus" / "spool_reader" / "legacy_full.spool"
INTERPOSER = BIN_DIR.parent / "lib" / "libcdma_capture.so"
DEVICES = {"/dev/null": (1, 3), "/dev/full": (1, 7)}


def assert_devices_intact():
    for dev, (major, minor) in DEVICES.items():
        st = os.lstat(dev)
        assert stat.S_ISCHR(st.st_mode), f"{dev} is no longer a character device"
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (major, minor), dev


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    p = tmp_path_factory.mktemp("in") / "small.h5"
    cdma_cli("synth", "-o", p, "--shape", "2,8,8,8", "--layers", "2", "--iterations", "1")
    return p


# Each verb's text outputs: a command line with OUT where the output path goes.
def text_outputs(small):
    return {
        "analyze --json": ["analyze", small, "-q", "-c", "zvc", "--json", "OUT"],
        "analyze --csv": ["analyze", small, "-q", "-c", "zvc", "--csv", "OUT"],
        "replay --json": ["replay", "--net", "alexnet", "--ratio", "2", "-q", "--json", "OUT"],
        "replay --svg": ["replay", "--net", "alexnet", "--ratio", "2", "-q", "--svg", "OUT"],
        "report -o": ["report", small, "--no-replay", "--codecs", "zvc", "-o", "OUT"],
        "report --analysis-json": ["report", small, "--no-replay", "--codecs", "zvc", "-o", "{tmp}/r.html",
                                   "--analysis-json", "OUT"],
        "bench --json": ["bench", small, "-c", "zvc", "--rounds", "1", "--min-ms", "0", "-q", "--json", "OUT"],
        "capture --summary-json": ["capture", "--convert", SPOOL, "-f", "-o", "{tmp}/c.h5", "--summary-json", "OUT"],
    }


def run(args, out, tmp, **kw):
    argv = [str(BIN_DIR / "cdma")] + [str(a).replace("{tmp}", str(tmp)) if a != "OUT" else str(out) for a in args]
    return subprocess.run(argv, capture_output=True, text=True, **kw)


VERBS = list(text_outputs("x"))


@pytest.mark.parametrize("verb", VERBS)
def test_devices_are_written_in_place(verb, small, tmp_path):
    args = text_outputs(small)[verb]
    p = run(args, "/dev/full", tmp_path)
    assert p.returncode == 1, (verb, p.stderr)
    assert "cannot write /dev/full (No space left on device)" in p.stderr, (verb, p.stderr)
    assert_devices_intact()
    p = run(args, "/dev/null", tmp_path)
    assert p.returncode == 0, (verb, p.stderr)
    assert_devices_intact()
    assert not list(pathlib.Path("/dev").glob(".null.tmp*")) and not list(pathlib.Path("/dev").glob(".full.tmp*"))


@pytest.mark.parametrize("verb", VERBS)
def test_a_fifo_is_written_in_place(verb, small, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    p = run(text_outputs(small)[verb], fifo, tmp_path, timeout=300)
    reader.join(timeout=60)
    assert p.returncode == 0, (verb, p.stderr)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced"
    assert got and len(got[0]) > 20, verb


def test_dev_stdout_prints(small, tmp_path):
    p = run(["analyze", small, "-q", "-c", "zvc", "--json", "OUT"], "/dev/stdout", tmp_path)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["schema"] == "cdma-analysis"
    assert os.path.islink("/dev/stdout") or stat.S_ISCHR(os.lstat("/dev/stdout").st_mode)


@pytest.mark.parametrize("verb", VERBS)
def test_symlinks_are_followed(verb, small, tmp_path):
    target = tmp_path / "target.out"
    target.write_text("old")
    link = tmp_path / "link.out"
    link.symlink_to("target.out")  # relative, resolved from the link's folder
    p = run(text_outputs(small)[verb], link, tmp_path)
    assert p.returncode == 0, (verb, p.stderr)
    assert link.is_symlink() and os.readlink(link) == "target.out"
    assert target.read_text() != "old" and len(target.read_text()) > 20
    # A dangling link creates its target, as the shell's `>` does.
    dangling = tmp_path / "dangling.out"
    dangling.symlink_to(tmp_path / "new.out")
    p = run(text_outputs(small)[verb], dangling, tmp_path)
    assert p.returncode == 0, (verb, p.stderr)
    assert dangling.is_symlink() and (tmp_path / "new.out").stat().st_size > 20


@pytest.mark.parametrize("verb", VERBS)
def test_unwritable_places_are_errors(verb, small, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    p = run(text_outputs(small)[verb], afile / "out", tmp_path)  # a folder that is a file
    assert p.returncode == 1, (verb, p.stderr)
    assert f"cannot write {afile / 'out'}" in p.stderr and "Not a directory" in p.stderr, (verb, p.stderr)
    assert "Success" not in p.stderr
    p = run(text_outputs(small)[verb], tmp_path / "no" / "such" / "out", tmp_path)
    assert p.returncode == 1 and "No such file or directory" in p.stderr, (verb, p.stderr)
    if os.geteuid() != 0:  # root writes into a read-only folder anyway
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        p = run(text_outputs(small)[verb], ro / "out", tmp_path)
        assert p.returncode == 1 and "Permission denied" in p.stderr, (verb, p.stderr)


def limited(size_bytes):
    """A child whose files cannot grow beyond size_bytes (write() fails with EFBIG)."""
    import resource

    def pre():
        resource.setrlimit(resource.RLIMIT_FSIZE, (size_bytes, size_bytes))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return pre


@pytest.mark.parametrize("verb", ["analyze --json", "analyze --csv", "replay --json", "report -o", "bench --json"])
def test_a_failed_write_leaves_the_old_file(verb, small, tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old")
    out.chmod(0o640)
    p = run(text_outputs(small)[verb], out, tmp_path, preexec_fn=limited(200))
    assert p.returncode == 1, (verb, p.stderr)
    assert f"cannot write {out} (File too large)" in p.stderr, (verb, p.stderr)
    assert out.read_text() == "old"
    assert sorted(x.name for x in tmp_path.iterdir() if ".tmp." in x.name) == []
    # Written when it can be: replaced, keeping its permission bits.
    p = run(text_outputs(small)[verb], out, tmp_path)
    assert p.returncode == 0, (verb, p.stderr)
    assert out.read_text() != "old" and stat.S_IMODE(out.stat().st_mode) == 0o640


# HDF5 outputs: written by the HDF5 library under a temporary name, so a non-regular path is refused.
def trace_outputs():
    return {
        "synth": ["synth", "-f", "--shape", "2,8", "--layers", "1", "--iterations", "1", "-o", "OUT"],
        "capture --convert": ["capture", "--convert", SPOOL, "-f", "-o", "OUT"],
    }


@pytest.mark.parametrize("verb", list(trace_outputs()))
def test_trace_outputs_refuse_special_files(verb, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for special in ("/dev/null", "/dev/full", fifo):
        p = run(trace_outputs()[verb], special, tmp_path, timeout=60)
        assert p.returncode == 2, (verb, special, p.stderr)
        assert f"{special} is not a regular file" in p.stderr, (verb, p.stderr)
    assert_devices_intact()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("verb", list(trace_outputs()))
def test_trace_outputs_follow_symlinks(verb, tmp_path):
    target = tmp_path / "target.h5"
    target.write_text("old")
    link = tmp_path / "link.h5"
    link.symlink_to(target)
    p = run(trace_outputs()[verb], link, tmp_path)
    assert p.returncode == 0, (verb, p.stderr)
    assert link.is_symlink()
    assert cdma_cli("info", target).returncode == 0
    dangling = tmp_path / "dangling.h5"
    dangling.symlink_to("made.h5")
    assert run(trace_outputs()[verb], dangling, tmp_path).returncode == 0
    assert dangling.is_symlink() and cdma_cli("info", tmp_path / "made.h5").returncode == 0
    # A failed write leaves the old file and no temporary, and exits 1 (no signal: the HDF5 library
    # crashed at exit after a failed write in the trace writer's constructor; see also
    # test_trace_write_failures.py).
    target.write_text("old")
    p = run(trace_outputs()[verb], link, tmp_path, preexec_fn=limited(3000))
    assert p.returncode == 1 and "nothing written" not in p.stderr, (verb, p.returncode, p.stderr)
    assert target.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir() if ".tmp." in x.name] == []
    (tmp_path / "afile.h5").write_text("x")
    p = run(trace_outputs()[verb], tmp_path / "afile.h5" / "x.h5", tmp_path)
    assert p.returncode == 1 and "x.h5" in p.stderr, (verb, p.stderr)


def test_summary_json_is_refused_before_the_command_runs(tmp_path):
    marker = tmp_path / "ran"
    p = cdma_cli("capture", "--summary-json", tmp_path, "--", "touch", marker, check=False)
    assert p.returncode == 2 and "--summary-json" in p.stderr and "is a directory" in p.stderr
    assert not marker.exists()
    p = cdma_cli("capture", "--convert", SPOOL, "-o", tmp_path / "x.h5", "--summary-json", SPOOL, check=False)
    assert p.returncode == 2 and "also an input" in p.stderr
    old = tmp_path / "old.h5"
    old.write_text("old")
    p = cdma_cli("capture", "--convert", SPOOL, "-f", "-o", old, "--summary-json", old, check=False)
    assert p.returncode == 2 and "name the same file" in p.stderr and old.read_text() == "old"


# capture -f: an old trace is replaced only once a new one exists.
def torch_python():
    """The interpreter that has torch (the tests' own, or Debian's)."""
    for py in (sys.executable, "/usr/bin/python3"):
        if subprocess.run([py, "-c", "import torch"], capture_output=True).returncode == 0:
            return py
    pytest.skip("no Python with torch")


TINY = """
import sys, time, torch
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(72, 2))
opt = torch.optim.SGD(m.parameters(), lr=0.1) if sys.argv[1] != "none" else None
for _ in range(int(sys.argv[2])):
    torch.nn.functional.cross_entropy(m(torch.randn(2, 1, 8, 8)), torch.tensor([0, 1])).backward()
    if opt:
        opt.step(); opt.zero_grad()
time.sleep(float(sys.argv[3]))
"""


def test_torch_force_keeps_the_old_trace_until_a_new_one_exists(tmp_path):
    py = torch_python()
    old = tmp_path / "old.h5"
    cdma_cli("synth", "-o", old, "--shape", "2,8", "--layers", "1", "--iterations", "1")
    before = old.read_bytes()
    p = cdma_cli("capture", "--torch", "-f", "-o", old, "--", py, tmp_path / "missing.py", check=False)
    assert p.returncode != 0
    assert old.read_bytes() == before, "the old trace was removed before a new one existed"
    assert "unchanged" in p.stderr
    script = tmp_path / "tiny.py"
    script.write_text(TINY)
    p = cdma_cli("capture", "--torch", "-f", "-o", old, "--", py, script, "sgd", "2", "0", check=False)
    assert p.returncode == 0, p.stderr
    assert old.read_bytes() != before and "replacing" in p.stderr
    assert [x.name for x in tmp_path.iterdir() if x.name.startswith(".")] == []  # no staging folder left


def test_torch_launches_sharing_an_output_keep_their_own_traces(tmp_path):
    """Two launches with one -o at once: each reports its own trace only (the old launcher took
    every <stem>.<pid>.h5 newer than its start, the other launch's included)."""
    py = torch_python()
    script = tmp_path / "tiny.py"
    script.write_text(TINY)
    out = tmp_path / "shared.h5"
    procs = []
    for steps, wait in ((3, 0), (5, 3)):
        summary = tmp_path / f"s{steps}.json"
        procs.append((steps, summary, subprocess.Popen(
            [str(BIN_DIR / "cdma"), "capture", "--torch", "-o", str(out), "--summary-json", str(summary), "--", py,
             str(script), "sgd", str(steps), str(wait)], stderr=subprocess.PIPE, text=True)))
    paths = set()
    for steps, summary, proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        traces = json.loads(summary.read_text())["traces"]
        assert len(traces) == 1, (steps, traces)
        assert traces[0]["iterations"] == steps and traces[0]["tensor_iterations"] == steps, traces
        paths.add(traces[0]["trace"])
    assert len(paths) == 2 and str(out) in paths


def test_torch_iterations_agree_with_info_without_an_optimizer(tmp_path):
    py = torch_python()
    script = tmp_path / "tiny.py"
    script.write_text(TINY)
    out = tmp_path / "noopt.h5"
    summary = tmp_path / "s.json"
    p = cdma_cli("capture", "--torch", "-o", out, "--summary-json", summary, "--", py, script, "none", "2", "0")
    info = json.loads(cdma_cli("info", out, "--json").stdout)[0]
    t = json.loads(summary.read_text())["traces"][0]
    assert t["tensor_iterations"] == len(info["iterations"]) == 1
    assert t["iterations"] == 0  # optimizer steps: none
    assert "1 iterations with tensors (0 optimizer steps)" in p.stderr
    table = cdma_cli("info", out).stdout
    assert "iterations   1 with tensors (0..0)" in table and "iterations attribute 0 (the producer's" in table, table


def launch_and_interrupt(argv, ignore_sigint):
    """Starts argv (its command prints 'ready'), then sends SIGINT to the launcher alone. With
    ignore_sigint the launcher starts with SIGINT ignored, as a shell starts a background job."""
    pre = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=pre)
    assert p.stdout.readline().strip() == "ready"
    start = time.monotonic()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    return p.returncode, time.monotonic() - start, err


@pytest.mark.parametrize("ignore_sigint", [False, True])
def test_sigint_reaches_the_torch_command(ignore_sigint, tmp_path):
    cmd = [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"]
    rc, secs, err = launch_and_interrupt(
        [str(BIN_DIR / "cdma"), "capture", "--torch", "-o", str(tmp_path / "x.h5"), "--", *cmd], ignore_sigint)
    assert rc == 130 and secs < 30, (rc, secs, err)


@pytest.mark.skipif(not INTERPOSER.exists(), reason="the interposer is not built")
@pytest.mark.parametrize("ignore_sigint", [False, True])
def test_sigint_reaches_the_interposer_command(ignore_sigint, tmp_path):
    cmd = [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"]
    rc, secs, err = launch_and_interrupt(
        [str(BIN_DIR / "cdma"), "capture", "-o", str(tmp_path / "x.h5"), "--", *cmd], ignore_sigint)
    assert rc == 130 and secs < 30, (rc, secs, err)


@pytest.mark.skipif(not INTERPOSER.exists(), reason="the interposer is not built")
def test_interposer_force_keeps_the_old_trace(tmp_path):
    old = tmp_path / "old.h5"
    cdma_cli("synth", "-o", old, "--shape", "2,8", "--layers", "1", "--iterations", "1")
    before = old.read_bytes()
    for cmd in (["/nonexistent/program"], ["true"]):
        p = cdma_cli("capture", "-f", "-o", old, "--", *cmd, check=False)
        assert p.returncode == 1, p.stderr
        assert old.read_bytes() == before
    # --convert replaces it once the new trace is written.
    assert cdma_cli("capture", "--convert", SPOOL, "-f", "-o", old).returncode == 0
    assert old.read_bytes() != before


def test_bad_spool_counters_are_refused(tmp_path):
    """A counters record whose iteration count is negative (what a damaged spool holds) is refused,
    no trace written, not printed as a huge negative number."""
    import struct
    data = bytearray(SPOOL.read_bytes())
    off, patched = 64, 0
    while off + 16 <= len(data):
        magic, rtype, _, n = struct.unpack_from("<IHHQ", data, off)
        assert magic == 0x52414D43
        if rtype in (7, 8):  # counters, end: int64 iterations is field 11 (offset 80)
            struct.pack_into("<q", data, off + 16 + 80, -(2**63) + 2)
            patched += 1
        off += 16 + n
    assert patched
    bad = tmp_path / "cdma-1.spool"
    bad.write_bytes(bytes(data))
    p = cdma_cli("capture", "--convert", bad, "-o", tmp_path / "t.h5", check=False)
    assert p.returncode == 1 and "iterations = -9223372036854775806" in p.stderr and "no trace written" in p.stderr
    assert not (tmp_path / "t.h5").exists()


def test_analyze_under_mpi_uses_the_same_writer(small, tmp_path):
    """Rank 0 of `cdma analyze` under mpirun writes through the same writer (analyze_mpi.cpp)."""
    import shutil
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if not mpirun:
        pytest.skip("no mpirun")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")

    def mpi(out):
        return subprocess.run(["timeout", "120", mpirun, "--oversubscribe", "-np", "2", str(BIN_DIR / "cdma"),
                               "analyze", str(small), "-q", "-c", "zvc", "--json", str(out)],
                              capture_output=True, text=True, env=env)
    p = mpi("/dev/full")
    if "built without MPI" in p.stderr:
        pytest.skip("cdma built without MPI")
    assert p.returncode == 1 and "cannot write /dev/full (No space left on device)" in p.stderr, p.stderr
    assert mpi("/dev/null").returncode == 0
    assert_devices_intact()
    target = tmp_path / "t.json"
    target.write_text("old")
    link = tmp_path / "l.json"
    link.symlink_to(target)
    assert mpi(link).returncode == 0 and link.is_symlink() and json.loads(target.read_text())["schema"]


def test_torch_summary_json_write_errors_are_exit_1(tmp_path):
    py = torch_python()
    script = tmp_path / "tiny.py"
    script.write_text(TINY)
    p = cdma_cli("capture", "--torch", "-o", tmp_path / "t.h5", "--summary-json", "/dev/full", "--", py, script, "sgd",
                 "1", "0", check=False)
    assert p.returncode == 1 and "cannot write /dev/full (No space left on device)" in p.stderr, p.stderr
    assert (tmp_path / "t.h5").exists()  # the trace itself was written
    assert_devices_intact()
