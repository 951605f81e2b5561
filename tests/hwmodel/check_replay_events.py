#!/usr/bin/env python3
"""Independent check of `cdma replay --events` output (schema cdma-replay-events v1).

Reads the event trace and verifies, without the model's code: one op at a time per stream; no
layer step starts before every op of the previous step ended (vDNN's per-layer synchronisation);
every offloaded tensor goes out once and comes back once, before the backward of every layer that
reads it; plain-DMA transfers take exactly ceil(bytes / bandwidth) + latency; the oracle is the sum
of compute times; total_ps is the last event's end. Exit 0 when all hold, 1 with a message if not.
Usage: check_replay_events.py EVENTS.json
"""
import json
import math
import sys
from collections import defaultdict


def fail(msg):
    print("check_replay_events: " + msg, file=sys.stderr)
    sys.exit(1)


def check(rep):
    name = rep["config"]
    if rep.get("schema") != "cdma-replay-events" or rep.get("schema_version") != 1:
        fail(f"{name}: wrong schema")
    layers, events = rep["layers"], rep["events"]
    n = len(layers)
    # One op at a time per stream.
    for stream in ("compute", "memory"):
        end = 0
        for e in sorted((e for e in events if e["stream"] == stream), key=lambda e: e["start_ps"]):
            if e["start_ps"] < end:
                fail(f"{name}: overlapping ops on the {stream} stream at {e['start_ps']}")
            if e["end_ps"] < e["start_ps"]:
                fail(f"{name}: negative duration")
            end = e["end_ps"]
    if rep["total_ps"] != max((e["end_ps"] for e in events), default=0):
        fail(f"{name}: total_ps is not the last event's end")
    # Steps: forward 0..n-1 then backward n-1..0; an op belongs to the step of its layer and phase.
    def step(e):
        backward = e["kind"] in ("backward", "fetch", "prefetch", "decompress")
        return n + (n - 1 - e["layer"]) if backward else e["layer"]
    by_step = defaultdict(list)
    for e in events:
        by_step[step(e)].append(e)
    prev_end = 0
    for s in range(2 * n):
        ops = by_step.get(s, [])
        for e in ops:
            if e["start_ps"] < prev_end:
                fail(f"{name}: step {s} starts before the previous step ended")
        if ops:
            prev_end = max(e["end_ps"] for e in ops)
    if name == "oracle":
        if rep["total_ps"] != sum(l["fwd_ps"] + l["bwd_ps"] for l in layers):
            fail("oracle: total is not the sum of compute times")
        if any(e["stream"] == "memory" for e in events):
            fail("oracle: has transfers")
        return
    out, back = defaultdict(int), {}
    for e in events:
        if e["kind"] == "offload":
            out[e["tensor"]] += 1
        elif e["kind"] in ("fetch", "prefetch"):
            if e["tensor"] in back:
                fail(f"{name}: tensor {e['tensor']} fetched twice")
            back[e["tensor"]] = e["end_ps"]
    if any(c != 1 for c in out.values()) or set(out) != set(back):
        fail(f"{name}: tensors offloaded {dict(out)} and brought back {sorted(back)} differ")
    for e in events:
        if e["kind"] == "backward":
            t = layers[e["layer"]]["x_tensor"]
            if t in back and back[t] > e["start_ps"]:
                fail(f"{name}: backward of layer {e['layer']} starts before its input is back")
    if name == "vDNN":
        bw, lat = rep["link_bytes_per_s"], rep["latency_ps"]
        for e in events:
            if e["stream"] == "memory":
                want = math.ceil(e["bytes"] * 1e12 / bw) + lat
                if abs((e["end_ps"] - e["start_ps"]) - want) > 1:
                    fail(f"vDNN: transfer of {e['bytes']} B took {e['end_ps'] - e['start_ps']} ps, expected {want}")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    reps = doc.get("replays", [])
    if not reps:
        fail("no replays in the file")
    for rep in reps:
        check(rep)
    print(f"check_replay_events: {len(reps)} replays OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
