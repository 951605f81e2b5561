"""One exit-code table for every verb (README "Exit codes"; issue 29, the low group): 0 success, 1 bad
input (a missing or unreadable input file, an output that cannot be written, a failed check, a
capture that wrote no trace), 2 bad command line (an unknown option, codec or name, a value out of
range, an output that cannot be one, an existing output without --force), 130 interrupted. Each
verb is run with a missing file, a wrong codec (or name) and a bad value; the code must be the
table's and the message must name the file or option."""

import pytest

from conftest import BIN_DIR, DATA, cdma_cli

VGG = DATA / "vgg-fmnist.h5"
MISSING = "/nonexistent/missing-input.h5"
TRAIN = BIN_DIR / "cdma-train"

# verb -> [(case, args, expected code, words the message must hold)]
CASES = {
    "info": [
        ("missing file", ["info", MISSING], 1, [MISSING]),
        ("bad option", ["info", VGG, "--bogus"], 2, ["--bogus"]),
    ],
    "analyze": [
        ("missing file", ["analyze", MISSING], 1, [MISSING]),
        ("wrong codec", ["analyze", VGG, "-c", "nope"], 2, ["'nope'"]),
        ("bad value", ["analyze", VGG, "--chunk", "3"], 2, ["chunk"]),
        ("bad value", ["analyze", VGG, "-j", "-1"], 2, ["-j"]),
        ("bad value", ["analyze", VGG, "--by", "nowhere"], 2, ["--by", "nowhere"]),
    ],
    "replay": [
        ("missing file", ["replay", MISSING], 1, [MISSING]),
        ("missing file", ["replay", "--net", "alexnet", "--ratios", MISSING], 1, [MISSING]),
        ("wrong codec", ["replay", "--net", "alexnet", "--ratio", "2", "--engine", "dma:nope"], 2, ["nope"]),
        ("bad value", ["replay", "--net", "alexnet", "--batch", "0"], 2, ["--batch"]),
        ("bad value", ["replay", "--net", "alexnet", "--ratio", "nan"], 2, ["--ratio"]),
    ],
    "report": [
        ("missing file", ["report", MISSING, "-o", "{tmp}/r.html"], 1, [MISSING]),
        ("wrong codec", ["report", VGG, "--codecs", "nope", "-o", "{tmp}/r.html"], 2, ["'nope'"]),
        ("bad value", ["report", VGG, "--zoo-batch", "0", "-o", "{tmp}/r.html"], 2, ["--zoo-batch"]),
        ("bad value", ["report", VGG, "--layouts", "NCWH", "-o", "{tmp}/r.html"], 2, ["NCWH"]),
    ],
    "bench": [
        ("missing file", ["bench", MISSING], 1, [MISSING]),
        ("wrong codec", ["bench", VGG, "-c", "nope"], 2, ["'nope'"]),
        ("bad value", ["bench", VGG, "--min-ms", "nan"], 2, ["--min-ms"]),
        ("bad value", ["bench", VGG, "--rounds", "0"], 2, ["--rounds"]),
    ],
    "synth": [
        # synth reads no file: its "missing file" is an output in a folder that does not exist.
        ("missing folder", ["synth", "-o", "/nonexistent/dir/x.h5"], 1, ["/nonexistent/dir"]),
        ("wrong name", ["synth", "-o", "{tmp}/x.h5", "--dtype", "nope"], 2, ["--dtype", "nope"]),
        ("bad value", ["synth", "-o", "{tmp}/x.h5", "--density", "nan"], 2, ["--density"]),
        ("bad value", ["synth", "-o", "{tmp}/x.h5", "--dead-share", "nan"], 2, ["--dead-share"]),
        ("existing output", ["synth", "-o", VGG], 2, [str(VGG), "--force"]),
    ],
    "capture": [
        ("missing file", ["capture", "--convert", MISSING, "-o", "{tmp}/x.h5"], 1, [MISSING]),
        ("wrong name", ["capture", "--mode", "nope", "--", "true"], 2, ["nope"]),
        ("bad value", ["capture", "--every", "0", "--", "true"], 2, ["--every"]),
        ("bad value", ["capture", "--torch", "--every", "0", "--", "true"], 2, ["--every"]),
        ("bad value", ["capture", "--torch", "--samples", "0", "--", "true"], 2, ["--samples"]),
        ("bad value", ["capture", "--skip", "-1", "--", "true"], 2, ["--skip"]),
        ("bad value", ["capture", "--ring-wait-ms", "-5", "--", "true"], 2, ["--ring-wait-ms"]),
        ("existing output", ["capture", "--convert", DATA, "-o", VGG], 2, ["--force"]),
        ("bad output", ["capture", "--convert", DATA, "-f", "-o", "/dev/null"], 2, ["/dev/null"]),
    ],
}
if TRAIN.exists():
    CASES["train"] = [
        ("missing file", ["train", "--data-dir", "/nonexistent/fmnist", "-o", "{tmp}/t.h5"], 1,
         ["/nonexistent/fmnist"]),
        ("wrong name", ["train", "--net", "nope", "-o", "{tmp}/t.h5"], 2, ["nope"]),
        ("bad option", ["train", "--bogus"], 2, ["--bogus"]),
        # numeric options are range-checked before anything runs (issue 29): 0 meant "not given" and was dropped
        ("bad value", ["train", "--capture-every", "0", "-o", "{tmp}/t.h5"], 2, ["--capture-every: must be >= 1, got 0"]),
        ("bad value", ["train", "--capture-spread", "0", "-o", "{tmp}/t.h5"], 2, ["--capture-spread"]),
        ("bad value", ["train", "--capture-first", "0", "-o", "{tmp}/t.h5"], 2, ["--capture-first"]),
        ("bad value", ["train", "--capture-last", "-1", "-o", "{tmp}/t.h5"], 2, ["--capture-last"]),
        ("bad value", ["train", "--capture-at", "3,-1", "-o", "{tmp}/t.h5"], 2, ["--capture-at"]),
        ("bad value", ["train", "--capture-batch", "-1", "-o", "{tmp}/t.h5"], 2, ["--capture-batch"]),
        ("bad value", ["train", "--batch", "0", "-o", "{tmp}/t.h5"], 2, ["--batch"]),
        ("bad value", ["train", "--iterations", "0", "-o", "{tmp}/t.h5"], 2, ["--iterations"]),
        ("bad value", ["train", "--epochs", "nan", "-o", "{tmp}/t.h5"], 2, ["--epochs"]),
        ("bad value", ["train", "--lr", "0", "-o", "{tmp}/t.h5"], 2, ["--lr"]),
        ("bad value", ["train", "--lr", "inf", "-o", "{tmp}/t.h5"], 2, ["--lr"]),
        ("bad value", ["train", "--momentum", "1", "-o", "{tmp}/t.h5"], 2, ["--momentum"]),
        ("bad value", ["train", "--weight-decay", "-0.1", "-o", "{tmp}/t.h5"], 2, ["--weight-decay"]),
        ("bad value", ["train", "-j", "2000", "-o", "{tmp}/t.h5"], 2, ["--jobs"]),
        ("bad value", ["train", "--deflate", "10", "-o", "{tmp}/t.h5"], 2, ["--deflate"]),
        ("bad value", ["train", "--train-limit", "-5", "-o", "{tmp}/t.h5"], 2, ["--train-limit"]),
        ("unwritable output", ["train", "--no-capture", "-i", "1", "--train-limit", "64", "--test-limit", "64",
                               "--metrics", "/dev/full"], 1, ["cannot write /dev/full (No space left on device)"]),
    ]


