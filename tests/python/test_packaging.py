"""The package as installed or built: the import-time checks of the native module (cdma/_compat.py),
the `cdma` command of an installed package (cdma/_command.py) and the hardware model's data found
from wherever the package is (run by ctest against a build, and by scripts/test-venv.sh against a
`pip install`)."""

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cdma
from cdma import _command, _compat
from conftest import DATA, cdma_cli

PACKAGE = pathlib.Path(cdma.__file__).parent
INSTALLED = (PACKAGE / "bin" / "cdma").is_file()  # a pip-installed package carries its cdma executable


def test_build_problem_python_and_pybind11():
    here = sys.version_info
    assert _compat.build_problem(f"{here[0]}.{here[1]}", "3.1.0", here, "2.4.6") is None
    assert _compat.build_problem(f"{here[0]}.{here[1]}", "2.12.0", here, "2.0.0") is None
    # pybind11 < 2.12 is fine with numpy 1 and with no numpy, refused with numpy 2 (arrays of stride 0).
    assert _compat.build_problem("3.11", "2.10.3", (3, 11), "1.24.2") is None
    assert _compat.build_problem("3.11", "2.10.3", (3, 11), None) is None
    msg = _compat.build_problem("3.11", "2.10.3", (3, 11), "2.4.6")
    assert "pybind11 2.10.3" in msg and "numpy 2.4.6" in msg and ">= 2.12" in msg
    msg = _compat.build_problem("3.11", "3.1.0", (3, 12), "2.4.6")
    assert "built for Python 3.11" in msg and "this is Python 3.12" in msg and "pip install" in msg


def test_missing_module_message(tmp_path):
    msg = _compat.missing_module_message(tmp_path, (3, 12))
    assert "native module is missing" in msg and str(tmp_path) in msg and "circular" not in msg
    (tmp_path / "_native.cpython-39-x86_64-linux-gnu.so").write_bytes(b"")
    msg = _compat.missing_module_message(tmp_path, (3, 12))
    assert "_native.cpython-39-x86_64-linux-gnu.so" in msg and "not for this Python 3.12" in msg


def _package_copy(tmp_path):
    """A copy of the running package (links resolved) in tmp_path/cdma."""
    dst = tmp_path / "cdma"
    shutil.copytree(PACKAGE, dst, symlinks=False, ignore=shutil.ignore_patterns("__pycache__", "bin", "data"))
    return dst


