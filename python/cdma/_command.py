"""The `cdma` command of an installed cdma (`pip install`: a console script, and `python -m cdma`).

It runs the package's cdma executable (cdma/bin/cdma, built with the native module from the same
sources as a build's build/bin/cdma: every verb, the same options, messages and exit codes) with the
arguments given. For `cdma capture --torch` it adds --python-dir naming the folder that holds this
package, so that the program under capture imports this cdma (the executable's default is a build's
layout, <bin>/../python).
"""

import os
import pathlib
import sys


def executable():
    """The cdma executable inside this package."""
    return pathlib.Path(__file__).parent / "bin" / "cdma"


def arguments(argv, package_parent):
    """The executable's arguments for `cdma ARGV`: ARGV, plus --python-dir PACKAGE_PARENT for
    `capture --torch` when ARGV does not name one (options after `--` belong to the command)."""
    args = list(argv)
    if args[:1] != ["capture"]:
        return args
    head = args[: args.index("--")] if "--" in args else args
    if "--torch" in head and not any(a == "--python-dir" or a.startswith("--python-dir=") for a in head):
        args[1:1] = ["--python-dir", str(package_parent)]
    return args


def main(argv=None):
    exe = executable()
    if not os.access(exe, os.X_OK):
        print(
            f"cdma: this installation has no cdma executable ({exe}); reinstall cdma (`pip install <cdma checkout>`)",
            file=sys.stderr,
        )
        return 1
    args = arguments(sys.argv[1:] if argv is None else argv, pathlib.Path(__file__).parent.parent)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(exe, ["cdma", *args])
