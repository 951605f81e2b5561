#!/usr/bin/env python3
"""GPU check of the cuDNN interposer: trains a small torchvision CNN (ResNet-18, 1 input channel;
a VGG-style CNN when torchvision is missing) on Fashion-MNIST, optionally under
libcdma_capture.so (run.sh sets LD_PRELOAD and CDMA_CAPTURE_*), and checks the spool it wrote.

  python3 train.py --data DIR --iterations 200 --batch 128 --out result.json [--spool-dir D]
                   [--check-iter K]
  python3 train.py --probe                 # versions (torch, CUDA, cuDNN, CUPTI, driver) as JSON;
                                           # exit 0 when a GPU is usable
  python3 train.py --check-only SPOOL      # the spool checks alone (no torch), for dry runs

Checks (when --spool-dir is given): at iteration K every Conv2d's input is captured with the
shape the module saw; every captured X of iteration K that the interposer marked offloaded equals,
byte for byte, a tensor autograd saved for backward (torch.autograd.graph.saved_tensors_hooks);
densities are in (0, 1). Separately, the GPU-time check: calls on the timeline have GPU time > 0
(CUPTI); without CUPTI records it reads "unavailable" and capture still counts as working.
Spools are read record by record (cdma_spool.py), only iteration K's tensor bytes, one at a time.
Results (timings, checks) go to --out as JSON.
"""
import argparse
import ctypes
import glob
import gzip
import hashlib
import json
import os
import platform
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdma_spool  # noqa: E402


def check_spool(spool_path, check_iter=None, conv_shapes=None, saved_hashes=None, insitu=False, timeline=False):
    """Returns (ok, report dict); ok covers capture only, report["gpu_time"] the CUPTI check.
    Works on any spool (also those of the fake-cuDNN tests). A timeline-mode spool must hold
    timeline rows and no tensor or stats records."""
    dens, hashes = {}, {}

    def want(t):
        return not insitu and (check_iter is None or t["iteration"] == check_iter)

    def on_tensor(t, data):
        d = cdma_spool.density(t, data)
        dens.setdefault(t["layer"], []).append(d)
        t["density"] = d
        if saved_hashes is not None:
            t["sha1"] = cdma_spool.sha1(data)

    try:
        sp = cdma_spool.read_spool(spool_path, want=want, on_tensor=on_tensor)
    except (OSError, cdma_spool.SpoolError) as e:
        return False, {"spool": spool_path, "tensors": 0, "stats_rows": 0, "timeline_rows": 0,
                       "timeline_timed_fraction": 0.0, "failures": [str(e)],
                       "gpu_time": {"status": "unavailable", "detail": "spool unreadable"}}
    rep = {"spool": spool_path, "tensors": len(sp["tensors"]), "stats_rows": len(sp["stats"]),
           "timeline_rows": len(sp["timeline"]), "clean_end": sp["clean_end"], "counters": sp["counters"],
           "offloaded": sum(1 for t in sp["tensors"] if t["offload"]),
           "not_offloaded": sum(1 for t in sp["tensors"] if t["offload"] is False),
           "attrs": {k: v for k, v in sp["attrs"].items() if k != "command"}, "failures": []}
    fail = rep["failures"]
    if sp["damaged"]:
        fail.append("damaged spool: " + sp["damaged"])
    if not sp["clean_end"]:
        fail.append("the spool was not finalised")
    # Densities: a conv input after the first is a ReLU output, so it has zeros and nonzeros.
    if insitu:
        for s in sp["stats"]:
            d = s["nonzeros"] / max(1, s["elements"])
            dens.setdefault(s["layer"], []).append(d)
            if s["op"] == "conv" and s["layer"] != "conv0" and not (0.0 < d < 1.0):
                fail.append(f"stats density {d:.3f} of {s['layer']} iteration {s['iteration']} not in (0, 1)")
        if not sp["stats"]:
            fail.append("no /stats rows in in-situ mode")
    else:
        for t in sp["tensors"]:
            d = t.get("density")
            if d is not None and t["op"] == "conv" and t["layer"] != "conv0" and not (0.0 < d < 1.0):
                fail.append(f"density {d:.3f} of {t['layer']} iteration {t['iteration']} not in (0, 1)")
    rep["density"] = {k: sum(v) / len(v) for k, v in sorted(dens.items())}
    tl = sp["timeline"]
    if not tl:
        fail.append("no timeline rows")
    if timeline:
        if sp["tensors"] or sp["stats"]:
            fail.append(f"timeline mode, yet {len(sp['tensors'])} tensors and {len(sp['stats'])} stats rows")
        check_iter = None
    rep["apis"] = sorted({r["api"] for r in tl})
    # GPU time (CUPTI), reported on its own: capture works without it.
    timed = sum(1 for r in tl if sp["device_ns"].get(r["call"], 0) > 0)
    rep["timeline_timed_fraction"] = timed / max(1, len(tl))
    if sp["cupti_records"] == 0:
        rep["gpu_time"] = {"status": "unavailable", "detail": "no CUPTI records in the spool (CUPTI not loaded, "
                           "or activity tracing refused in this machine)"}
    elif rep["timeline_timed_fraction"] < 0.9:
        rep["gpu_time"] = {"status": "failed", "detail": f"only {timed} of {len(tl)} timeline rows have GPU time > 0"}
    else:
        rep["gpu_time"] = {"status": "ok", "detail": f"{timed} of {len(tl)} timeline rows have GPU time > 0"}
    # Conv inputs of the check iteration.
    if check_iter is not None and not insitu:
        convs = [t for t in sp["tensors"] if t["iteration"] == check_iter and t["op"] == "conv" and t["role"] == "x"]
        rep["conv_x_shapes"] = [t["dims"] for t in convs]
        if conv_shapes is not None:
            got = [t["dims"] if t["layout"] == "NCHW" else None for t in convs]
            if got != conv_shapes:
                fail.append(f"conv inputs of iteration {check_iter}: captured {got}, modules saw {conv_shapes}")
        if saved_hashes is not None:
            # What the interposer says is offloaded (offload = 1, or unknown in an older spool) must
            # be a tensor autograd kept for backward.
            xs = [t for t in sp["tensors"] if t["iteration"] == check_iter and t["role"] == "x"
                  and t["offload"] is not False]
            miss = [t["layer"] for t in xs if t.get("sha1") not in saved_hashes]
            rep["x_checked_against_saved"] = len(xs) - len(miss)
            if miss or not xs:
                fail.append(f"captured X not among the tensors saved for backward: {miss or 'none captured'}")
    return not fail, rep