def _import_in(path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(path)
    return subprocess.run([sys.executable, "-c", "import cdma"], capture_output=True, text=True, env=env,
                          cwd=path)


def test_import_without_native_module_says_so(tmp_path):
    pkg = _package_copy(tmp_path)
    for so in pkg.glob("_native*"):
        so.unlink()
    p = _import_in(tmp_path)
    assert p.returncode != 0
    assert "native module is missing" in p.stderr and "circular import" not in p.stderr, p.stderr
    # A module for another Python (as the GPU machine's Python 3.12 met a 3.11 build) is named.
    (pkg / "_native.cpython-39-x86_64-linux-gnu.so").write_bytes(b"")
    p = _import_in(tmp_path)
    assert "_native.cpython-39-x86_64-linux-gnu.so" in p.stderr and "not for this Python" in p.stderr, p.stderr


def test_import_refuses_a_module_built_for_other_python_or_old_pybind11(tmp_path):
    pkg = _package_copy(tmp_path)
    info = pkg / "_build_info.py"
    assert info.is_file(), "the build writes cdma/_build_info.py (python/CMakeLists.txt)"
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert _import_in(tmp_path).returncode == 0, _import_in(tmp_path).stderr
    info.write_text(f'PYTHON = "3.9"\nPYBIND11 = "3.1.0"\nNUMPY_AT_BUILD = "none"\n')
    p = _import_in(tmp_path)
    assert p.returncode != 0 and f"built for Python 3.9, but this is Python {here}" in p.stderr, p.stderr
    info.write_text(f'PYTHON = "{here}"\nPYBIND11 = "2.10.3"\nNUMPY_AT_BUILD = "1.24.2"\n')
    p = _import_in(tmp_path)
    if int(np.__version__.split(".")[0]) >= 2:
        assert p.returncode != 0 and "pybind11 2.10.3" in p.stderr and "numpy 2" in p.stderr, p.stderr
    else:
        assert p.returncode == 0, p.stderr


def test_the_build_info_is_this_module():
    from cdma import _build_info

    assert _build_info.PYTHON == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert _compat._version_tuple(_build_info.PYBIND11) >= _compat.PYBIND11_NUMPY2


def test_command_arguments():
    parent = pathlib.Path("/site")
    assert _command.arguments(["info", "x.h5"], parent) == ["info", "x.h5"]
    assert _command.arguments(["capture", "--torch", "-o", "r.h5", "--", "python", "t.py"], parent) == [
        "capture", "--python-dir", "/site", "--torch", "-o", "r.h5", "--", "python", "t.py"]
    # The user's --python-dir wins; options of the command after `--` are the command's.
    for given in (["--python-dir", "/mine"], ["--python-dir=/mine"]):
        args = ["capture", "--torch", *given, "--", "python", "t.py"]
        assert _command.arguments(args, parent) == args
    args = ["capture", "--", "python", "t.py", "--torch"]
    assert _command.arguments(args, parent) == args


@pytest.mark.skipif(not INSTALLED, reason="a build's package has no cdma/bin/cdma (only a pip install does)")
def test_installed_command_runs_every_verb():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.run([sys.executable, "-m", "cdma", "info", "--json", str(DATA / "vgg-fmnist.h5")],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout == cdma_cli("info", "--json", DATA / "vgg-fmnist.h5").stdout
    p = subprocess.run([sys.executable, "-m", "cdma", "info", "/nonexistent.h5"], capture_output=True, text=True,
                       env=env)
    assert p.returncode == 1 and "/nonexistent.h5" in p.stderr


def test_missing_executable_is_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_command, "executable", lambda: tmp_path / "bin" / "cdma")
    assert _command.main(["info"]) == 1
    assert "no cdma executable" in capsys.readouterr().err


def _run(code, cwd, **env_changes):
    env = dict(os.environ)
    for k in ("CDMA_PRESETS", "CDMA_ZOO"):
        env.pop(k, None)
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=cwd,
                          env=env)


def test_replay_finds_its_data_from_anywhere(tmp_path):
    code = """
        import cdma
        r = cdma.replay(networks=["vgg16"], ratio=2.6)
        print(sorted(set(r.totals["network"])))
    """
    p = _run(code, tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "['vgg16']"
    if INSTALLED:
        assert (PACKAGE / "data" / "presets" / "gpus.json").is_file() and (PACKAGE / "data" / "zoo" / "zoo.json").is_file()
    # CDMA_PRESETS / CDMA_ZOO still take precedence.
    p = _run(code, tmp_path, CDMA_PRESETS=str(tmp_path / "no-presets"))
    assert p.returncode != 0 and "no-presets" in p.stderr, p.stderr
    p = _run(code, tmp_path, CDMA_ZOO=str(tmp_path / "no-zoo"))
    assert p.returncode != 0 and "no-zoo" in p.stderr, p.stderr


def test_capture_torch_through_the_cdma_command(tmp_path):
    # The `cdma` of this test run (a build's build/bin/cdma, or a pip install's console script, which
    # names the installed package to the launcher) captures an unmodified script.
    pytest.importorskip("torch")
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import torch
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            loss = model(torch.randn(4, 8)).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    """))
    out = tmp_path / "run.h5"
    cdma_cli("capture", "--torch", "-o", out, "--", sys.executable, script)
    df = cdma.open(out).tensors()
    assert sorted(set(df["iteration"])) == [0, 1, 2]
    # Each iteration: the inputs of both Linear layers and the loss's square (outside any module).
    assert df["layer"].tolist() == ["0", "2", "(outside)"] * 3, df[["layer", "op"]]
