"""An independent implementation of the selections `misabench kernel
--compare-dsa` times, in plain PyTorch, to check its recalls in the same run.

    misabench-cuda kernel --compare-dsa --dump DIR --out OUT ...
    python3 tools/reference/compare_torch.py --dump DIR --kernel-json OUT/kernel.json

For every trace misabench dumped (one per model, mode and context; q and k are
the FP8 values it used, dequantised exactly), this recomputes DSA, MISA (pooled
causal router), MISA† and HISA from DESIGN.md §1 in fp32 with torch, their
recall against torch's own DSA, and the time of torch's DSA; then it
prints them next to misabench's numbers. Written from the definitions, not from
misabench's kernels. misabench's FP8 tensor cores accumulate with ~14 mantissa
bits, so near-ties at the k-th score may fall differently: recalls agree to
about 1e-3, not exactly.
"""
import argparse
import glob
import json
import os

import torch
from safetensors import safe_open


def load(path):
    with safe_open(path, "pt", device="cpu") as f:
        meta = f.metadata()
        t = {k: f.get_tensor(k) for k in f.keys()}
    return meta, t


def relu_dots(q, k):
    # q [r, h, d], k [n, d] -> [r, h, n]
    return torch.relu(torch.einsum("rhd,nd->rhn", q, k))


def causal_mask(pos, n):
    return torch.arange(n, device=pos.device)[None, :] > pos[:, None]


