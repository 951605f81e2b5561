#!/usr/bin/python3
"""Checks the dependency rules of docs/ARCHITECTURE.md against the tree.

    scripts/check-architecture.py [--root DIR] [--verbose]

Scans the #include lines of every C/C++ source git knows of (git ls-files: tracked, and untracked
but not ignored, as CMake's globs see them; a plain directory walk when DIR is not the top of a git
work tree) and the target_link_libraries() calls of every CMakeLists.txt, and prints one line per
broken rule, "file:line: rule", exiting 1 when there is any (0 when none, 2 on bad usage).
Standard library only.

The allowed graph is COMPONENTS below; docs/ARCHITECTURE.md mirrors it. Change both together.
"""

import argparse
import os
import re
import subprocess
import sys

# ---------------------------------------------------------------------------------------------
# The rules: one table. A component is a set of path prefixes (longest prefix wins); `deps` are
# the other components it may include or link; `third` the third-party libraries it may include
# or link. "*" means anything. Standard C/C++ and POSIX headers are always allowed.
COMPONENTS = {
    "formats":            dict(paths=["formats/"], deps=[],
                               third=["hdf5", "zlib", "zstd", "lz4", "fmt", "threads"]),
    "analyze":            dict(paths=["analyze/"], deps=["formats"],
                               third=["fmt", "json", "threads"]),
    # libdl: dladdr() finds the installed package's data beside the module or executable.
    "hwmodel":            dict(paths=["hwmodel/"], deps=["formats", "analyze"],
                               third=["fmt", "json", "dl"]),
    "report":             dict(paths=["report/"], deps=["formats", "analyze"],
                               third=["fmt", "json"]),
    # spool.hpp and config.hpp: the record layout and settings that the interposer and the
    # collector share; header-only, standard library only. Named one by one: every other header
    # of capture/include/ is the collector's public API.
    "capture/common":     dict(paths=["capture/include/cdma/capture/spool.hpp",
                                      "capture/include/cdma/capture/config.hpp"], deps=["formats/byte_size"],
                               third=[]),
    # The byte-size grammar: header-only, standard library only, no exceptions, so that the shared
    # capture settings (config.hpp, compiled into the standalone interposer) parse sizes like every
    # other cdma input. Part of formats: whatever may use formats may use it.
    "formats/byte_size":  dict(paths=["formats/include/cdma/formats/byte_size.hpp"], deps=[], third=[]),
    "capture/collector":  dict(paths=["capture/collector/", "capture/include/"],
                               deps=["formats", "capture/common"], third=[]),
    # libcdma_capture.so is preloaded into foreign processes (scripts/build-capture.sh): no cdma
    # library and no third-party library other than the CUDA headers, threads and libdl.
    "capture/interposer": dict(paths=["capture/interposer/"], deps=["capture/common", "capture/kernels"],
                               third=["cuda", "threads", "dl"]),
    "capture/kernels":    dict(paths=["capture/kernels/"], deps=[], third=["cuda"]),
    "capture/train":      dict(paths=["capture/train/"], deps=["formats"],
                               third=["torch", "zlib", "cli11", "fmt", "json"]),
    "cli":                dict(paths=["cli/"],
                               deps=["formats", "analyze", "hwmodel", "report", "capture/collector",
                                     "capture/common"],
                               third=["fmt", "json", "cli11", "threads", "mpi"]),
    "bench":              dict(paths=["bench/"], deps=["formats", "analyze"], third=["benchmark"]),
    # The Python package's native module (cdma._native): bindings of the libraries, no logic of its own.
    "python":             dict(paths=["python/"], deps=["formats", "analyze", "hwmodel"],
                               third=["pybind11", "fmt", "json"]),
    "tests":              dict(paths=["tests/"], deps=["*"], third=["*"]),
    "tools":              dict(paths=["tools/"], deps=[], third=["*"]),
}

# Includes of another component's src/ (internal headers) that are allowed, as
# (including path prefix, included path prefix, why). Anything else that reaches into a src/ of
# another component is a violation.
SRC_EXCEPTIONS = [
    ("tests/capture/", "capture/interposer/src/",
     "white-box unit tests of the interposer's pure logic (cdma_capture_core exports src/)"),
    ("tests/train/", "capture/train/src/",
     "white-box tests of the trainer (cdma_train_base/core export src/)"),
]

