"""`cdma capture --torch -- python SCRIPT` (cli/cmd_capture_torch.cpp + python/cdma/torch/_launch.py)
on an unmodified script: a torchvision resnet18 with a DataLoader worker (fork) and an LR scheduler,
iterations counted at optimizer steps, an existing sitecustomize chained; then `cdma analyze` and
`cdma replay` read the trace, and the replay uses the trace's own measured ratios."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")

import cdma  # noqa: E402
from conftest import BIN_DIR, cdma_cli  # noqa: E402

STEPS = 2

SCRIPT = textwrap.dedent(f"""
    import json, os, sys
    import torch, torchvision
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    g = torch.Generator().manual_seed(1)
    data = torch.utils.data.TensorDataset(torch.randn({STEPS} * 2, 3, 32, 32, generator=g),
                                          torch.randint(0, 10, ({STEPS} * 2,), generator=g))
    loader = torch.utils.data.DataLoader(data, batch_size=2, num_workers=1)
    losses = []
    for x, y in loader:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward(); opt.step(); sched.step(); opt.zero_grad()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        model(x)  # evaluation: nothing saved, nothing recorded
    print(json.dumps({{"losses": losses, "chained": os.environ.get("CHAINED_SITECUSTOMIZE")}}))
""")


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    d = tmp_path_factory.mktemp("launch")
    script = d / "train.py"
    script.write_text(SCRIPT)
    site = d / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os\nos.environ['CHAINED_SITECUSTOMIZE'] = 'yes'\n")
    env = dict(os.environ, PYTHONPATH=f"{site}:{os.environ.get('PYTHONPATH', '')}")
    plain = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=True)
    out = d / "run.h5"
    summary = d / "summary.json"
    p = subprocess.run([str(BIN_DIR / "cdma"), "capture", "--torch", "-o", str(out), "--summary-json",
                        str(summary), "--", sys.executable, str(script)], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    return {"dir": d, "trace": out, "plain": json.loads(plain.stdout), "run": json.loads(p.stdout.splitlines()[-1]),
            "stderr": p.stderr, "summary": json.loads(summary.read_text())}


def test_unmodified_script_is_captured(launched):
    r = launched["run"]
    assert r["losses"] == launched["plain"]["losses"]  # training unchanged
    assert r["chained"] == "yes"  # the script's own sitecustomize still ran
    t = cdma.open(launched["trace"])
    a = t.attrs
    assert a["complete"] and a["producer"].startswith("cdma.torch") and a["source"] == "torch-cpu"
    assert a["model"] == "ResNet"
    df = t.tensors()
    # One iteration per optimizer step (the scheduler's wrapper of step() notwithstanding).
    assert sorted(set(df.iteration)) == list(range(STEPS))
    assert t._r.root_attribute("iterations") == str(STEPS)
    layers = set(df.layer)
    assert {"conv1", "bn1", "maxpool", "layer1.0.conv1", "layer4.1.bn2", "fc"} <= layers
    assert set(df.op) >= {"conv", "bn", "pool", "linear"}
    # The network input (conv1's x) is the only tensor not offloaded.
    assert list(df[~df.offloaded].layer) == ["conv1"] * STEPS
    # Only the training process wrote a trace (not the DataLoader worker).
    assert [s["trace"] for s in launched["summary"]["traces"]] == [str(launched["trace"])]
    assert launched["summary"]["traces"][0]["tensors"] == len(df)
    assert not list(launched["dir"].glob("run.*.h5"))


def test_analyze_and_replay_read_the_trace(launched):
    trace = launched["trace"]
    an = json.loads(cdma_cli("analyze", trace, "--json", "-").stdout)
    assert an["traces"][0]["tensors"] > 0
    rep = json.loads(cdma_cli("replay", trace, "--json", "-").stdout)
    run = rep["runs"][0]
    layers = {layer["name"]: layer for layer in run["layers"]}
    # The trace's own tensors give bytes and measured ratios: a conv input straight after a ReLU
    # (layer1.0.conv2: bn1 -> in-place relu -> conv2) is about half zeros and compresses; the
    # max-pool output (layer1.0.conv1's input) is dense.
    conv = layers["layer1.0.conv2"]
    assert conv["x_bytes"] > 0
    assert conv["ratio"]["zvc"] > 1.3
    assert layers["layer1.0.conv1"]["ratio"]["zvc"] < conv["ratio"]["zvc"]
    measured = [layer for layer in run["layers"] if layer["ratio"]]
    assert len(measured) > 10


def test_bad_launcher_options(tmp_path):
    p = cdma_cli("capture", "--torch", "--ops", "conv", "--", sys.executable, "-c", "1", check=False)
    assert p.returncode == 2 and "not of --torch" in p.stderr
    p = cdma_cli("capture", "--torch", "--python-dir", tmp_path, "--", sys.executable, "-c", "1", check=False)
    assert p.returncode == 2 and "--python-dir" in p.stderr
    p = cdma_cli("capture", "--torch", "--mode", "timeline", "--", sys.executable, "-c", "1", check=False)
    assert p.returncode == 2 and "full or insitu" in p.stderr
    # A command that trains nothing writes no trace: exit 1, said so.
    p = cdma_cli("capture", "--torch", "-o", tmp_path / "none.h5", "--", sys.executable, "-c", "import torch",
                 check=False)
    assert p.returncode == 1 and "no trace written" in p.stderr
    assert not (tmp_path / "none.h5").exists()


TINY = textwrap.dedent("""
    import subprocess, sys, torch
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(2 * 6 * 6, 2))
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(int(sys.argv[1])):
        torch.nn.functional.cross_entropy(m(torch.randn(2, 1, 8, 8)), torch.tensor([0, 1])).backward()
        opt.step(); opt.zero_grad()
    if len(sys.argv) > 2:  # a second Python process of the command, training too
        subprocess.run([sys.executable, __file__, sys.argv[2]], check=True)
