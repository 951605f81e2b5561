"""The hardware model (``cdma replay``) in-process: hwmodel::run_study, its JSON and its tables."""

import json as _json
import os

from . import _native
from ._frame import frame
from .errors import path_arg
from .analysis import Analysis


class Replay:
    """The result of ``cdma.replay``: the cdma-replay v1 document and its tables as DataFrames.

    ``totals``: one row per network x configuration (oracle, vDNN, each engine): time_s,
    forward_s, backward_s, stall_s, offloaded_bytes, link_bytes, overhead_vs_oracle,
    speedup_vs_vdnn, with the run's setup (gpu, link, policy, ...) and its unmeasured layers.
    ``layers``: one row per network x layer x offloading configuration. ``summary``: one row per
    network x engine (vDNN overhead, the engine's speedup over vDNN). ``sweep``: one row per network
    x sweep value x configuration (empty without a sweep). ``json``: the document ``cdma replay
    --json`` writes, as Python objects; every number in the tables is taken from it."""

    def __init__(self, res):
        self.json = _json.loads(res["json"])
        self.totals = frame(res["totals"])
        self.layers = frame(res["layers"])
        self.summary = frame(res["summary"])
        self.sweep = frame(res["sweep"])
        self.events = _json.loads(res["events"]) if res["events"] is not None else None

    def __repr__(self):
        nets = ", ".join(r["network"] for r in self.json["runs"])
        return f"<cdma.Replay of {nets}>"


def _strs(v):
    if v is None:
        return []
    if isinstance(v, (str, os.PathLike)):
        return [path_arg(v)]
    return [path_arg(x) for x in v]


def replay(traces=None, networks=None, *, batch=256, precision="fp32", gpu="titan-xp", link="pcie3", presets=None,
           link_gbps=None, link_eff=None, latency_us=None, compute_eff=None, dram_eff=None, peak_tflops=None,
           dram_gbps=None, policy="vdnn-all",
           engines=None, read_gbps=0, comp_gbps=0, compute="auto", compute_scale=1.0, bwd_factor=2.0,
           conv_kernel=3, trace_batch=0, ratio=None, density=None, ratios=None, trace_index=0, fill="none",
           sweep=None, sweep_values=None, events=False):
    """Replays training iterations with no offload, vDNN offload and cDMA engines; returns a Replay.

    ``traces``: trace files (their timelines, tensor shapes and, without a ratio option, their own
    measured ratios); ``networks``: zoo names ("vgg16", "paper", "all"). The keywords are the
    options of ``cdma replay`` (``--link-gbps`` is ``link_gbps``, ...). ``ratios`` is a file
    (``cdma analyze --json`` output or a trace) or a cdma.Analysis (its trace ``trace_index``).
    At most one of ratio, density, ratios; a zoo network needs one (or a ratio/density sweep).
    ``events=True`` keeps the event-by-event replays (``.events``, the document ``--events``
    writes). Bad requests raise cdma.UsageError with the CLI's message."""
    req = dict(traces=_strs(traces), networks=_strs(networks), batch=batch, precision=precision, gpu=gpu,
               link=link, presets=path_arg(presets, "presets") if presets is not None else None, link_gbps=link_gbps,
               link_eff=link_eff, latency_us=latency_us, compute_eff=compute_eff, dram_eff=dram_eff,
               peak_tflops=peak_tflops, dram_gbps=dram_gbps, policy=policy,
               engines=_strs(engines), read_gbps=read_gbps, comp_gbps=comp_gbps, compute=compute,
               compute_scale=compute_scale, bwd_factor=bwd_factor, conv_kernel=conv_kernel,
               trace_batch=trace_batch, ratio=ratio, density=density, ratios_trace_index=trace_index, fill=fill,
               sweep=sweep or "", sweep_values=list(sweep_values) if sweep_values is not None else None,
               events=bool(events))
    if isinstance(ratios, Analysis):
        req["ratios_analysis"] = ratios._a
        req["ratios_label"] = "analysis of " + ", ".join(ratios.paths)
    elif ratios is not None:
        req["ratios"] = path_arg(ratios, "ratios")
    return Replay(_native.replay(req))


def zoo():
    """Names of the built-in zoo networks."""
    return _native.zoo_networks()
