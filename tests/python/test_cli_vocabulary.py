"""One CLI vocabulary (issue 20): every verb's --help names the same things the same way.

Parsed from the real --help texts: every option that sets worker threads is -j/--jobs, every one that
replaces an existing output is -f/--force, JSON and CSV outputs are --json FILE / --csv FILE, and
no verb still offers an old spelling as its only name."""

import re

import pytest

from conftest import cdma_cli


def verbs():
    out = cdma_cli("--help").stdout
    names = re.findall(r"^\s{2,}([a-z]+)\s{2,}", out, flags=re.M)
    assert {"analyze", "replay", "report", "info", "bench", "synth"} <= set(names), out
    return names


def options(verb):
    """Option specs of a verb: lists of names per option line of --help ("-j,--jobs,--threads")."""
    p = cdma_cli(verb, "--help", check=False)
    if p.returncode != 0 and "was not built" in p.stderr:  # `train` of a pip install (no libtorch trainer)
        pytest.skip(p.stderr.strip())
    assert p.returncode == 0, p.stderr
    specs = []
    for line in p.stdout.splitlines():
        m = re.match(r"^\s+((?:-{1,2}[A-Za-z0-9][-A-Za-z0-9]*,?)+)", line)
        if m:
            specs.append((m.group(1).rstrip(",").split(","), line))
    return specs


@pytest.mark.parametrize("verb", verbs())
def test_same_names_for_the_same_things(verb):
    for names, line in options(verb):
        low = line.lower()
        if any(n in ("--threads", "--jobs", "-j", "-t") for n in names) or "worker threads" in low:
            assert "-j" in names and "--jobs" in names, f"cdma {verb}: thread option not -j/--jobs: {line}"
        if any(n in ("--overwrite", "--force", "-f") for n in names):
            assert "-f" in names and "--force" in names, f"cdma {verb}: overwrite option not -f/--force: {line}"
        if "--quiet" in names:
            assert "-q" in names, f"cdma {verb}: --quiet without -q: {line}"
        for n in names:
            assert n not in ("--output-json", "--json-out", "--csv-out"), f"cdma {verb}: {n}"
