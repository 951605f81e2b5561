"""Shared fixtures of the Python package's tests (run by ctest as python.<file>)."""

import json
import os
import pathlib
import subprocess

import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("CDMA_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BIN_DIR = pathlib.Path(os.environ.get("CDMA_BIN_DIR", SOURCE_DIR / "build" / "bin"))
DATA = SOURCE_DIR / "data"
SAMPLE_TRACES = [DATA / "vgg-fmnist.h5", DATA / "squeezenet-fmnist.h5"]


def cdma_cli(*args, check=True):
    """Runs the cdma command of this build; returns the CompletedProcess (text)."""
    p = subprocess.run([str(BIN_DIR / "cdma"), *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"cdma {' '.join(map(str, args))} exited {p.returncode}: {p.stderr}")
    return p


def cdma_json(*args):
    """Runs `cdma ARGS --json -` and parses its stdout."""
    return json.loads(cdma_cli(*args, "--json", "-").stdout)


@pytest.fixture
def cli():
    return cdma_cli
