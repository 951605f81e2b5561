"""Byte counts of a ratio table (cdma replay --ratios FILE.json) are JSON integers 0 .. 2^62 (issue 29):
1e300 bytes was read through a cast and printed as -9223372036854775808; a float, a negative or a
larger number is now bad input (exit 1) naming the file, the row and the field."""

import json

import pytest

from conftest import cdma_cli


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    d = tmp_path_factory.mktemp("ratios")
    trace = d / "t.h5"
    cdma_cli("synth", "-o", trace, "--shape", "2,4,8,8", "--layers", "2", "--iterations", "1")
    doc = d / "a.json"
    cdma_cli("analyze", trace, "--json", doc)
    return json.loads(doc.read_text())


def test_good_table_replays(table, tmp_path):
    f = tmp_path / "good.json"
    f.write_text(json.dumps(table))
    p = cdma_cli("replay", "--net", "alexnet", "--ratios", f, "--fill", "average", check=False)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("field", ["bytes", "iterations"])
@pytest.mark.parametrize("value", ["1e300", "-5", "2.5", "9223372036854775807"])
def test_bad_counts_are_refused(table, tmp_path, field, value):
    rows = [i for i, r in enumerate(table["layer"]) if r.get("layout") == "stored" and r.get("dtype") == "stored"
            and r.get("role", "x") == "x"]
    assert rows
    text = json.dumps(table)
    doc = json.loads(text)
    doc["layer"][rows[0]][field] = "@@"
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc).replace('"@@"', value))
    p = cdma_cli("replay", "--net", "alexnet", "--ratios", f, "--fill", "average", check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert str(f) in p.stderr and f"layer[{rows[0]}].{field}: expected an integer 0 .. 2^62" in p.stderr, p.stderr
    assert "-9223372036854775808" not in p.stdout + p.stderr
