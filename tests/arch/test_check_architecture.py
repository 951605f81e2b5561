#!/usr/bin/python3
"""Negative tests of scripts/check-architecture.py: on tiny trees with one broken rule each, the
check must exit 1 and name the file, the line and the rule; on a clean tree it must exit 0.

    test_check_architecture.py --script scripts/check-architecture.py --workdir DIR
"""

import argparse
import os
import shutil
import subprocess
import sys

CLEAN = {
    "CMakeLists.txt": "add_library(cdma_warnings INTERFACE)\n",
    "formats/CMakeLists.txt": (
        "add_library(cdma_formats src/trace.cpp)\n"
        "add_library(cdma::formats ALIAS cdma_formats)\n"
        "target_include_directories(cdma_formats PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include\n"
        "  PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)\n"
        "target_link_libraries(cdma_formats\n"
        "  PRIVATE ZLIB::ZLIB cdma_warnings\n"
        "  PUBLIC Threads::Threads)\n"),
    "formats/include/cdma/formats/trace.hpp": "#pragma once\n#include <string>\n",
    "formats/src/internal.hpp": "#pragma once\n",
    "formats/src/trace.cpp": '#include <cdma/formats/trace.hpp>\n#include "internal.hpp"\n#include <zlib.h>\n',
    "analyze/CMakeLists.txt": (
        "add_library(cdma_analyze src/a.cpp)\n"
        "add_library(cdma::analyze ALIAS cdma_analyze)\n"
        "target_link_libraries(cdma_analyze PUBLIC cdma::formats PRIVATE fmt::fmt)\n"),
    "analyze/include/cdma/analyze/a.hpp": "#pragma once\n#include <cdma/formats/trace.hpp>\n",
    "analyze/src/a.cpp": "#include <cdma/analyze/a.hpp>\n#include <fmt/core.h>\n",
    "hwmodel/include/cdma/hwmodel/zoo.hpp": "#pragma once\n",
    "capture/include/cdma/capture/spool.hpp": "#pragma once\n#include <cstdint>\n",
    "capture/include/cdma/capture/collector.hpp": "#pragma once\n#include <cdma/formats/trace.hpp>\n",
    "capture/interposer/CMakeLists.txt": (
        "add_library(cdma_capture SHARED src/runtime.cpp)\n"
        "target_link_libraries(cdma_capture PRIVATE cdma_warnings Threads::Threads ${CMAKE_DL_LIBS})\n"),
    "capture/interposer/src/runtime.cpp": "#include <cdma/capture/spool.hpp>\n#include <cudnn.h>\n",
    "cli/CMakeLists.txt": (
        "add_executable(cdma main.cpp)\n"
        "foreach(lib cdma::analyze cdma::formats)\n"
        "  target_link_libraries(cdma PRIVATE ${lib})\n"
        "endforeach()\n"),
    "cli/main.cpp": "#include <cdma/analyze/a.hpp>\n#include <cdma/capture/collector.hpp>\n",
    "capture/interposer/src/shadow.hpp": "#pragma once\n",
    # a listed exception (SRC_EXCEPTIONS): white-box tests of the interposer's internals
    "tests/capture/t.cpp": '#include "../../capture/interposer/src/shadow.hpp"\n#include <gtest/gtest.h>\n',
}

# (name, {path: new content}, expected "file:line:" prefix, expected words of the rule)
BROKEN = [
    ("analyze includes hwmodel",
     {"analyze/src/a.cpp": "#include <cdma/analyze/a.hpp>\n#include <cdma/hwmodel/zoo.hpp>\n"},
     "analyze/src/a.cpp:2:", "may not include <cdma/hwmodel/zoo.hpp>"),
    ("formats links analyze (multi-line call)",
     {"formats/CMakeLists.txt": CLEAN["formats/CMakeLists.txt"].replace("ZLIB::ZLIB", "ZLIB::ZLIB\n  cdma::analyze")},
     "formats/CMakeLists.txt:7:", "formats may not link cdma::analyze"),
    ("cli includes another folder's src/",
     {"cli/main.cpp": '#include <cdma/analyze/a.hpp>\n\n#include "../formats/src/internal.hpp"\n'},
     "cli/main.cpp:3:", "internal (src/) header of formats"),
    ("interposer links a C++ library",
     {"capture/interposer/CMakeLists.txt": CLEAN["capture/interposer/CMakeLists.txt"].replace(
         "cdma_warnings", "cdma_warnings cdma::formats")},
     "capture/interposer/CMakeLists.txt:2:", "capture/interposer may not link cdma::formats"),
    ("interposer includes fmt",
     {"capture/interposer/src/runtime.cpp": "#include <cdma/capture/spool.hpp>\n#include <fmt/core.h>\n"},
     "capture/interposer/src/runtime.cpp:2:", "third-party library fmt"),
    ("interposer includes the collector's header",
     {"capture/interposer/src/runtime.cpp": "#include <cdma/capture/collector.hpp>\n"},
     "capture/interposer/src/runtime.cpp:1:", "capture/collector"),
    ("a library links the CLI",
     {"analyze/CMakeLists.txt": CLEAN["analyze/CMakeLists.txt"] + "target_link_libraries(cdma_analyze PRIVATE cdma)\n"},
     "analyze/CMakeLists.txt:4:", "analyze may not link cdma (cli)"),
    ("a test includes an internal header that is not a listed exception",
     {"tests/formats/t.cpp": '#include <cdma/formats/trace.hpp>\n#include "../../formats/src/internal.hpp"\n'},
     "tests/formats/t.cpp:2:", "internal (src/) header of formats"),
    ("analyze includes raw HDF5",
     {"analyze/src/a.cpp": "#include <hdf5.h>\n"},
     "analyze/src/a.cpp:1:", "third-party library hdf5"),
]


def write_tree(root, files):
    shutil.rmtree(root, ignore_errors=True)
    for rel, text in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as fh:
            fh.write(text)


def run(script, root):
    r = subprocess.run([sys.executable, script, "--root", root], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--script", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    failures = 0

    root = os.path.join(a.workdir, "clean")
    write_tree(root, CLEAN)
    rc, out = run(a.script, root)
    if rc != 0:
        print(f"FAIL clean tree: exit {rc}, expected 0\n{out}")
        failures += 1
    else:
        print("ok   clean tree passes")

    for i, (name, change, where, words) in enumerate(BROKEN):
        root = os.path.join(a.workdir, f"broken{i}")
        write_tree(root, {**CLEAN, **change})
        rc, out = run(a.script, root)
        hit = [ln for ln in out.splitlines() if ln.startswith(where) and words in ln]
        if rc != 1 or not hit:
            print(f"FAIL {name}: exit {rc}, expected 1 and a line starting '{where}' naming '{words}'\n{out}")
            failures += 1
        else:
            print(f"ok   {name}: {hit[0]}")

    rc, out = run(a.script, os.path.join(a.workdir, "does-not-exist"))
    if rc != 2:
        print(f"FAIL missing root: exit {rc}, expected 2\n{out}")
        failures += 1
    else:
        print("ok   missing root is a usage error")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
