#!/usr/bin/python3
"""Trains a small GPT-style decoder (or a ViT on Fashion-MNIST) under cdma.torch.capture.

    PYTHONPATH=build/python /usr/bin/python3 python/examples/transformer_traces.py --act relu2 \\
        --dtype bf16 --steps 300 --capture-spread 3 --samples 1 --deflate 9 -o data/gpt-relu2-bf16.h5

Issue 33 item 1: what autograd keeps for backward in a transformer, by MLP activation.

GPT (--model gpt): pre-LN decoder blocks (x + attn(ln1(x)); x + mlp(ln2(x))), causal multi-head
attention written out (q k^T, masked softmax, p v: the scores and probabilities are saved tensors),
learned position embeddings, final LayerNorm, untied byte-level head (vocabulary 256). The MLP is
fc1 -> act -> fc2 with hidden 4 d_model; --act picks the activation: relu2 (squared ReLU, Primer),
relu, gelu (erf), swiglu (fc1 gives gate and up, silu(gate) * up, hidden 8/3 d_model rounded up to a
multiple of 8 so that the MLP has about the same parameters). The variants differ only there.
Data: byte-level tokens of a text corpus present on this machine (default: Debian's
/usr/share/common-licenses/* then /usr/share/doc/*/copyright, each list sorted by path, symlinked
duplicates dropped, files concatenated); the last 5% of the bytes are held out for a validation
loss. Batches are random windows of --seq + 1 bytes drawn with a seeded generator.

ViT (--model vit): Fashion-MNIST (Debian's dataset-fashion-mnist) 28x28 cut into 7x7 patches
(16 tokens + a class token), the same pre-LN blocks without the causal mask, class-token head;
--act as above.

Precision: --dtype bf16 runs forward and loss under torch.autocast("cpu", bfloat16) (the main case:
linear layers and matmuls compute and save bfloat16), --dtype fp32 without autocast. AdamW, seeded,
--threads CPU threads (default 1). Prints the loss every --log steps and a JSON summary line (final
loss, validation loss, seconds, parameters, trace size). docs/TORCH_CAPTURE.md, data/README.md.
"""

import argparse
import glob
import hashlib
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ACTS = ["relu2", "relu", "gelu", "swiglu"]
DEFAULT_CORPUS = ["/usr/share/common-licenses/*", "/usr/share/doc/*/copyright"]
FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530


# ----------------------------------------------------------------------------- model

class Activation(nn.Module):
    """The MLP's nonlinearity, a module of its own so that the trace names what it saves (`mlp.act`)."""

    def __init__(self, kind):
        super().__init__()
        if kind not in ACTS:
            raise ValueError(f"unknown activation {kind!r}: one of {', '.join(ACTS)}")
        self.kind = kind

    def forward(self, h):
        if self.kind == "relu2":
            r = F.relu(h)  # relu saves its result; r * r saves it again (one buffer)
            return r * r
        if self.kind == "relu":
            return F.relu(h)
        if self.kind == "gelu":
            return F.gelu(h)
        gate, up = h.chunk(2, dim=-1)
        return F.silu(gate) * up

    def extra_repr(self):
        return self.kind


def mlp_hidden(d_model, act):
    if act == "swiglu":
        return int(math.ceil(8 * d_model / 3 / 8) * 8)
    return 4 * d_model


class MLP(nn.Module):
    def __init__(self, d_model, act):
        super().__init__()
        hidden = mlp_hidden(d_model, act)
        self.fc1 = nn.Linear(d_model, 2 * hidden if act == "swiglu" else hidden)
        self.act = Activation(act)
        self.fc2 = nn.Linear(hidden, d_model)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    def __init__(self, d_model, heads, causal):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not a multiple of heads {heads}")
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        n, t, c = x.shape
        h, dh = self.heads, c // self.heads
        q, k, v = self.qkv(x).split(c, dim=-1)
        q, k, v = (z.view(n, t, h, dh).transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(dh))
        if self.causal:
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(mask, float("-inf"))
        p = scores.softmax(dim=-1)
        y = (p @ v).transpose(1, 2).reshape(n, t, c)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self, d_model, heads, act, causal):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, heads, causal)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, act)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab, seq, d_model, layers, heads, act):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(seq, d_model)
        self.blocks = nn.ModuleList(Block(d_model, heads, act, causal=True) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)
        self.apply(_init)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln_f(x))


