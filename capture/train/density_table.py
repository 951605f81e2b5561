#!/usr/bin/python3
"""Per-layer density (nonzero fraction) of a cdma trace, as a markdown table.

Usage: density_table.py TRACE.h5 [--all]
Columns: layer_index, layer, op, X shape, offloaded (the tensor's `offload` attribute, else the
format's default rule: forward-phase x), density at each captured iteration (first and last by
default, every captured iteration with --all). The total row is over the offloaded tensors. Reads the trace with h5py only (no cdma code), so it
doubles as an independent check of what cdma-train wrote. Needs /usr/bin/python3 with python3-h5py.
"""
import sys

import h5py
import numpy as np


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) >= 2 else 2
    path, show_all = argv[1], "--all" in argv[2:]
    with h5py.File(path, "r") as f:
        rows = {}  # (layer_index, layer, op) -> {iteration: (nonzeros, elements)}
        shapes, offloaded = {}, {}
        for name, ds in f["tensors"].items():
            a = ds.attrs
            key = (int(a["layer_index"]), str(a["layer"]), str(a["op"]))
            data = ds[()]
            nz, n = int(np.count_nonzero(data)), int(data.size)
            acc = rows.setdefault(key, {})
            p = acc.get(int(a["iteration"]), (0, 0))
            acc[int(a["iteration"])] = (p[0] + nz, p[1] + n)
            shapes[key] = "x".join(str(d) for d in ds.shape[1:])
            if "offload" in a:
                offloaded[key] = bool(a["offload"])
            else:
                text = lambda v: v.decode() if isinstance(v, bytes) else str(v)
                offloaded[key] = text(a["phase"]) == "forward" and text(a["role"]) == "x"
        iters = sorted({i for v in rows.values() for i in v})
        if not iters:
            print("no tensors")
            return 1
        cols = iters if show_all else sorted({iters[0], iters[-1]})
        print("| # | layer | op | X (per image) | offloaded | " + " | ".join(f"it {i}" for i in cols) + " |")
        print("|---|---|---|---|---|" + "---|" * len(cols))
        tot = {i: [0, 0] for i in cols}
        for key in sorted(rows):
            cells = []
            for i in cols:
                nz, n = rows[key].get(i, (0, 0))
                cells.append(f"{nz / n:.3f}" if n else "-")
                if offloaded[key]:
                    tot[i][0] += nz
                    tot[i][1] += n
            print(f"| {key[0]} | {key[1]} | {key[2]} | {shapes[key]} | {'yes' if offloaded[key] else 'no'} | " +
                  " | ".join(cells) + " |")
        print("| | **offloaded** | | | | " +
              " | ".join(f"**{tot[i][0] / tot[i][1]:.3f}**" if tot[i][1] else "-" for i in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
