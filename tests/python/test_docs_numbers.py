"""Numbers in the docs come from commands (issue 34, item 3): every `docs-check` marker in README.md,
data/README.md and docs/*.md names a command and the numbers it prints; this test reruns the command with this
build's `cdma` and fails when a printed number differs from the document.

A marker is an HTML comment (invisible on the rendered page) at the start of a line, placed right above the paragraph or table whose
numbers it checks (several markers may stack above one block):

    <!-- docs-check: cdma replay --net paper --ratio 2.6
    ^\\s*alexnet\\s: 75.9 39.7
    average: 118.0 48.9
    -->

The first line is the command, run by bash from the repository root with this build's bin/ first on PATH. Each
further line is `PATTERN: NUMBERS`: PATTERN is a regular expression, and some line of the command's output (stdout
and stderr) that matches it must hold every one of NUMBERS (`*` = anywhere in the output). Every one of NUMBERS must
also appear in the document's block below the marker (the first paragraph, table or code block after it, up to a
blank line), so that the prose and the marker cannot drift apart either. Numbers are compared as written: signs,
units and `x` / `%` suffixes are ignored; a document number with k decimals matches a printed number that rounds
to it at k decimals (the document may round 239.50 to 239.5), never a different value.

Kinds: `docs-check` is deterministic and fast, run in every CI run. `docs-check-slow` is deterministic but slow
(training runs): listed, and run and compared only with CDMA_DOCS_SLOW=1. `docs-check-machine` numbers depend on
the machine (timings, benchmarks): listed, never compared, only checked against the block below them.
"""

import decimal
import os
import pathlib
import re
import subprocess

import pytest

from conftest import BIN_DIR, SOURCE_DIR