""")


def test_every_process_gets_its_own_trace(tmp_path):
    script = tmp_path / "tiny.py"
    script.write_text(TINY)
    out = tmp_path / "two.h5"
    cdma_cli("capture", "--torch", "-o", out, "--every", "2", "--", sys.executable, script, "3", "5")
    others = list(tmp_path.glob("two.*.h5"))
    assert len(others) == 1 and others[0].stem.split(".")[1].isdigit()
    # The parent recorded first (iterations 0, 2 of 3); the child wrote <stem>.<pid>.h5 (0, 2, 4 of 5).
    first, second = cdma.open(out), cdma.open(others[0])
    assert sorted(set(first.tensors().iteration)) == [0, 2]
    assert sorted(set(second.tensors().iteration)) == [0, 2, 4]
    assert first._r.root_attribute("iterations") == "3" and second._r.root_attribute("iterations") == "5"
    # The ReLU output reaches the linear layer through nn.Flatten: named by the linear layer, which saves it.
    assert list(first.tensors().layer[:3]) == ["0", "3", "(outside)"]


def test_a_killed_process_leaves_a_readable_trace(tmp_path):
    script = tmp_path / "killed.py"
    kill = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)  # after the loop: killed, no atexit\n"
    script.write_text(TINY.replace("if len(sys.argv) > 2:", kill + "if len(sys.argv) > 2:"))
    out = tmp_path / "killed.h5"
    p = cdma_cli("capture", "--torch", "-o", out, "--", sys.executable, script, "2", check=False)
    assert p.returncode == 128 + 9
    assert "not closed" in p.stderr
    t = cdma.open(out)
    assert not t.attrs["complete"]
    # Every iteration that ended (each step() writes and flushes its tensors) is there.
    assert sorted(set(t.tensors().iteration)) == [0, 1]
    assert all(t.read(i).size for i in range(len(t.tensors())))
