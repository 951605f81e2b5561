#!/usr/bin/env python3
"""GPU check of the cuDNN interposer: trains a small torchvision CNN (ResNet-18, 1 input channel;
a VGG-style CNN when torchvision is missing) on Fashion-MNIST, optionally under
libcdma_capture.so (run.sh sets LD_PRELOAD and CDMA_CAPTURE_*), and checks the spool it wrote.

  python3 train.py --data DIR --iterations 300 --batch 128 --out result.json [--spool-dir D]
                   [--check-iter K]
  python3 train.py --check-only SPOOL      # the spool checks alone (no torch), for dry runs

Checks (when --spool-dir is given): at iteration K every Conv2d's input is captured with the
shape the module saw; every captured X of iteration K equals, byte for byte, a tensor autograd
saved for backward (torch.autograd.graph.saved_tensors_hooks); densities are in (0, 1); calls on
the timeline have GPU time > 0. Results (timings, checks) go to --out as JSON.
"""
import argparse
import glob
import gzip
import hashlib
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdma_spool  # noqa: E402


def check_spool(spool_path, check_iter=None, conv_shapes=None, saved_hashes=None, insitu=False):
    """Returns (ok, report dict). Works on any spool (also those of the fake-cuDNN tests)."""
    sp = cdma_spool.read_spool(spool_path)
    rep = {"spool": spool_path, "tensors": len(sp["tensors"]), "stats_rows": len(sp["stats"]),
           "timeline_rows": len(sp["timeline"]), "clean_end": sp["clean_end"], "counters": sp["counters"],
           "attrs": {k: v for k, v in sp["attrs"].items() if k != "command"}, "failures": []}
    fail = rep["failures"]
    if not sp["clean_end"]:
        fail.append("the spool was not finalised")
    # Densities: a conv input after the first is a ReLU output, so it has zeros and nonzeros.
    if insitu:
        dens = {}
        for s in sp["stats"]:
            d = s["nonzeros"] / max(1, s["elements"])
            dens.setdefault(s["layer"], []).append(d)
            if s["op"] == "conv" and s["layer"] != "conv0" and not (0.0 < d < 1.0):
                fail.append(f"stats density {d:.3f} of {s['layer']} iteration {s['iteration']} not in (0, 1)")
        if not sp["stats"]:
            fail.append("no /stats rows in in-situ mode")
    else:
        dens = {}
        for t in sp["tensors"]:
            if t["iteration"] != check_iter and check_iter is not None:
                continue
            d = cdma_spool.density(t)
            dens.setdefault(t["layer"], []).append(d)
            if t["op"] == "conv" and t["layer"] != "conv0" and not (0.0 < d < 1.0):
                fail.append(f"density {d:.3f} of {t['layer']} iteration {t['iteration']} not in (0, 1)")
    rep["density"] = {k: sum(v) / len(v) for k, v in sorted(dens.items())}
    # Timeline GPU time.
    tl = sp["timeline"]
    timed = sum(1 for r in tl if sp["device_ns"].get(r["call"], 0) > 0)
    rep["timeline_timed_fraction"] = timed / max(1, len(tl))
    if not tl:
        fail.append("no timeline rows")
    elif rep["timeline_timed_fraction"] < 0.9:
        fail.append(f"only {timed} of {len(tl)} timeline rows have GPU time > 0")
    rep["apis"] = sorted({r["api"] for r in tl})
    # Conv inputs of the check iteration.
    if check_iter is not None and not insitu:
        convs = [t for t in sp["tensors"] if t["iteration"] == check_iter and t["op"] == "conv" and t["role"] == "x"]
        rep["conv_x_shapes"] = [t["dims"] for t in convs]
        if conv_shapes is not None:
            got = [t["dims"] if t["layout"] == "NCHW" else None for t in convs]
            if got != conv_shapes:
                fail.append(f"conv inputs of iteration {check_iter}: captured {got}, modules saw {conv_shapes}")
        if saved_hashes is not None:
            xs = [t for t in sp["tensors"] if t["iteration"] == check_iter and t["role"] == "x"]
            miss = [t["layer"] for t in xs if hashlib.sha1(t["data"]).hexdigest() not in saved_hashes]
            rep["x_checked_against_saved"] = len(xs) - len(miss)
            if miss or not xs:
                fail.append(f"captured X not among the tensors saved for backward: {miss or 'none captured'}")
    return not fail, rep


def load_fmnist(d):
    with gzip.open(os.path.join(d, "t10k-images-idx3-ubyte.gz")) as f:
        _, n, h, w = struct.unpack(">IIII", f.read(16))
        img = f.read(n * h * w)
    with gzip.open(os.path.join(d, "t10k-labels-idx1-ubyte.gz")) as f:
        f.read(8)
        lab = f.read(n)
    return img, lab, n, h, w