DOCS = ["README.md", "data/README.md", *sorted(str(p.relative_to(SOURCE_DIR)) for p in (SOURCE_DIR / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!--\s*(docs-check(?:-slow|-machine)?):(.*?)-->", re.S | re.M)  # at a line's start
NUMBER = re.compile(r"\d+(?:\.\d+)?")
SLOW = os.environ.get("CDMA_DOCS_SLOW") == "1"


class Marker:
    def __init__(self, doc, line, kind, command, checks, block):
        self.doc, self.line, self.kind, self.command, self.checks, self.block = doc, line, kind, command, checks, block

    def __repr__(self):
        return f"{self.doc}:{self.line}"


def parse_markers(doc, text):
    """The markers of one document; a malformed marker is an error naming its line."""
    out = []
    for m in MARKER.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        body = m.group(2).strip().splitlines()
        if not body or not body[0].strip():
            raise ValueError(f"{doc}:{line}: {m.group(1)} names no command")
        command = body[0].strip()
        checks = []
        for row in body[1:]:
            if not row.strip():
                continue
            pattern, sep, numbers = row.rpartition(": ")
            nums = numbers.split()
            if not sep or not pattern.strip() or not nums or not all(NUMBER.fullmatch(n) for n in nums):
                raise ValueError(f"{doc}:{line}: '{row.strip()}' is not 'PATTERN: NUMBER...'")
            checks.append((pattern.strip(), nums))
        if not checks:
            raise ValueError(f"{doc}:{line}: {m.group(1)}: {command}: names no number to check")
        out.append(Marker(doc, line, m.group(1), command, checks, block_below(text, m.end())))
    return out


def block_below(text, pos):
    """The first block (paragraph, table, fenced code) after pos, skipping blank lines and stacked markers."""
    rest = text[pos:]
    while True:
        stripped = rest.lstrip("\n ")
        m = MARKER.match(stripped)
        if not m:
            break
        rest = stripped[m.end():]
    rest = rest.lstrip("\n")
    if rest.startswith("```"):
        end = rest.find("\n```", 3)
        return rest[: end + 4] if end >= 0 else rest
    end = rest.find("\n\n")
    return rest if end < 0 else rest[:end]


def all_markers():
    out = []
    for doc in DOCS:
        out += parse_markers(doc, (SOURCE_DIR / doc).read_text())
    return out


def matches(documented, printed):
    """A documented number equals a printed one, or is it rounded to the documented number of decimals."""
    if documented == printed:
        return True
    d, p = decimal.Decimal(documented), decimal.Decimal(printed)
    places = -d.as_tuple().exponent
    if -p.as_tuple().exponent <= places:
        return d == p
    return p.quantize(decimal.Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_EVEN) == d or \
        p.quantize(decimal.Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_UP) == d


def has_numbers(text, numbers):
    found = NUMBER.findall(text)
    return all(any(matches(n, f) for f in found) for n in numbers)


def check_block(marker):
    for _, numbers in marker.checks:
        for n in numbers:
            assert has_numbers(marker.block, [n]), (
                f"{marker}: {n} (checked by `{marker.command}`) is not in the text below the marker:\n{marker.block}")


_outputs = {}


def run(command):
    if command not in _outputs:
        env = dict(os.environ, PATH=f"{BIN_DIR}:{os.environ.get('PATH', '')}")
        p = subprocess.run(["bash", "-c", command], cwd=SOURCE_DIR, env=env, capture_output=True, text=True,
                           timeout=1800)
        assert p.returncode == 0, f"`{command}` exited {p.returncode}:\n{p.stderr}"
        _outputs[command] = p.stdout + p.stderr
    return _outputs[command]


def check_output(marker, output):
    lines = output.splitlines()
    for pattern, numbers in marker.checks:
        if pattern == "*":
            ok = has_numbers(output, numbers)
        else:
            rx = re.compile(pattern)
            ok = any(rx.search(l) and has_numbers(l, numbers) for l in lines)
        assert ok, (f"{marker}: `{marker.command}` prints no line matching /{pattern}/ with {' '.join(numbers)} "
                    f"(the document's numbers); its output:\n{output}")


MARKERS = all_markers()


def test_markers_cover_the_headline_documents():
    by_doc = {m.doc for m in MARKERS if m.kind == "docs-check"}
    assert {"README.md", "data/README.md", "docs/HWMODEL_RESULTS.md"} <= by_doc, by_doc


def test_the_cdma_on_path_is_this_build():
    assert run("command -v cdma").strip() == str(BIN_DIR / "cdma")


@pytest.mark.parametrize("marker", [m for m in MARKERS if m.kind == "docs-check"], ids=repr)
def test_documented_numbers_are_printed(marker):
    check_block(marker)
    check_output(marker, run(marker.command))


@pytest.mark.parametrize("marker", [m for m in MARKERS if m.kind == "docs-check-slow"], ids=repr)
def test_slow_documented_numbers(marker):
    check_block(marker)
    if not SLOW:
        pytest.skip(f"slow (CDMA_DOCS_SLOW=1 runs it): {marker.command}")
    check_output(marker, run(marker.command))


@pytest.mark.parametrize("marker", [m for m in MARKERS if m.kind == "docs-check-machine"], ids=repr)
def test_machine_dependent_numbers_are_listed(marker):
    """Timings and benchmarks: the marker keeps the command beside the numbers; the numbers are not compared."""
    check_block(marker)


def test_marker_syntax_errors_name_the_line():
    with pytest.raises(ValueError, match=r"x.md:2: .*names no number"):
        parse_markers("x.md", "text\n<!-- docs-check: cdma info data/vgg-fmnist.h5 -->\n")
    with pytest.raises(ValueError, match=r"x.md:1: 'tensors: many' is not"):
        parse_markers("x.md", "<!-- docs-check: cdma info X\ntensors: many\n-->\n")


def test_a_changed_number_fails(tmp_path):
    """The check is not vacuous: a document number off by one in its last digit, or missing, fails."""
    text = "<!-- docs-check: echo 'vgg 75 49.1%'\nvgg: 75 49.1\n-->\n| vgg | 75 | 49.1 % |\n"
    m = parse_markers("x.md", text)[0]
    check_block(m)
    check_output(m, run(m.command))
    bad = parse_markers("x.md", text.replace("| 49.1 %", "| 49.2 %"))[0]
    with pytest.raises(AssertionError, match="49.1"):
        check_block(bad)
    bad = parse_markers("x.md", text.replace("vgg: 75 49.1", "vgg: 75 49.2").replace("| 49.1 %", "| 49.2 %"))[0]
    with pytest.raises(AssertionError, match="49.2"):
        check_output(bad, run(bad.command))


def test_rounding_rule():
    assert matches("239.5", "239.50") and matches("1.94", "1.9412") and matches("118.0", "118.0")
    assert not matches("239.5", "239.56") and not matches("56.7", "63.3")
