#!/usr/bin/python3
"""A notebook-style tour of the Python API on the sample traces (run it as a script, or paste the
cells into Jupyter). Writes two figures and prints the tables they come from.

    PYTHONPATH=build/python /usr/bin/python3 docs/python-example.py [OUT_DIR]      # default: out/

The tests run it (ctest python.example) and check its figures and numbers.
"""

# %% Setup: the sample traces of data/ (real CPU training runs of `cdma train`, see data/README.md)
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")  # no display needed; remove in a notebook
import matplotlib.pyplot as plt
import numpy as np

import cdma

root = pathlib.Path(__file__).resolve().parents[1]
out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "out"
out.mkdir(parents=True, exist_ok=True)
traces = [root / "data" / "vgg-fmnist.h5", root / "data" / "squeezenet-fmnist.h5"]

# %% One trace: its attributes and what it holds
t = cdma.open(traces[0])
print(t)
meta = t.tensors()
print(meta[["name", "iteration", "layer", "op", "dims", "offloaded"]].head(8).to_string())
x = t.read(meta.index[meta["layer"] == "conv2_1"][0])
print(f"conv2_1 input: {x.dtype} {x.shape}, density {np.count_nonzero(x) / x.size:.3f}")

# %% Analysis: layer x iteration rows of the offload set, ZVC only, both traces at once
a = cdma.analysis(traces, codecs=["zvc", "zlib-6"])
li = a.df("layer_iteration")
zvc = li[(li["codec"] == "zvc") & (li["layout"] == "stored") & (li["dtype"] == "stored")]
print(zvc[zvc["model"] == "vgg"].pivot_table(index="layer_index", columns="iteration", values="density").round(3).to_string())

# %% Figure 1: density over training, one line per layer (VGG)
fig, ax = plt.subplots(figsize=(7, 4))
vgg = zvc[zvc["model"] == "vgg"]
for layer, g in vgg.groupby("layer_index"):
    g = g.sort_values("iteration")
    ax.plot(g["iteration"], g["density"], marker="o", lw=1, label=g["layer"].iloc[0])
ax.set_xlabel("training iteration")
ax.set_ylabel("density (nonzero share)")
ax.set_title("VGG (Fashion-MNIST): density of offloaded activations over training")
ax.legend(fontsize=6, ncol=3)
fig.tight_layout()
fig.savefig(out / "density-over-training.png", dpi=120)

# %% Figure 2: ZVC ratio against density, with the format's curve 32 / (1 + 32 d) for fp32
tensors = a.df("tensor")
tz = tensors[(tensors["codec"] == "zvc") & (tensors["dtype"] == "stored")]
d = np.linspace(0.005, 1, 200)
fig, ax = plt.subplots(figsize=(6, 4))
for model, g in tz.groupby("model"):
    ax.scatter(g["density"], g["ratio"], s=8, label=f"{model} tensors")
ax.plot(d, 32 / (1 + 32 * d), "k--", lw=1, label="ZVC: 32 / (1 + 32 d)")
ax.set_xlabel("density")
ax.set_ylabel("ZVC compression ratio")
ax.set_yscale("log")
ax.legend()
fig.tight_layout()
fig.savefig(out / "ratio-vs-density.png", dpi=120)

# Every measured fp32 tensor sits on the curve up to the rounding of the mask to 32-element words.
fp32 = tz[tz["actual_dtype"] == "float32"]
model = 32 / (1 + 32 * fp32["density"])
print(f"{len(fp32)} tensors; largest |ratio - curve| / curve: {float(((fp32['ratio'] - model).abs() / model).max()):.4f}")

# %% Replay: VGG-16 (zoo, batch 256) with the ratios measured on the VGG trace, Titan Xp + PCIe 3
r = cdma.replay(networks="vgg16", ratios=a, fill="average")
print(r.totals[["network", "config", "time_s", "offloaded_bytes", "link_bytes", "speedup_vs_vdnn"]].to_string())
print(f"figures in {out}")