@pytest.mark.parametrize("verb,case,args,code,words",
                         [(v, c, a, k, w) for v, rows in CASES.items() for c, a, k, w in rows],
                         ids=lambda x: x if isinstance(x, str) and not x.startswith("/") else None)
def test_exit_code_table(verb, case, args, code, words, tmp_path):
    args = [str(a).replace("{tmp}", str(tmp_path)) for a in args]
    p = cdma_cli(*args, check=False)
    assert p.returncode == code, f"cdma {' '.join(args)}: exit {p.returncode}, expected {code} ({case})\n{p.stderr}"
    for w in words:
        assert w in p.stderr, f"cdma {' '.join(args)}: no '{w}' in the message\n{p.stderr}"
    assert "Success" not in p.stderr


def test_every_verb_is_covered():
    """A verb added to cdma needs its rows here."""
    p = cdma_cli("--help")
    listed = {line.split()[0] for line in p.stdout.split("Commands:")[1].split("Options:")[0].splitlines()
              if line.strip()}
    assert listed - {"train"} <= set(CASES), listed - set(CASES)


def test_no_trace_written_is_one_everywhere(tmp_path):
    """A capture that wrote no trace is exit 1 in both paths (not 0 in one and 1 in the other)."""
    lib = BIN_DIR.parent / "lib" / "libcdma_capture.so"
    if lib.exists():
        p = cdma_cli("capture", "-o", tmp_path / "a.h5", "--", "true", check=False)
        assert p.returncode == 1 and "no trace written" in p.stderr, p.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    p = cdma_cli("capture", "--convert", empty, "-o", tmp_path / "b.h5", check=False)
    assert p.returncode == 1 and "no trace written" in p.stderr, p.stderr
    p = cdma_cli("capture", "--torch", "-o", tmp_path / "c.h5", "--", "true", check=False)
    assert p.returncode == 1 and "no trace written" in p.stderr, p.stderr


def test_keep_going_names_each_path_once(tmp_path):
    """-k lists a skipped file once per line, not 'skipped x.h5: /: x.h5: cannot open ...'."""
    cut = tmp_path / "cut.h5"
    cut.write_bytes(VGG.read_bytes()[:200000])
    p = cdma_cli("analyze", "-k", "-q", "-c", "zvc", DATA / "squeezenet-fmnist.h5", cut, "--json", tmp_path / "a.json",
                 check=False)
    assert p.returncode == 1
    line = next(x for x in p.stderr.splitlines() if "skipped" in x)
    assert line.count(str(cut)) == 1, line
