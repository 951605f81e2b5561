#!/usr/bin/env python3
"""A stand-in for tools/gpu-check/train.py with the same options, for `run.sh --trainer` in the
tests: instead of PyTorch it runs a fake-cuDNN program (FAKE_TRAIN_PROGRAM, e.g. capture_legacy_net;
LD_PRELOAD and CDMA_CAPTURE_* from run.sh reach it), and writes the result JSON train.py writes:
ms per iteration, the conv input shapes and the hashes of the tensors the program passed as each
layer's X at the check iteration (what autograd saves for backward in the real check).
FAKE_TRAIN_SLEEP_S makes each training run sleep that long first (a run that outlasts its limit).
"""
import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--check-iter", type=int, default=5)
    ap.add_argument("--spool-dir")
    ap.add_argument("--out")
    ap.add_argument("--probe", action="store_true")
    a = ap.parse_args()
    prog = os.environ["FAKE_TRAIN_PROGRAM"]
    if a.probe:
        print(json.dumps({"torch": "none (fake trainer)", "cudnn": 91900, "cupti_api": "fake", "device": "fake GPU",
                          "program": prog}))
        return 0
    time.sleep(float(os.environ.get("FAKE_TRAIN_SLEEP_S", "0")))
    with tempfile.TemporaryDirectory() as d:
        exp = os.path.join(d, "expected.bin")
        t0 = time.perf_counter()
        rc = subprocess.call([prog, "--iterations", str(a.iterations), "--expect", exp])
        secs = time.perf_counter() - t0
        if rc != 0:
            print(f"fake_train.py: {prog} exited {rc}", file=sys.stderr)
            return 1
        saved = set()
        with open(exp, "rb") as f:
            while True:
                b = f.read(4)
                if not b:
                    break
                name = f.read(struct.unpack("<I", b)[0]).decode()
                it, nb = struct.unpack("<qQ", f.read(16))
                data = f.read(nb)
                if it == a.check_iter:
                    saved.add(hashlib.sha1(data).hexdigest())
    res = {"model": "fake " + os.path.basename(prog), "torch": None, "iterations": a.iterations, "batch": a.batch,
           "ms_per_iteration": 1000 * secs / max(1, a.iterations), "check_iter": a.check_iter, "checks_ok": True,
           "v8_api_disabled": os.environ.get("TORCH_CUDNN_V8_API_DISABLED", "")}
    if a.spool_dir:
        res["conv_shapes"] = [[2, 3, 8, 8], [2, 4, 4, 4]]  # capture_legacy_net's two convolutions
        res["saved_hashes"] = sorted(saved)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f)
    print(f"  {res['model']}, {a.iterations} iterations: {res['ms_per_iteration']:.2f} ms/iteration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
