"""The per-task and needle views on dumped traces, end to end.

Builds the tiny random DeepSeek-V3.2 (or GLM-5) model of check_reference.py,
dumps several sequences with DumpHook — each labelled with a data-set name, and
some with a needle span, question rows and a depth — converts each with
`misabench trace convert`, then runs

    misabench recall --trace DIR --by dataset --format json
    misabench niah   --trace DIR --format json

and checks what the issues ask of those views on real dumps: every data-set
label comes back as its own group with the right number of traces, and every
needle trace becomes a cell at its context length and depth, with the cell
count and the question rows as dumped. It checks plumbing, not quality: the
model is random, so recalls and retention are whatever they are.

    python3 tools/dump/check_views.py --misabench ./bin/misabench-cuda [--model glm-5]

Exit status: 0 all checks passed, 1 a check failed, 2 bad usage.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_reference import MODELS, build  # noqa: E402
from misabench_dump import DumpHook  # noqa: E402

# (data set, sequence length) pairs; three tasks, uneven counts.
SEQS = [("qasper", 1800), ("qasper", 2400), ("hotpotqa", 2000), ("dureader", 1600), ("dureader", 2200),
        ("dureader", 3000)]
# (context, needle start, needle length, depth percent) for the needle view.
NEEDLES = [(2048, 500, 24, 25), (3072, 1500, 24, 50)]


def sh(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    print(f"  $ {' '.join(cmd)}  -> exit {p.returncode}")
    if p.returncode != 0:
        print("    | " + (p.stderr or p.stdout).strip().replace("\n", "\n    | "))
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--misabench", default="./bin/misabench-cuda")
    ap.add_argument("--model", default="deepseek-v3.2", choices=sorted(MODELS))
    ap.add_argument("--workdir")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    import transformers as tf
    # build() reads these from check_reference's own arguments.
    a.num_layers, a.topk = 2, 256
    work = a.workdir or tempfile.mkdtemp(prefix="misabench-views-")
    ckpt, acts, traces = (os.path.join(work, d) for d in ("ckpt", "acts", "traces"))
    for d in (acts, os.path.join(traces, "tasks"), os.path.join(traces, "niah")):
        os.makedirs(d, exist_ok=True)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cls, model = build(tf, MODELS[a.model], a)
    model.save_pretrained(ckpt, max_shard_size="4MB")
    model.to(dev).eval()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(a.seed + 7)

    def dump(name, n, **meta):
        hook = DumpHook(model)
        ids = torch.randint(0, vocab, (1, n), generator=g)
        with torch.inference_mode():
            model(input_ids=ids.to(dev), use_cache=False)
        path = os.path.join(acts, name + ".safetensors")
        hook.save(path, a.model, sample_id=name, **meta)
        hook.remove()
        return path

    fails = []
    for i, (ds, n) in enumerate(SEQS):
        act = dump(f"{ds}-{i}", n, dataset=ds)
        if sh([a.misabench, "trace", "convert", "--checkpoint", ckpt, "--activations", act,
               "--out", os.path.join(traces, "tasks", f"{ds}-{i}.safetensors")]).returncode != 0:
            fails.append(f"convert {ds}-{i}")
    for i, (n, s, ln, depth) in enumerate(NEEDLES):
        q0 = n - 64
        act = dump(f"needle-{i}", n, dataset="niah", needle=[[s, s + ln]], question=[q0, n], depth_percent=depth)
        if sh([a.misabench, "trace", "convert", "--checkpoint", ckpt, "--activations", act,
               "--out", os.path.join(traces, "niah", f"needle-{i}.safetensors")]).returncode != 0:
            fails.append(f"convert needle-{i}")

    p = sh([a.misabench, "recall", "--trace", os.path.join(traces, "tasks"), "--by", "dataset", "--format", "json",
            "--out", os.path.join(work, "recall")])
    if p.returncode != 0:
        fails.append("recall --by dataset")
    else:
        res = json.loads(p.stdout)
        # Each group's rows: every query row of its traces, once per layer.
        want = {}
        for ds, n in SEQS:
            want[ds] = want.get(ds, 0) + n * a.num_layers
        got = {}
        for g in res.get("groups") or []:
            if g.get("layer") == -1:
                got.setdefault(g["method"], {})[g["group"]] = g["rows"]
        for m, rows in sorted(got.items()):
            print(f"  recall --by dataset, {m}: rows per group {rows}")
            if rows != want:
                fails.append(f"groups of {m}: {rows}, want {want}")
        if not got:
            fails.append("recall --by dataset gave no groups")

    p = sh([a.misabench, "niah", "--trace", os.path.join(traces, "niah"), "--format", "json",
            "--out", os.path.join(work, "niah")])
    if p.returncode != 0:
        fails.append("niah --trace")
    else:
        res = json.loads(p.stdout)
        for grid in res["grids"]:
            cells = [c for row in grid["cells"] for c in row if c.get("n", 0) > 0]
            got = sorted((c["ctx"], round(c["depth"] * 100)) for c in cells)
            want = sorted((n, d) for n, _, _, d in NEEDLES)
            print(f"  niah {grid['method']}: cells {got} scores {[round(c['score'], 4) for c in cells]} rows {[c['n'] for c in cells]}")
            if got != want or any(c["n"] != 64 for c in cells):
                fails.append(f"niah cells of {grid['method']}: {got}, want {want}, 64 rows each")
    print("result:", "all checks passed" if not fails else "FAILED: " + "; ".join(fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