class ViT(nn.Module):
    def __init__(self, patch, d_model, layers, heads, act, classes=10, side=28):
        super().__init__()
        if side % patch:
            raise ValueError(f"patch {patch} does not divide the image side {side}")
        self.patch = nn.Conv2d(1, d_model, patch, stride=patch)
        tokens = (side // patch) ** 2 + 1
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.pos = nn.Parameter(torch.zeros(1, tokens, d_model))
        self.blocks = nn.ModuleList(Block(d_model, heads, act, causal=False) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, classes)
        self.apply(_init)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln_f(x[:, 0]))


def _init(m):
    if isinstance(m, (nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


# ----------------------------------------------------------------------------- data

def corpus_files(patterns):
    """The corpus's files: each pattern's matches sorted by path, regular files only, a file reached
    twice (a symlinked /usr/share/doc/<pkg>) once."""
    files, seen = [], set()
    for pat in patterns:
        for p in sorted(glob.glob(pat)):
            real = os.path.realpath(p)
            if os.path.isfile(real) and real not in seen:
                seen.add(real)
                files.append(p)
    return files


def load_corpus(patterns, limit=None):
    files = corpus_files(patterns)
    if not files:
        raise SystemExit(f"no corpus file matches {' '.join(patterns)}")
    chunks, total = [], 0
    for p in files:
        with open(p, "rb") as f:
            b = f.read()
        chunks.append(b)
        total += len(b)
        if limit is not None and total >= limit:
            break
    data = b"".join(chunks)[:limit]
    info = {"files": len(chunks), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "patterns": patterns}
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).long(), info


def read_idx(path):
    import gzip
    import numpy as np
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
    return torch.from_numpy(arr.reshape(dims).copy())


class TextBatches:
    def __init__(self, tokens, seq, batch, seed, holdout=0.05):
        split = int(len(tokens) * (1 - holdout))
        self.train, self.val = tokens[:split], tokens[split:]
        if len(self.val) <= seq + 1:
            raise SystemExit(f"corpus too small: {len(tokens)} bytes for sequences of {seq}")
        self.seq, self.batch = seq, batch
        self.g = torch.Generator().manual_seed(seed)

    def _windows(self, data, starts):
        w = torch.stack([data[s:s + self.seq + 1] for s in starts.tolist()])
        return w[:, :-1].contiguous(), w[:, 1:].contiguous()

    def next(self):
        return self._windows(self.train, torch.randint(0, len(self.train) - self.seq - 1, (self.batch,),
                                                        generator=self.g))

    def validation(self, batches):
        g = torch.Generator().manual_seed(12345)
        return [self._windows(self.val, torch.randint(0, len(self.val) - self.seq - 1, (self.batch,), generator=g))
                for _ in range(batches)]


class ImageBatches:
    def __init__(self, data_dir, batch, seed):
        self.x = read_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz"))
        self.y = read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz")).long()
        self.xt = read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"))
        self.yt = read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz")).long()
        self.batch = batch
        self.order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(seed))
        self.i = 0

    @staticmethod
    def prepare(images):
        return images.float().div(255).sub(FMNIST_MEAN).div(FMNIST_STD).unsqueeze(1)

    def next(self):
        idx = self.order[(self.i * self.batch) % len(self.x):][: self.batch]
        self.i += 1
        return self.prepare(self.x[idx]), self.y[idx]

    def validation(self, batches):
        n = min(len(self.xt), batches * self.batch)
        return [(self.prepare(self.xt[s:s + self.batch]), self.yt[s:s + self.batch]) for s in range(0, n, self.batch)]


# ----------------------------------------------------------------------------- training

def spread(n, k):
    """k iterations spread from the first to the last of n (as cdma train --capture-spread)."""
    if k <= 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def build(a):
    """(model, batches, corpus info) for the parsed options, seeded."""
    torch.manual_seed(a.seed)
    if a.model == "gpt":
        tokens, info = load_corpus(a.corpus or DEFAULT_CORPUS, a.corpus_limit)
        model = GPT(256, a.seq, a.d_model, a.layers, a.heads, a.act)
        return model, TextBatches(tokens, a.seq, a.batch, a.seed), info
    model = ViT(a.patch, a.d_model, a.layers, a.heads, a.act)
    return model, ImageBatches(a.data, a.batch, a.seed), {"dataset": "fashion-mnist", "dir": a.data}


