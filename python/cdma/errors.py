"""Exceptions of the cdma package.

Every error the cdma libraries raise arrives as one of these, with the library's message: the same
sentence the ``cdma`` command prints (without its ``cdma <verb>:`` prefix).
"""


class Error(Exception):
    """Base of every cdma error."""


class UsageError(Error, ValueError):
    """A request is invalid as given: an unknown codec, network or preset, a value out of range."""


class TraceError(Error):
    """A trace file could not be opened, read or written, or does not follow trace format v1.

    ``file`` and ``object`` name where the problem is ("" when not applicable)."""

    def __init__(self, message, file="", object=""):  # noqa: A002 - the library's names
        super().__init__(message)
        self.file = file
        self.object = object


class CodecError(Error, ValueError):
    """A codec stream is malformed, or a codec name or parameter is invalid."""


class VerifyError(Error):
    """``verify=True`` found an encoding that does not decode to the original bytes."""


class ModelError(Error):
    """The hardware model refused its inputs (a bad preset file, an inconsistent network)."""


def path_arg(path, what="path"):
    """os.fspath(path) as text, refusing a path with a NUL character (UsageError naming `what`): the
    C++ libraries would open it as the prefix before the NUL."""
    import os

    p = os.fspath(path)
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    if "\0" in p:
        raise UsageError(f"{what} {p!r} contains a NUL character")
    return p


def int_arg(v, name, lo, hi):
    """An integer argument in [lo, hi]: TypeError for a non-integer (a float such as 3999.9, a bool,
    a string: refused, never truncated), ValueError naming the argument when out of range."""
    import operator

    if isinstance(v, bool):
        raise TypeError(f"{name} must be an integer, not a bool")
    try:
        i = operator.index(v)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {type(v).__name__} {v!r}") from None
    if not lo <= i <= hi:
        raise ValueError(f"{name} must be in {lo} .. {hi}, got {i}")
    return i
