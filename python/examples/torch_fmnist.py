#!/usr/bin/python3
"""Trains a torchvision classification model on Fashion-MNIST under cdma.torch.capture.

    PYTHONPATH=build/python /usr/bin/python3 python/examples/torch_fmnist.py --model resnet18 \\
        --iterations 200 --capture-spread 5 --samples 2 --deflate 9 -o run.h5

Models (weights=None: nothing is downloaded): resnet18, resnet50, vgg16, alexnet, squeezenet1_0,
googlenet, mobilenet_v2, with 10 classes. Data: Debian's dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist/*.gz, idx format; --data DIR elsewhere), 28x28 grey images
resized to --size (bilinear) and repeated over 3 channels, normalised. Adam, seeded, --threads CPU
threads. Prints the loss every --log iterations, then test accuracy on --test-images images, and a
JSON summary line (loss, accuracy, seconds, iterations per second, trace). docs/TORCH_CAPTURE.md.
"""

import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

MODELS = ["resnet18", "resnet50", "vgg16", "alexnet", "squeezenet1_0", "googlenet", "mobilenet_v2"]
MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training set


def read_idx(path):
    """An idx file (gzip): uint8 images [n, rows, cols] or labels [n]."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic not in (2049, 2051):
        raise SystemExit(f"{path}: not an idx file of labels or images (magic {magic})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise SystemExit(f"{path}: {arr.size} bytes of data, the header says {dims}")
    return arr.reshape(dims)


def load(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))


def prepare(images, size):
    x = images.float().div_(255).sub_(MEAN).div_(STD).unsqueeze(1)
    if size != 28:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.expand(-1, 3, -1, -1).contiguous()


def make_model(name):
    kw = {"weights": None, "num_classes": 10}
    if name == "googlenet":
        kw.update(aux_logits=False, init_weights=True)
    return getattr(torchvision.models, name)(**kw)


def spread(n, k):
    """k iterations spread from the first to the last of n (as cdma train --capture-spread)."""
    if k <= 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=MODELS, default="resnet18")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=32, help="input side in pixels (alexnet needs >= 63)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--test-images", type=int, default=1000)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--log", type=int, default=20)
    ap.add_argument("-o", "--output", default="torch-fmnist.h5")
    ap.add_argument("-f", "--force", action="store_true", help="replace the output")
    ap.add_argument("--no-capture", action="store_true")
    ap.add_argument("--mode", choices=["full", "insitu"], default="full")
    ap.add_argument("--every", type=int, default=None)
    ap.add_argument("--capture-spread", type=int, default=None, help="capture K iterations spread over the run")
    ap.add_argument("--budget", default="2G")
    ap.add_argument("--samples", type=int, default=None, help="keep the first K images of each batch")
    ap.add_argument("--deflate", type=int, default=0)
    a = ap.parse_args(argv)
    if a.model == "alexnet" and a.size < 63:
        ap.error("alexnet needs --size 63 or more")

    import cdma.torch  # after argparse: --help works without the native module

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    xs, ys = load(a.data, "train")
    model = make_model(a.model)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    g = torch.Generator().manual_seed(a.seed)
    order = torch.randperm(len(xs), generator=g)

    cap = None
    if not a.no_capture:
        its = spread(a.iterations, a.capture_spread) if a.capture_spread else None
        cap = cdma.torch.capture(a.output, model, every=None if its else a.every, iterations=its, budget=a.budget,
                                 mode=a.mode, samples=a.samples, deflate_level=a.deflate, overwrite=a.force,
                                 model_name=a.model, command=" ".join(["torch_fmnist.py", *sys.argv[1:]]),
                                 attributes={"dataset": "fashion-mnist", "seed": a.seed, "input_size": a.size})
        cap.start()
    model.train()
    t0 = time.perf_counter()
    loss = None
    try:
        for i in range(a.iterations):
            idx = order[(i * a.batch) % len(xs):][: a.batch]
            x, y = prepare(xs[idx], a.size), ys[idx]
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad()
            if cap is not None:
                cap.step()
            if a.log and (i % a.log == 0 or i == a.iterations - 1):
                print(f"iteration {i}: loss {loss.item():.4f}", flush=True)
    finally:
        if cap is not None:
            cap.close()
    train_s = time.perf_counter() - t0

    xt, yt = load(a.data, "test")
    model.eval()
    correct = 0
    n = min(a.test_images, len(xt))
    with torch.no_grad():
        for s in range(0, n, 256):
            out = model(prepare(xt[s:min(s + 256, n)], a.size))
            correct += int((out.argmax(1) == yt[s:min(s + 256, n)]).sum())
    summary = {"model": a.model, "iterations": a.iterations, "batch": a.batch, "size": a.size,
               "final_loss": round(loss.item(), 4) if loss is not None else None,
               "test_accuracy": round(correct / n, 4) if n else None, "test_images": n,
               "train_seconds": round(train_s, 2), "iterations_per_second": round(a.iterations / train_s, 3),
               "trace": None if cap is None else a.output,
               "trace_bytes": None if cap is None else os.path.getsize(a.output),
               "tensors": None if cap is None else cap.counters["recorded"]}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