def block_means(k, pos, B):
    """Full-block means [nb, d] and each row's causal own-block mean [r, d]."""
    n, d = k.shape
    nb = n // B
    full = k[: nb * B].reshape(nb, B, d).mean(1) if nb else k.new_zeros(0, d)
    csum = torch.cumsum(k.double(), 0)
    own_start = (pos // B) * B
    hi = csum[pos]
    lo = torch.where((own_start > 0)[:, None], csum[(own_start - 1).clamp(min=0)], torch.zeros_like(hi))
    own = ((hi - lo) / (pos - own_start + 1)[:, None]).float()
    return full, own


def topk_sets(scores, k):
    return torch.topk(scores, min(k, scores.shape[1]), dim=1).indices


def recall(ref, got, valid):
    # ref/got: [r, k] index tensors; valid: [r] number of meaningful entries
    out = []
    for i in range(ref.shape[0]):
        a = set(ref[i, : valid[i]].tolist())
        b = set(got[i, : valid[i]].tolist())
        out.append(len(a & b) / max(len(a), 1))
    return sum(out) / len(out)


def run(q, k, w, pos, topk, a, chunk=16):
    """Recall of each method against DSA (DESIGN.md §2), rows that see
    fewer than topk keys counted on their visible keys."""
    visible = (pos + 1).clamp(max=topk)
    sets = selections(q, k, w, pos, topk, a, chunk)
    return {m: recall(sets["dsa"], v, visible) for m, v in sets.items()}


def selections(q, k, w, pos, topk, a, chunk=16):
    """Each method's top-k index sets [rows, topk] (DESIGN.md §1); entries
    past a row's visible keys are arbitrary masked positions."""
    r, H, d = q.shape
    n = k.shape[0]
    full_b, own_b = block_means(k, pos, a.block)
    full_h, own_h = block_means(k, pos, a.hisa_block)
    sets = {"dsa": [], "misa": [], "misa†": [], "hisa": []}
    for s in range(0, r, chunk):
        e = min(r, s + chunk)
        qs, ws, ps = q[s:e], w[s:e], pos[s:e]
        rel = relu_dots(qs, k)  # [c, H, n]
        mask = causal_mask(ps, n)
        dsa = (ws[:, :, None] * rel).sum(1).masked_fill(mask, float("-inf"))
        sets["dsa"].append(topk_sets(dsa, topk))
        # MISA router: |w|·Σ_{b<own} ReLU(q·kbar_b) + ReLU(q·own)
        own_blk = ps // a.block
        rf = torch.relu(torch.einsum("chd,bd->chb", qs, full_b)) if full_b.shape[0] else None
        score = torch.relu(torch.einsum("chd,cd->ch", qs, own_b[s:e]))
        if rf is not None:
            bmask = torch.arange(full_b.shape[0], device=q.device)[None, None, :] < own_blk[:, None, None]
            score = score + (rf * bmask).sum(2)
        score = ws.abs() * score
        # ties to the lower head: stable sort on descending score
        heads = torch.sort(torch.argsort(-score, dim=1, stable=True)[:, : a.heads], dim=1).values
        hmask = torch.zeros_like(ws, dtype=torch.bool).scatter_(1, heads, True)
        misa = ((ws * hmask)[:, :, None] * rel).sum(1).masked_fill(mask, float("-inf"))
        sets["misa"].append(topk_sets(misa, topk))
        cand = topk_sets(misa, a.stage1)
        cmask = torch.ones_like(dsa, dtype=torch.bool).scatter_(1, cand, False)
        sets["misa†"].append(topk_sets(dsa.masked_fill(cmask, float("-inf")), topk))
        # HISA: all-head block scores, first and own block forced
        own_h_blk = ps // a.hisa_block
        bs = torch.einsum("ch,chb->cb", ws, torch.relu(torch.einsum("chd,bd->chb", qs, full_h))) if full_h.shape[0] else None
        nbv = int(own_h_blk.max()) + 1
        blocks = torch.full((e - s, nbv), float("-inf"), device=q.device)
        if bs is not None:
            m = min(nbv, bs.shape[1])
            blocks[:, :m] = bs[:, :m]
        own_score = torch.einsum("ch,ch->c", ws, torch.relu(torch.einsum("chd,cd->ch", qs, own_h[s:e])))
        blocks.scatter_(1, own_h_blk[:, None], own_score[:, None])
        idx = torch.arange(nbv, device=q.device)[None, :]
        blocks = blocks.masked_fill(idx > own_h_blk[:, None], float("-inf"))
        blocks[:, 0] = float("inf")
        blocks.scatter_(1, own_h_blk[:, None], float("inf"))
        chosen = topk_sets(blocks, a.hisa_blocks)
        chosen_ok = torch.gather(blocks, 1, chosen) > float("-inf")
        bm = torch.zeros_like(blocks, dtype=torch.bool)
        bm.scatter_(1, chosen, chosen_ok)
        tok_blk = (torch.arange(n, device=q.device) // a.hisa_block).clamp(max=nbv - 1)
        tmask = ~bm[:, tok_blk]
        sets["hisa"].append(topk_sets(dsa.masked_fill(tmask, float("-inf")), topk))
    return {m: torch.cat(v) for m, v in sets.items()}


def time_ms(fn, reps):
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        ts.append(s.elapsed_time(e))
    return sorted(ts)[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True)
    ap.add_argument("--kernel-json")
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--block", type=int, default=1024)
    ap.add_argument("--stage1", type=int, default=8192)
    ap.add_argument("--hisa-block", type=int, default=128)
    ap.add_argument("--hisa-blocks", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    ours = {}
    if a.kernel_json:
        for c in json.load(open(a.kernel_json))["cases"]:
            name = c["method"].split("(")[0]
            if c["method"].endswith("+fused"):  # misa(h=…)+fused: the same sets as misa
                name = name.removesuffix("+fused") + "+fused"
            ours[(c["model"], c["mode"], c["ctx"], name)] = c
    dev = "cuda"
    worst = 0.0
    print(f"{'model':14} {'mode':7} {'ctx':>7} {'method':10} {'torch recall':>12} {'misabench':>10} {'diff':>8}  torch DSA ms")
    for path in sorted(glob.glob(os.path.join(a.dump, "*.safetensors"))):
        meta, t = load(path)
        q, k, w = t["layers.0.q"].to(dev).float(), t["layers.0.k"].to(dev).float(), t["layers.0.w"].to(dev).float()
        pos = t["q_pos"].to(dev)
        topk = int(meta["topk"])
        rec = run(q, k, w, pos, topk, a)

        def dsa_only():
            for s in range(0, q.shape[0], 16):
                rel = relu_dots(q[s : s + 16], k)
                sc = (w[s : s + 16, :, None] * rel).sum(1).masked_fill(causal_mask(pos[s : s + 16], k.shape[0]), float("-inf"))
                topk_sets(sc, topk)

        t_dsa = time_ms(dsa_only, a.reps)
        model, mode, ctx = meta["model"], meta.get("mode", "?"), int(meta["n_ctx"])
        for m in ("dsa", "misa", "misa†", "hisa", "dsa+fused", "misa+fused"):
            c = ours.get((model, mode, ctx, m))
            if c is None and m.endswith("+fused"):
                continue  # a run without the fused rows
            want = rec[m.removesuffix("+fused")]
            mine = c["recall"] if c else float("nan")
            d = abs(mine - want) if c else float("nan")
            if c:
                worst = max(worst, d)
            print(f"{model:14} {mode:7} {ctx:7d} {m:10} {want:12.4f} {mine:10.4f} {d:8.4f}  {t_dsa:.2f}" if m == "dsa" else
                  f"{model:14} {mode:7} {ctx:7d} {m:10} {want:12.4f} {mine:10.4f} {d:8.4f}")
    print(f"largest recall difference: {worst:.4f}")


if __name__ == "__main__":
    main()
