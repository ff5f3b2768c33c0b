"""An independent computation of indexer-level needle retention (DESIGN.md §2),
to check `misabench niah --trace DIR` cell by cell on the same traces.

    misabench trace gen --out DIR/c64k-d50.safetensors --ctx 65536 --needle-depth 0.5 \
        --needle-focus 4 --needle-scale 24 --queries 64 --placement tail   (one per cell)
    misabench-cuda niah --trace DIR --device gpu --out OUT
    python3 tools/reference/niah_torch.py --trace DIR --niah-json OUT/niah.json

For every trace and layer it selects DSA, MISA (pooled causal router), MISA† and
HISA with the plain-PyTorch selections of compare_torch.py (written from
DESIGN.md §1, not from misabench's kernels), scores the question rows' needle
retention (the share of the needle's tokens in the selected set, averaged over
the rows whose position is inside the `question` span), takes the minimum over
layers, and prints each cell next to misabench's. Near-ties at the k-th score
may fall differently in fp32 on either side, so cells can differ by a few
tokens' worth (1/(needle length · rows)); the tolerance is --tol.
Exit status: 0 all cells within --tol, 1 otherwise, 2 bad usage.
"""
import argparse
import glob
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_torch import load, selections  # noqa: E402

METHODS = {"dsa": "dsa", "misa": "misa", "misa†": "misa†", "hisa": "hisa"}


def method_key(name):
    """misabench's method label (e.g. misa†(h=8,pooled,...)) -> our key."""
    base = name.split("(")[0]
    return METHODS.get(base)


def retention(sets, needle, n):
    """Mean over rows of |set ∩ needle| / |needle| (needle: list of [s, e))."""
    mask = torch.zeros(n + 1, dtype=torch.bool, device=sets.device)
    for s, e in needle:
        mask[s:e] = True
    total = int(mask.sum())
    if total == 0:
        return 0.0
    idx = sets.clamp(min=0, max=n)
    hit = mask[idx]
    # Each row's set is distinct indices; count needle tokens it holds.
    return float((hit.sum(1).double() / total).mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trace", required=True, help="directory of needle traces (trace v1, F32/BF16/F16 q and k)")
    ap.add_argument("--niah-json", required=True, help="misabench niah --trace DIR's niah.json")
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--block", type=int, default=1024)
    ap.add_argument("--stage1", type=int, default=8192)
    ap.add_argument("--hisa-block", type=int, default=128)
    ap.add_argument("--hisa-blocks", type=int, default=64)
    ap.add_argument("--tol", type=float, default=0.02)
    a = ap.parse_args()
    try:
        rep = json.load(open(a.niah_json))
    except (OSError, ValueError) as e:
        print(f"niah_torch: {a.niah_json}: {e}", file=sys.stderr)
        return 2
    ours = {}
    for g in rep["grids"]:
        m = method_key(g["method"])
        if m is None:
            continue
        for row in g["cells"]:
            for c in row:
                if c.get("n", 0) > 0:
                    ours[(m, int(c["ctx"]), round(float(c["depth"]), 6))] = c
    paths = sorted(glob.glob(os.path.join(a.trace, "*.safetensors")))
    if not paths:
        print(f"niah_torch: no traces in {a.trace}", file=sys.stderr)
        return 2
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    worst, cells, bad = 0.0, 0, 0
    print(f"{'ctx':>7} {'depth':>6} {'method':6} {'torch':>8} {'misabench':>10} {'diff':>8}  per layer (torch)")
    for path in paths:
        meta, t = load(path)
        needle = json.loads(meta["needle"])
        qs, qe = json.loads(meta["question"])
        n, topk = int(meta["n_ctx"]), int(meta["topk"])
        depth = round(float(meta["depth_percent"]) / 100, 6)
        layers = [int(x) for x in meta["layers"].split(",")]
        pos = t["q_pos"].to(dev)
        rows = ((pos >= qs) & (pos < qe)).nonzero().flatten()
        per = {m: [] for m in METHODS}
        for L in layers:
            q = t[f"layers.{L}.q"].to(dev).float()[rows]
            k = t[f"layers.{L}.k"].to(dev).float()
            w = t[f"layers.{L}.w"].to(dev).float()[rows]
            sets = selections(q, k, w, pos[rows], topk, a)
            for m in METHODS:
                per[m].append(retention(sets[m], needle, n))
        for m in METHODS:
            score = min(per[m])
            c = ours.get((m, n, depth))
            mine = float(c["score"]) if c else float("nan")
            d = abs(mine - score) if c else float("nan")
            cells += 1
            if c is None or d > a.tol:
                bad += 1
            if c is not None:
                worst = max(worst, d)
            print(f"{n:7d} {depth:6.2f} {m:6} {score:8.4f} {mine:10.4f} {d:8.4f}  " + " ".join(f"{x:.4f}" for x in per[m]))
    print(f"{cells} cells, {bad} outside tolerance {a.tol} (or missing), largest difference {worst:.4f}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