def loss_of(model, x, y, a):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
        out = model(x)
        if a.model == "gpt":
            # [N, V, T]: the loss's saved log-softmax keeps the batch first, so samples= cuts it.
            return F.cross_entropy(out.transpose(1, 2), y), out
        return F.cross_entropy(out, y), out


def train(a, capture=None, dump=None, log=print):
    """Trains as the options say; returns a dict of results. `capture`: a started cdma.torch
    Capture to step; `dump(model, step)`: a context manager around each forward and backward (tests)."""
    model, data, info = build(a)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1)
    warm = max(1, a.steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, a.steps) / a.steps)))
    if capture is not None:
        capture.attach(model)
    model.train()
    losses = []
    t0 = time.perf_counter()
    for i in range(a.steps):
        x, y = data.next()
        ctx = dump(model, i) if dump is not None else None
        if ctx is not None:
            ctx.__enter__()
        try:
            loss, _ = loss_of(model, x, y, a)
            loss.backward()
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if capture is not None:
            capture.step()
        losses.append(loss.item())
        if log and a.log and (i % a.log == 0 or i == a.steps - 1):
            log(f"step {i}: loss {losses[-1]:.4f} ({time.perf_counter() - t0:.1f} s)")
    train_s = time.perf_counter() - t0
    model.eval()
    val, correct, seen = [], 0, 0
    with torch.no_grad():
        for x, y in data.validation(a.val_batches):
            loss, out = loss_of(model, x, y, a)
            val.append(loss.item())
            if a.model == "vit":
                correct += int((out.argmax(1) == y).sum())
                seen += len(y)
    tail = losses[-min(20, len(losses)):]
    res = {"model": a.model, "act": a.act, "dtype": a.dtype, "steps": a.steps, "batch": a.batch,
           "parameters": sum(p.numel() for p in model.parameters()),
           "final_loss": round(losses[-1], 4), "mean_loss_last_20": round(sum(tail) / len(tail), 4),
           "val_loss": round(sum(val) / len(val), 4) if val else None, "train_seconds": round(train_s, 1),
           "seconds_per_step": round(train_s / a.steps, 3), "corpus": info, "losses": losses}
    if a.model == "gpt":
        res["val_bits_per_byte"] = round(res["val_loss"] / math.log(2), 4) if val else None
    if seen:
        res["val_accuracy"] = round(correct / seen, 4)
    return res


EXTRA_ATTRS = ["capture_counters", "capture_options", "iterations", "batch_size", "capture_batch", "capture_warnings",
               "capture_interrupted", "capture_partial_forwards", "capture_error", "dataset", "seed", "activation",
               "precision", "d_model", "layers", "heads", "sequence", "steps"]