# Third-party libraries: header patterns (regexes matched at the start of the include path or of
# one of its components) and CMake link items (regexes matched against the whole item).
THIRD_PARTY = {
    "hdf5":      dict(headers=[r"hdf5(_hl)?\.h$", r"H5[A-Za-z]*\.h$"], links=[r"\$\{HDF5_\w*LIBRARIES\}", r"hdf5::.*"]),
    "zlib":      dict(headers=[r"zlib\.h$"], links=[r"ZLIB::ZLIB"]),
    "zstd":      dict(headers=[r"zstd(_errors)?\.h$"], links=[r"PkgConfig::ZSTD"]),
    "lz4":       dict(headers=[r"lz4(hc|frame)?\.h$"], links=[r"PkgConfig::LZ4"]),
    "fmt":       dict(headers=[r"fmt/"], links=[r"fmt::fmt(-header-only)?"]),
    "json":      dict(headers=[r"nlohmann/"], links=[r"nlohmann_json::nlohmann_json"]),
    "cli11":     dict(headers=[r"CLI/"], links=[r"CLI11::CLI11"]),
    "torch":     dict(headers=[r"torch/", r"ATen/", r"c10/"], links=[r"\$\{TORCH_LIBRARIES\}", r"torch"]),
    "benchmark": dict(headers=[r"benchmark/"], links=[r"benchmark::\w+"]),
    "gtest":     dict(headers=[r"gtest/", r"gmock/"], links=[r"GTest::\w+"]),
    "cuda":      dict(headers=[r"cuda[\w.]*\.h$", r"cudnn[\w.]*\.h$", r"cupti[\w.]*\.h$", r"nvrtc\.h$"],
                      links=[r"CUDA::\w+"]),
    "threads":   dict(headers=[], links=[r"Threads::Threads"]),
    "pybind11":  dict(headers=[r"pybind11/"], links=[r"pybind11::\w+"]),
    "dl":        dict(headers=[], links=[r"\$\{CMAKE_DL_LIBS\}"]),
    # Optional (CDMA_WITH_MPI): `cdma analyze` under mpirun/srun, in cli/analyze_mpi.cpp only.
    "mpi":       dict(headers=[r"mpi\.h$"], links=[r"MPI::MPI_(C|CXX)"]),
}

