"""docs/python-example.py runs as documented and its figures and numbers are what it says."""

import re
import subprocess
import sys

from conftest import SOURCE_DIR


def test_example_runs_and_checks_the_zvc_curve(tmp_path):
    p = subprocess.run([sys.executable, str(SOURCE_DIR / "docs/python-example.py"), str(tmp_path)],
                       capture_output=True, text=True, cwd=SOURCE_DIR)
    assert p.returncode == 0, p.stderr
    for name in ("density-over-training.png", "ratio-vs-density.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    m = re.search(r"(\d+) tensors; largest \|ratio - curve\| / curve: ([0-9.]+)", p.stdout)
    assert m, p.stdout
    assert int(m.group(1)) == 75 + 95  # the offload sets of the two sample traces (data/README.md)
    # ZVC's size is 4*ceil(n/32) + 4*nnz: off the curve only by the mask's rounding to 32-element words.
    assert float(m.group(2)) < 0.05
    assert "cDMA-zvc-mc" in p.stdout and "figures in" in p.stdout