def cut_folded(src, dst, seq, heads, deflate=9, overwrite=False, iterations=None):
    """Writes a copy of the cdma.torch trace `src` to `dst` in which the tensors that cdma.torch kept whole
    because the batch is folded into their dimension 0 keep only the sampled entries, as `samples=` cut
    the others: a linear layer's input saved as [N*T, C] (op linear, rank 2, N*T rows) keeps its first
    K*T rows, an attention operand saved as [N*H, ...] (layer *.attn, rank 4, N*H rows: torch's bmm folds
    the heads) its first K*H, where N is the trace's batch_size and K its capture_batch. The rows are
    sample-major (a contiguous [N, T, C] viewed as [N*T, C]), so these are exactly the first K samples.
    Everything else (tensors, /timeline, root attributes) is copied as it is, of the captured iterations
    in `iterations` (default all); `cut_folded` records what was cut. Returns the number of tensors cut."""
    import cdma
    import pandas as pd
    from cdma import _native
    t = cdma.open(src)
    batch, keep = t.attribute("batch_size"), t.attribute("capture_batch")
    if batch is None or keep is None:
        raise SystemExit(f"{src}: no batch_size / capture_batch attribute (captured without --samples?)")
    batch, keep = int(batch), int(keep)
    attrs = {k: v for k, v in t.attrs.items()
             if k in ("producer", "source", "created", "model", "device", "framework", "command") and v is not None}
    w = _native.TraceWriter(str(dst), attrs, overwrite=overwrite, deflate_level=deflate, flush_every=64)
    df, cut = t.tensors(), 0
    if iterations is not None:
        missing = sorted(set(iterations) - set(int(i) for i in df.iteration))
        if missing:
            raise SystemExit(f"{src}: no tensors of iteration(s) {missing}")
        df = df[df.iteration.isin(iterations)]
    for k in df.index:
        a, dims = t.read(int(k)), [int(d) for d in df.dims[k]]
        rows = None
        if df.op[k] == "linear" and len(dims) == 2 and dims[0] == batch * seq:
            rows = keep * seq
        elif df.layer[k].endswith(".attn") and len(dims) == 4 and dims[0] == batch * heads:
            rows = keep * heads
        if rows is not None and rows < dims[0]:
            a, dims, cut = a[:rows].copy(), [rows, *dims[1:]], cut + 1
        meta = {"iteration": int(df.iteration[k]), "layer": df.layer[k], "layer_index": int(df.layer_index[k]),
                "op": df.op[k], "role": df.role[k], "phase": df.phase[k], "layout": df.layout[k],
                "dtype": df.dtype[k], "dims": dims, "offload": bool(df.offloaded[k])}
        if not pd.isna(df.call[k]):
            meta["call"] = int(df.call[k])
        w.append_tensor(meta, a)
    for row in t.timeline().to_dict("records"):
        if iterations is not None and int(row["iteration"]) not in iterations:
            continue
        w.append_timeline({k: (int(v) if k not in ("phase", "op", "layer") else v) for k, v in row.items()})
    for name in EXTRA_ATTRS:
        v = t.attribute(name)
        if v is not None:
            w.set_attribute(name, v)
    w.set_attribute("cut_folded", json.dumps({
        "from": os.path.basename(str(src)), "tensors_cut": cut, "batch_size": batch, "kept_samples": keep,
        "iterations": sorted(set(int(i) for i in df.iteration)),
        "rule": "linear inputs [N*T, C] -> first K*T rows; attention operands [N*H, ...] -> first K*H; "
                "by python/examples/transformer_traces.py cut_folded()"}))
    if t.attrs.get("dropped_tensors") is not None:
        w.set_dropped_tensors(int(t.attrs["dropped_tensors"]))
    w.close()
    return cut


def mlp_table(paths):
    """Markdown rows, per trace and captured iteration, of the MLP tensors of every block: the input
    of fc2 (the activation's output, what fc2 keeps for backward) and what the activation module keeps
    itself (ReLU^2: the ReLU output; GELU: its input, the pre-activation; SwiGLU: gate, silu(gate) and
    up; ReLU keeps its output, which is fc2's input, so nothing of its own): elements, density (nonzero
    bit patterns, as ZVC counts them: -0.0 is nonzero), exact zeros (+0.0) and negative zeros (-0.0).
    Over all blocks (element-weighted), then block by block."""
    import cdma
    import numpy as np
    print("| trace | iteration | tensor | blocks | elements | density | +0.0 | -0.0 | per block density |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        t = cdma.open(path)
        df = t.tensors()
        for it in sorted(set(df.iteration)):
            rows = df[(df.iteration == it) & df.layer.str.match(r"^blocks\.\d+\.mlp\.(act|fc2)$")]
            groups = {}
            for k in rows.index:
                a = t.read(int(k))
                kind = df.layer[k].rsplit(".", 1)[1]
                if kind == "act":
                    # the activation's own tensors, in the order it saves them
                    n = sum(1 for j in rows.index if j < k and df.layer[j] == df.layer[k])
                    kind = f"act[{n}]"
                bits = a.reshape(-1).view({4: np.uint32, 2: np.uint16, 1: np.uint8}[a.dtype.itemsize])
                neg = 0x80000000 if a.dtype.itemsize == 4 else 0x8000
                g = groups.setdefault(kind, [0, 0, 0, 0, []])
                nz, z, nzero = int((bits != 0).sum()), int((bits == 0).sum()), int((bits == neg).sum())
                g[0] += bits.size
                g[1] += nz
                g[2] += z
                g[3] += nzero
                g[4].append(f"{nz / bits.size:.3f}")
            for kind in sorted(groups, key=lambda s: (s != "fc2", s)):
                e, nz, z, nzero, per = groups[kind]
                name = "fc2 input" if kind == "fc2" else kind
                print(f"| {os.path.basename(path)} | {it} | {name} | {len(per)} | {e} | {nz / e:.4f} | {z / e:.4f} | "
                      f"{nzero / e:.4f} | {' '.join(per)} |")


def parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["gpt", "vit"], default="gpt")
    ap.add_argument("--act", choices=ACTS, default="relu2")
    ap.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64, help="GPT sequence length (bytes)")
    ap.add_argument("--patch", type=int, default=7, help="ViT patch side")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--corpus", nargs="+", default=None, help="glob patterns of the text corpus, in order")
    ap.add_argument("--corpus-limit", type=int, default=None, help="use only the first N bytes of the corpus")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--val-batches", type=int, default=8)
    ap.add_argument("--log", type=int, default=25)
    ap.add_argument("-o", "--output", default="transformer.h5")
    ap.add_argument("-f", "--force", action="store_true", help="replace the output")
    ap.add_argument("--no-capture", action="store_true")
    ap.add_argument("--capture-spread", type=int, default=3, help="capture K steps spread over the run")
    ap.add_argument("--samples", type=int, default=1,
                    help="keep the first K sequences / images of each batch (0: the whole batch)")
    ap.add_argument("--deflate", type=int, default=9)
    ap.add_argument("--cut-to", default=None, help="also write a copy of the trace whose folded [N*T, C] / [N*H, ...] "
                    "tensors keep only the --samples entries of the batch (cut_folded)")
    ap.add_argument("--cut-iterations", default=None,
                    help="with --cut-to: keep only these captured iterations (comma-separated; 'last' = the last step)")
    ap.add_argument("--cut-from", default=None, metavar="TRACE",
                    help="train nothing: cut this earlier full trace to --cut-to (--seq, --heads as it was made)")
    ap.add_argument("--mlp-table", nargs="+", default=None, metavar="TRACE",
                    help="train nothing: print the MLP tensors' density, +0.0 and -0.0 fractions of these traces")
    ap.add_argument("--losses-json", default=None, help="also write the per-step losses and the summary here")
    return ap


