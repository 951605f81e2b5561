#!/usr/bin/python3
"""The overhead of cdma.torch.capture on one training iteration (docs/TORCH_CAPTURE.md, "Overhead").

    PYTHONPATH=build/python /usr/bin/python3 python/examples/torch_overhead.py --model resnet18 --rounds 5

Trains a torchvision model (weights=None) on random 3 x SIZE x SIZE inputs, alternating in rounds between
configurations (no capture; full capture of every iteration; in-situ counts of every iteration; a capture
whose iterations are not kept: the hooks alone), `--per-round` iterations each, so that a machine shared
with other work loads all of them alike. Prints, per configuration, the median wall and process CPU
time (all threads) per iteration and their ratio to no capture, as one JSON object.
"""

import argparse
import json
import os
import statistics
import tempfile
import time

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    import cdma.torch

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    model = getattr(torchvision.models, a.model)(weights=None, num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(a.batch, 3, a.size, a.size)
    y = torch.randint(0, 10, (a.batch,))
    d = tempfile.mkdtemp()
    configs = {"none": None, "full": dict(mode="full", budget=None), "insitu": dict(mode="insitu"),
               "hooks_only": dict(iterations=[])}
    times = {k: ([], []) for k in configs}

    def iteration(cap):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if cap is not None:
            cap.step()

    iteration(None)  # warm-up
    for r in range(a.rounds):
        for name, kw in configs.items():
            cap = None
            if kw is not None:
                cap = cdma.torch.capture(os.path.join(d, f"{name}-{r}.h5"), model, timeline=True, **kw)
                cap.start()
            for _ in range(a.per_round):
                w0, c0 = time.perf_counter(), time.process_time()
                iteration(cap)
                times[name][0].append(time.perf_counter() - w0)
                times[name][1].append(time.process_time() - c0)
            if cap is not None:
                cap.close()
            for f in os.listdir(d):
                os.remove(os.path.join(d, f))
    base_w = statistics.median(times["none"][0])
    base_c = statistics.median(times["none"][1])
    out = {"model": a.model, "batch": a.batch, "size": a.size, "iterations_per_config": a.rounds * a.per_round}
    for name, (w, c) in times.items():
        mw, mc = statistics.median(w), statistics.median(c)
        out[name] = {"wall_s": round(mw, 4), "cpu_s": round(mc, 4), "wall_vs_none": round(mw / base_w, 3),
                     "cpu_vs_none": round(mc / base_c, 3)}
    out["loadavg"] = os.getloadavg()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
