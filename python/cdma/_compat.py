"""Checks, before `import cdma` loads its native module, that the module fits the running Python and
numpy; an unfit module is refused with a message that says what to do (never wrong numbers later).

The build records what the module was built against in cdma/_build_info.py (python/CMakeLists.txt):
the Python version, and the pybind11 version, which decides numpy 2 support: a module built with
pybind11 older than 2.12 returns arrays of stride 0 (every element the last one) under numpy 2.
numpy is not compiled in (pybind11 looks it up at run time), so with pybind11 >= 2.12 any numpy works.
"""

import importlib.machinery
import pathlib
import sys

PYBIND11_NUMPY2 = (2, 12)  # the first pybind11 that understands numpy 2 arrays

REINSTALL = (
    "reinstall cdma for this interpreter (`pip install <cdma checkout>`, README \"Install with pip\"), or rebuild "
    "the checkout with scripts/setup.sh then cmake (README \"Build by hand\")"
)


def _version_tuple(text):
    out = []
    for part in str(text).split("."):
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        out.append(int(digits))
        if len(digits) != len(part):
            break
    return tuple(out)


def build_problem(built_python, built_pybind11, python, numpy_version):
    """Why a module built for Python `built_python` ("3.11") with pybind11 `built_pybind11` ("2.10.3")
    cannot run under Python `python` ((3, 12)) with numpy `numpy_version` ("2.4.6", or None when numpy
    is not installed); None when it can."""
    running = f"{python[0]}.{python[1]}"
    if built_python != running:
        return f"cdma's native module was built for Python {built_python}, but this is Python {running}: {REINSTALL}"
    pb = _version_tuple(built_pybind11)
    if numpy_version is not None and _version_tuple(numpy_version)[:1] >= (2,) and pb < PYBIND11_NUMPY2:
        return (
            f"cdma's native module was built with pybind11 {built_pybind11}, which does not understand numpy 2 "
            f"arrays (they would come back with wrong values), and this Python has numpy {numpy_version}: "
            f"rebuild it against pybind11 >= {PYBIND11_NUMPY2[0]}.{PYBIND11_NUMPY2[1]} ({REINSTALL}), or use numpy < 2"
        )
    return None


def missing_module_message(package_dir, python=None):
    """The message for a package whose native module cannot be imported: which modules are there
    and whom they are for, or that there is none (Python otherwise reports a "circular import")."""
    python = python or sys.version_info
    running = f"{python[0]}.{python[1]}"
    found = sorted(p.name for p in pathlib.Path(package_dir).glob("_native*") if p.suffix in (".so", ".pyd"))
    wanted = ", ".join(f"_native{s}" for s in importlib.machinery.EXTENSION_SUFFIXES)
    if not found:
        return (
            f"cdma's native module is missing from {package_dir} (expected one of: {wanted}): this is the source "
            f"tree's python/cdma or an incomplete install. Use an installed cdma (`pip install <cdma checkout>`) or "
            f"a build's package (PYTHONPATH=<build>/python, after building the target cdma_python_native)"
        )
    return (
        f"cdma's native module in {package_dir} ({', '.join(found)}) is not for this Python {running} "
        f"(it needs one of: {wanted}): {REINSTALL}"
    )


def check_build(build_info, package_dir):
    """Raises ImportError when the native module the build described in `build_info` (the module
    cdma._build_info) cannot run here."""
    try:
        import numpy

        numpy_version = numpy.__version__
    except ImportError:
        numpy_version = None
    problem = build_problem(build_info.PYTHON, build_info.PYBIND11, sys.version_info, numpy_version)
    if problem:
        raise ImportError(f"{problem} (module in {package_dir})")