def main(argv=None):
    a = parser().parse_args(argv)
    if a.mlp_table:
        mlp_table(a.mlp_table)
        return 0
    its = None if a.cut_iterations is None else \
        [a.steps - 1 if s.strip() == "last" else int(s) for s in a.cut_iterations.split(",")]
    if a.cut_from:
        if not a.cut_to:
            raise SystemExit("--cut-from needs --cut-to")
        n = cut_folded(a.cut_from, a.cut_to, a.seq if a.model == "gpt" else (28 // a.patch) ** 2 + 1, a.heads,
                       deflate=a.deflate, overwrite=a.force, iterations=its)
        print(json.dumps({"cut_tensors": n, "cut_trace": a.cut_to, "cut_trace_bytes": os.path.getsize(a.cut_to)}))
        return 0
    import cdma.torch  # after argparse: --help works without the native module

    torch.set_num_threads(a.threads)
    cap = None
    if not a.no_capture:
        command = " ".join(["transformer_traces.py", *(sys.argv[1:] if argv is None else argv)])
        cap = cdma.torch.capture(a.output, None, iterations=spread(a.steps, a.capture_spread), budget=None,
                                 samples=a.samples or None, deflate_level=a.deflate, overwrite=a.force,
                                 model_name=f"{a.model}-{a.act}", command=command,
                                 attributes={"dataset": "text-bytes" if a.model == "gpt" else "fashion-mnist",
                                             "seed": a.seed, "activation": a.act, "precision": a.dtype,
                                             "d_model": a.d_model, "layers": a.layers, "heads": a.heads,
                                             "sequence": a.seq if a.model == "gpt" else (28 // a.patch) ** 2 + 1,
                                             "steps": a.steps})
        cap.start()
    try:
        res = train(a, capture=cap, log=lambda s: print(s, flush=True))
    finally:
        if cap is not None:
            cap.close()
    res["framework"] = f"torch {torch.__version__}"
    res["trace"] = None if cap is None else a.output
    res["trace_bytes"] = None if cap is None else os.path.getsize(a.output)
    res["tensors"] = None if cap is None else cap.counters["recorded"]
    res["capture_counters"] = None if cap is None else cap.counters
    if cap is not None and a.cut_to:
        res["cut_tensors"] = cut_folded(a.output, a.cut_to, a.seq if a.model == "gpt" else (28 // a.patch) ** 2 + 1,
                                        a.heads, deflate=a.deflate, overwrite=a.force, iterations=its)
        res["cut_trace"], res["cut_trace_bytes"] = a.cut_to, os.path.getsize(a.cut_to)
    if a.losses_json:
        with open(a.losses_json, "w") as f:
            json.dump(res, f)
    res.pop("losses")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