def probe():
    """Versions of what the check runs on, and whether a GPU is usable (no GPU work)."""
    info = {"python": platform.python_version(), "glibc": os.confstr("CS_GNU_LIBC_VERSION")
            if hasattr(os, "confstr") else None}
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
        v = ctypes.c_int(0)
        if libcuda.cuDriverGetVersion(ctypes.byref(v)) == 0:
            info["cuda_driver_api"] = f"{v.value // 1000}.{v.value % 1000 // 10}"
    except OSError as e:
        info["cuda_driver_api"] = f"unavailable ({e})"
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - report whatever stops the import
        info["torch"] = f"unavailable ({e})"
        return info, False
    info["torch"] = torch.__version__
    info["torch_cuda"] = torch.version.cuda
    info["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    try:
        cupti = ctypes.CDLL("libcupti.so.13")  # libtorch_cpu loads it (DT_NEEDED); found if loaded
        v = ctypes.c_uint32(0)
        if cupti.cuptiGetVersion(ctypes.byref(v)) == 0:
            info["cupti_api"] = v.value
    except (OSError, AttributeError) as e:
        info["cupti_api"] = f"unavailable ({e})"
    usable = bool(torch.cuda.is_available())
    if usable:
        info["device"] = torch.cuda.get_device_name(0)
        info["device_count"] = torch.cuda.device_count()
    # Which files were loaded: the cuDNN, CUPTI and driver libraries this process uses.
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({ln.split()[-1] for ln in f if any(k in ln for k in ("libcudnn.so", "libcupti", "libcuda.so"))})
        info["libraries"] = libs
    except OSError:
        pass
    return info, usable


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

    times, losses = [], []  # times: every iteration but the check iteration (it hashes saved tensors)
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
        if not check:
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
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--check-iter", type=int, default=5)
    ap.add_argument("--spool-dir")
    ap.add_argument("--out")
    ap.add_argument("--check-only", metavar="SPOOL_OR_DIR", help="check spools and exit (no torch)")
    ap.add_argument("--train-result", help="with --check-only: result JSON of the training run (shapes, hashes)")
    ap.add_argument("--insitu", action="store_true", help="with --check-only: the spool is an in-situ capture")
    ap.add_argument("--timeline", action="store_true", help="with --check-only: the spool is a timeline-only capture")
    ap.add_argument("--probe", action="store_true", help="print versions as JSON; exit 0 when a GPU is usable")
    args = ap.parse_args()
    if args.probe:
        info, usable = probe()
        info["gpu_usable"] = usable
        print(json.dumps(info))
        return 0 if usable else 1
    if args.check_only:
        paths = sorted(glob.glob(os.path.join(args.check_only, "*.spool"))) if os.path.isdir(args.check_only) \
            else [args.check_only]
        tr = json.load(open(args.train_result)) if args.train_result else {}
        # The process that trained is the one whose spool has conv tensors or stats (workers have none).
        reports, ok_all = [], bool(paths)
        for p in paths:
            ok, rep = check_spool(p, tr.get("check_iter", args.check_iter if tr else None) if not args.insitu else None,
                                  tr.get("conv_shapes"), set(tr["saved_hashes"]) if "saved_hashes" in tr else None,
                                  insitu=args.insitu, timeline=args.timeline)
            reports.append(rep)
            ok_all = ok_all and ok
        gpu = [r["gpu_time"]["status"] for r in reports]
        gpu_time = "failed" if "failed" in gpu else "ok" if gpu and all(g == "ok" for g in gpu) else \
            "ok (some spools without CUPTI records)" if "ok" in gpu else "unavailable"
        out = {"ok": ok_all, "gpu_time": gpu_time, "reports": reports}
        if not paths:
            out["failures"] = [f"no spool in {args.check_only}"]
        if args.out:
            json.dump(out, open(args.out, "w"), indent=1)
        for r in reports:
            print(f"  {os.path.basename(r['spool'])}: {r['tensors']} tensors, {r['stats_rows']} stats, "
                  f"{r['timeline_rows']} calls; capture "
                  f"{'OK' if not r['failures'] else 'FAIL: ' + '; '.join(r['failures'][:5])}")
            print(f"  {os.path.basename(r['spool'])}: GPU time (CUPTI) {r['gpu_time']['status']}: "
                  f"{r['gpu_time']['detail']}")
        if not paths:
            print(f"  no spool in {args.check_only}: FAIL")
        return 0 if ok_all else 1
    res = train(args)
    res["check_iter"] = args.check_iter
    if args.out:
        json.dump(res, open(args.out, "w"))
    print(f"  {res['model']}, {res['iterations']} iterations: {res['ms_per_iteration']:.2f} ms/iteration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