# Targets defined in the root CMakeLists.txt (cdma_warnings) are build settings, allowed anywhere.
SOURCE_EXTS = (".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".hxx", ".cu", ".cuh", ".inl", ".ipp")
CMAKE_KEYWORDS = {"PUBLIC", "PRIVATE", "INTERFACE", "LINK_PUBLIC", "LINK_PRIVATE", "LINK_INTERFACE_LIBRARIES",
                  "debug", "optimized", "general"}

# ---------------------------------------------------------------------------------------------


def component_of(path):
    """The component owning a repository-relative path, or None (root files, docs, data...)."""
    best, best_len = None, -1
    for name, c in COMPONENTS.items():
        for p in c["paths"]:
            if (path == p or path.startswith(p)) and len(p) > best_len:
                best, best_len = name, len(p)
    return best


def allowed_dep(src, dst):
    if src == dst or dst is None:
        return True
    deps = COMPONENTS[src]["deps"]
    if dst == "formats/byte_size" and ("formats" in deps or src == "formats"):
        return True  # a part of formats
    return "*" in deps or dst in deps


def allowed_third(src, lib):
    third = COMPONENTS[src]["third"]
    return "*" in third or lib in third


def third_party_of_header(inc):
    for lib, t in THIRD_PARTY.items():
        if any(re.search(r"(^|/)" + h, inc) for h in t["headers"]):
            return lib
    return None


def third_party_of_link(item):
    for lib, t in THIRD_PARTY.items():
        if any(re.fullmatch(h, item) for h in t["links"]):
            return lib
    return None


def list_files(root):
    """Tracked and untracked, not ignored files (git ls-files) when root is the top of a work tree,
    else every file except hidden and build* directories."""
    try:
        top = subprocess.run(["git", "-C", root, "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, check=True).stdout.strip()
        if os.path.realpath(top) == os.path.realpath(root):
            # Untracked files that git does not ignore count too: CMake's globs build them.
            out = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                 capture_output=True, check=True).stdout
            return sorted(f for f in out.decode().split("\0") if f and os.path.isfile(os.path.join(root, f)))
    except (OSError, subprocess.CalledProcessError):
        pass
    files = []
    for d, subdirs, names in os.walk(root):
        subdirs[:] = [s for s in subdirs if not s.startswith(".") and not s.startswith("build")]
        for n in names:
            files.append(os.path.relpath(os.path.join(d, n), root).replace(os.sep, "/"))
    return sorted(files)


# --- CMake ---------------------------------------------------------------------------------------

def cmake_calls(text):
    """Yields (command, [(token, line)], line) for every command call, comments stripped."""
    pos, line, n = 0, 1, len(text)
    call_re = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
    while pos < n:
        ch = text[pos]
        if ch == "#":
            end = text.find("\n", pos)
            pos = n if end < 0 else end
            continue
        if ch == "\n":
            line += 1
            pos += 1
            continue
        m = call_re.match(text, pos)
        if not m or (pos > 0 and (text[pos - 1].isalnum() or text[pos - 1] == "_")):
            pos += 1
            continue
        cmd, start_line = m.group(1).lower(), line
        pos = m.end()
        depth, tokens, tok, tok_line, quoted = 1, [], "", line, False
        while pos < n and depth > 0:
            ch = text[pos]
            if quoted:
                if ch == "\\" and pos + 1 < n:
                    tok += text[pos:pos + 2]
                    pos += 2
                    continue
                if ch == '"':
                    quoted = False
                else:
                    tok += ch
                if ch == "\n":
                    line += 1
                pos += 1
                continue
            if ch == '"':
                if not tok:
                    tok_line = line
                quoted = True
            elif ch == "#":
                end = text.find("\n", pos)
                pos = n if end < 0 else end
                continue
            elif ch in " \t\r\n()":
                if ch == "(":
                    depth += 1
                elif ch == ")":
                    depth -= 1
                if tok:
                    tokens.append((tok, tok_line))
                    tok = ""
                if ch == "\n":
                    line += 1
            else:
                if not tok:
                    tok_line = line
                tok += ch
            pos += 1
        yield cmd, tokens, start_line


def load_cmake(root, files):
    """Returns (targets: name -> component, links: [(file, line, target, item)], include_dirs)."""
    targets, aliases, links, include_dirs = {}, {}, [], set()
    for f in files:
        if os.path.basename(f) != "CMakeLists.txt" and not f.endswith(".cmake"):
            continue
        d = os.path.dirname(f)
        comp = component_of(f) if d else "<build>"
        with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
            calls = list(cmake_calls(fh.read()))
        foreach_vars = {}
        for cmd, toks, _ in calls:
            if cmd == "foreach" and len(toks) > 1:
                items = [t for t, _ in toks[1:] if t not in ("IN", "LISTS", "ITEMS")]
                foreach_vars[toks[0][0]] = items
        for cmd, toks, line in calls:
            words = [t for t, _ in toks]
            if cmd in ("add_library", "add_executable") and words:
                if len(words) >= 3 and words[1] == "ALIAS":
                    aliases[words[0]] = words[2]
                elif comp is not None:
                    targets[words[0]] = comp
            elif cmd == "target_link_libraries" and words:
                for tok, tl in toks[1:]:
                    m = re.fullmatch(r"\$\{(\w+)\}", tok)
                    if m and m.group(1) in foreach_vars:
                        links.extend((f, tl, words[0], item) for item in foreach_vars[m.group(1)])
                    else:
                        links.append((f, tl, words[0], tok))
            elif cmd == "target_include_directories":
                for tok in words[1:]:
                    p = tok.replace("${CMAKE_CURRENT_SOURCE_DIR}", d or ".").replace("${CMAKE_SOURCE_DIR}", ".")
                    if "$" in p or p in ("PUBLIC", "PRIVATE", "INTERFACE", "SYSTEM", "BEFORE", "AFTER"):
                        continue
                    include_dirs.add(os.path.normpath(p).replace(os.sep, "/"))
    for a, real in aliases.items():
        if real in targets:
            targets[a] = targets[real]
    return targets, links, include_dirs


def check_links(targets, links):
    errors = []
    for f, line, tgt, item in links:
        # Targets named through a variable (cdma_add_gtest's ${name}) belong to their file's folder.
        src = targets.get(tgt) or component_of(f)
        if src is None or src == "<build>" or item in CMAKE_KEYWORDS or item.startswith("-") \
                or item.startswith("$<"):
            continue
        if item in targets:
            dst = targets[item]
            if dst == "<build>" or allowed_dep(src, dst):
                continue
            errors.append((f, line, f"{src} may not link {item} ({dst}); allowed: "
                                    f"{', '.join(COMPONENTS[src]['deps']) or 'no other cdma component'}"))
            continue
        lib = third_party_of_link(item)
        if lib is not None:
            if not allowed_third(src, lib):
                errors.append((f, line, f"{src} may not link the third-party library {item} ({lib})"))
            continue
        if "*" in COMPONENTS[src]["third"] and "*" in COMPONENTS[src]["deps"]:
            continue
        errors.append((f, line, f"{src} links {item}, which is neither a cdma target nor in the "
                                f"third-party table of scripts/check-architecture.py"))
    return errors


# --- #include ------------------------------------------------------------------------------------

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def resolve(inc, quoted, including, fileset, include_dirs):
    """Repository paths an include may name (empty when it is not in the tree)."""
    if quoted:
        p = os.path.normpath(os.path.join(os.path.dirname(including), inc)).replace(os.sep, "/")
        if p in fileset:
            return [p]
    found = []
    for d in sorted(include_dirs):
        p = os.path.normpath(os.path.join(d, inc)).replace(os.sep, "/")
        if p in fileset:
            found.append(p)
    return found


def cdma_header_owners(fileset):
    """Maps each public header name cdma/<x>/<y>.hpp (and cdma/<y>.hpp generated from a
    <folder>/<y>.hpp.in template) to the component that provides it."""
    owners = {}
    for f in sorted(fileset):
        i = f.find("/include/cdma/")
        if i >= 0:
            owners[f[i + len("/include/"):]] = component_of(f)
        elif f.endswith(".hpp.in") or f.endswith(".h.in"):
            owners.setdefault("cdma/" + os.path.basename(f)[:-3], component_of(f))
    return owners


def in_src(path):
    return "/src/" in "/" + path


def src_exception(including, target):
    for a, b, _ in SRC_EXCEPTIONS:
        if including.startswith(a) and target.startswith(b):
            return True
    return False


def check_includes(root, files, include_dirs):
    fileset = set(files)
    owners = cdma_header_owners(fileset)
    errors = []
    for f in files:
        if not f.endswith(SOURCE_EXTS):
            continue
        src = component_of(f)
        if src is None:
            continue
        with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
            for lineno, text in enumerate(fh, 1):
                m = INCLUDE_RE.match(text)
                if not m:
                    continue
                quoted, inc = m.group(1) == '"', m.group(2).strip()
                if inc.startswith("cdma/"):
                    if inc not in owners:
                        errors.append((f, lineno, f"includes <{inc}>, which no folder provides"))
                    elif not allowed_dep(src, owners[inc]):
                        dst = owners[inc]
                        errors.append((f, lineno, f"{src} may not include <{inc}> ({dst}); allowed: "
                                                  f"{', '.join(COMPONENTS[src]['deps']) or 'no other cdma component'}"))
                    continue
                cands = resolve(inc, quoted, f, fileset, include_dirs)
                if cands:
                    bad = []
                    for c in cands:
                        dst = component_of(c)
                        if dst != src and in_src(c) and not src_exception(f, c):
                            bad.append(f"includes {c}, an internal (src/) header of {dst}")
                        elif not allowed_dep(src, dst):
                            bad.append(f"{src} may not include {c} ({dst})")
                    if len(bad) == len(cands):
                        errors.append((f, lineno, bad[0]))
                    continue
                lib = third_party_of_header(inc)
                if lib is not None and not allowed_third(src, lib):
                    errors.append((f, lineno, f"{src} may not include <{inc}> (third-party library {lib})"))
    return errors


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
                    help="top of the tree to check (default: this script's repository)")
    ap.add_argument("--verbose", action="store_true", help="also print what was scanned")
    args = ap.parse_args(argv)
    root = os.path.abspath(args.root)
    if not os.path.isdir(root):
        print(f"check-architecture: {root} is not a directory", file=sys.stderr)
        return 2
    files = list_files(root)
    targets, links, include_dirs = load_cmake(root, files)
    errors = check_links(targets, links) + check_includes(root, files, include_dirs)
    if args.verbose:
        n_src = sum(1 for f in files if f.endswith(SOURCE_EXTS))
        print(f"check-architecture: {n_src} sources, {len(targets)} targets, {len(links)} link items, "
              f"{len(include_dirs)} include directories")
    for f, line, msg in sorted(set(errors)):
        print(f"{f}:{line}: {msg}")
    if errors:
        print(f"check-architecture: {len(set(errors))} broken rule(s); see docs/ARCHITECTURE.md", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