def model_for(torch):
    try:
        import torchvision
        m = torchvision.models.resnet18(num_classes=10)
        m.conv1 = torch.nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
        m.maxpool = torch.nn.Identity()
        return m, "torchvision resnet18 (1-channel stem)"
    except Exception:  # torchvision missing or incompatible
        nn = torch.nn
        layers, c = [], 1
        for k in (32, 64, 128):
            layers += [nn.Conv2d(c, k, 3, padding=1), nn.BatchNorm2d(k), nn.ReLU(inplace=True),
                       nn.Conv2d(k, k, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c = k
        layers += [nn.Flatten(), nn.Linear(128 * 3 * 3, 10)]
        return nn.Sequential(*layers), "VGG-style CNN (torchvision unavailable)"


def train(args):
    import torch
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = False
    dev = torch.device("cuda")
    img, lab, n, h, w = load_fmnist(args.data)
    x_all = torch.frombuffer(bytearray(img), dtype=torch.uint8).view(n, 1, h, w).float().div_(255).to(dev)
    y_all = torch.frombuffer(bytearray(lab), dtype=torch.uint8).long().to(dev)
    model, model_name = model_for(torch)
    model = model.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    conv_shapes, saved = [], set()

    def pre_hook(_m, inp):
        conv_shapes.append(list(inp[0].shape))

    def pack(t):
        if t.dim() >= 2 and t.is_floating_point():
            saved.add(hashlib.sha1(t.detach().contiguous().cpu().numpy().tobytes()).hexdigest())
        return t

    times, losses = [], []
    b = args.batch
    steps_per_epoch = n // b
    torch.cuda.synchronize()
    for it in range(args.iterations):
        i = it % steps_per_epoch
        xb, yb = x_all[i * b:(i + 1) * b], y_all[i * b:(i + 1) * b]
        check = it == args.check_iter
        handles = [m.register_forward_pre_hook(pre_hook) for m in model.modules()
                   if isinstance(m, torch.nn.Conv2d)] if check else []
        t0 = time.perf_counter()
        if check:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = loss_fn(model(xb), yb)
        else:
            loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        for hd in handles:
            hd.remove()
        if it % 50 == 0 or it == args.iterations - 1:
            losses.append((it, float(loss)))
    warm = min(20, len(times) // 4)
    res = {"model": model_name, "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
           "device": torch.cuda.get_device_name(0), "iterations": args.iterations, "batch": b,
           "ms_per_iteration": 1000 * sum(times[warm:]) / max(1, len(times) - warm), "losses": losses,
           "v8_api_disabled": os.environ.get("TORCH_CUDNN_V8_API_DISABLED", ""), "checks_ok": True}
    if args.spool_dir:
        # The interposer finalises its spool at exit: check it from a fresh process (run.sh).
        res["conv_shapes"] = conv_shapes
        res["saved_hashes"] = sorted(saved)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--check-iter", type=int, default=5)
    ap.add_argument("--spool-dir")
    ap.add_argument("--out")
    ap.add_argument("--check-only", metavar="SPOOL_OR_DIR", help="check spools and exit (no torch)")
    ap.add_argument("--train-result", help="with --check-only: result JSON of the training run (shapes, hashes)")
    ap.add_argument("--insitu", action="store_true", help="with --check-only: the spool is an in-situ capture")
    args = ap.parse_args()
    if args.check_only:
        paths = sorted(glob.glob(os.path.join(args.check_only, "*.spool"))) if os.path.isdir(args.check_only) \
            else [args.check_only]
        tr = json.load(open(args.train_result)) if args.train_result else {}
        # The process that trained is the one whose spool has conv tensors or stats (workers have none).
        reports, ok_all = [], bool(paths)
        for p in paths:
            ok, rep = check_spool(p, tr.get("check_iter", args.check_iter if tr else None) if not args.insitu else None,
                                  tr.get("conv_shapes"), set(tr["saved_hashes"]) if "saved_hashes" in tr else None,
                                  insitu=args.insitu)
            reports.append(rep)
            ok_all = ok_all and ok
        out = {"ok": ok_all, "reports": reports}
        if args.out:
            json.dump(out, open(args.out, "w"), indent=1)
        for r in reports:
            print(f"  {os.path.basename(r['spool'])}: {r['tensors']} tensors, {r['stats_rows']} stats, "
                  f"{r['timeline_rows']} calls ({100 * r['timeline_timed_fraction']:.0f}% timed); "
                  f"{'OK' if not r['failures'] else 'FAIL: ' + '; '.join(r['failures'][:5])}")
        return 0 if ok_all else 1
    res = train(args)
    res["check_iter"] = args.check_iter
    if args.out:
        json.dump(res, open(args.out, "w"))
    print(f"  {res['model']}, {res['iterations']} iterations: {res['ms_per_iteration']:.2f} ms/iteration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
