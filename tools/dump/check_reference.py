"""Reference check: does misabench reproduce the transformers DSA indexer?

For DeepseekV32ForCausalLM and GlmMoeDsaForCausalLM this builds a tiny random
model from the config class (few layers and small widths, but the real
indexer shape: 64 / 32 heads, head dim 128, 64 RoPE dims, and the real RoPE
settings), saves it sharded with save_pretrained, reloads it with
from_pretrained (so `indexer.weights_proj` is kept in fp32 as for a real
checkpoint), runs one forward of random token ids with DumpHook, and then:

  misabench trace convert --checkpoint CKPT --activations ACT --out T --quant none|fp8
  misabench trace select  T --layers ... --format json

and compares misabench's DSA selection per query row with the model's own
indexer top-k:
  --quant none: rows whose sets differ; each such row is classed, from float64
                scores recomputed from the trace itself, as an exact tie, a
                near tie (every differing key within --tie-rtol of the k-th
                score, relative to the row's largest score) or a real miss.
                Real misses make the exit status 1.
  --quant fp8:  mean / minimum recall of the model's set.
Diagnostics, to tell a converter bug from a select bug from a transformers
surprise: float64 top-k of the trace's own q/k/w against misabench's select
and against the model; and a plain re-computation of the model's indexer from
its own pre-RoPE tensors (wq_b, k_norm and weights_proj outputs, the cos/sin it
was given) under four hypotheses (NeoX or interleaved RoPE, with or without
ReLU), which shows what the installed transformers computes. The report
(stdout, and --out) ends with the source of the installed indexer.

Needs torch, transformers and safetensors (the GPU host has them):
    python3 tools/dump/check_reference.py --misabench ./bin/misabench-cuda --out refcheck.txt
Exit status: 0 agreed, 1 a real difference or a failed misabench command,
2 bad usage or environment.
"""
import argparse
import inspect
import json
import os
import shlex
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from misabench_dump import DumpHook, find_indexers  # noqa: E402

TINY = dict(vocab_size=2048, hidden_size=512, intermediate_size=1024, moe_intermediate_size=128,
            num_attention_heads=8, num_key_value_heads=8, n_routed_experts=8, n_shared_experts=1,
            num_experts_per_tok=2, n_group=1, topk_group=1, first_k_dense_replace=1, kv_lora_rank=128,
            q_lora_rank=256, qk_rope_head_dim=64, qk_nope_head_dim=64, v_head_dim=64, index_head_dim=128)
MODELS = {
    "deepseek-v3.2": dict(cls="DeepseekV32ForCausalLM", cfg="DeepseekV32Config", index_n_heads=64,
                          max_position_embeddings=163840,
                          rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=40.0,
                                               original_max_position_embeddings=4096, beta_fast=32.0,
                                               beta_slow=1.0, mscale=1.0, mscale_all_dim=1.0)),
    "glm-5": dict(cls="GlmMoeDsaForCausalLM", cfg="GlmMoeDsaConfig", index_n_heads=32,
                  max_position_embeddings=202752, rope_parameters=dict(rope_type="default", rope_theta=1e6)),
}


class Report:
    def __init__(self):
        self.lines, self.appendix = [], []

    def __call__(self, *parts):
        s = " ".join(str(p) for p in parts)
        print(s, flush=True)
        self.lines.append(s)

    def write(self, path):
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            f.write("\n".join(self.lines + ["", "=" * 78, "installed transformers source", "=" * 78]
                              + self.appendix) + "\n")
        os.replace(tmp, path)


def build(tf, spec, a):
    cfg_cls, cls = getattr(tf, spec["cfg"]), getattr(tf, spec["cls"])
    kw = dict(TINY, num_hidden_layers=a.num_layers, index_n_heads=spec["index_n_heads"], index_topk=a.topk,
              max_position_embeddings=spec["max_position_embeddings"])
    try:
        cfg = cfg_cls(**kw, rope_parameters=dict(spec["rope_parameters"]))
    except TypeError:  # transformers 4.x: rope_theta + rope_scaling
        rp = dict(spec["rope_parameters"])
        theta, rtype = rp.pop("rope_theta"), rp.pop("rope_type")
        cfg = cfg_cls(**kw, rope_theta=theta, rope_scaling=None if rtype == "default" else dict(rp, type=rtype))
    torch.manual_seed(a.seed)
    model = cls(cfg)
    with torch.no_grad():  # a non-trivial LayerNorm affine, so the converter must apply it
        for _, idx, _ in find_indexers(model).values():
            idx.k_norm.weight.copy_(1 + 0.2 * torch.randn_like(idx.k_norm.weight))
            idx.k_norm.bias.copy_(0.2 * torch.randn_like(idx.k_norm.bias))
    return cls, model


class Diag:
    """The model's own pre-RoPE indexer tensors and the cos/sin it was given."""

    def __init__(self, model, layers):
        self.cap, self.h = {L: {} for L in layers}, []
        found = find_indexers(model)
        for L in layers:
            idx = found[L][1]
            for key, mod in (("q", idx.wq_b), ("k", idx.k_norm), ("w", idx.weights_proj)):
                self.h.append(mod.register_forward_hook(self._out(L, key)))
            self.h.append(idx.register_forward_pre_hook(self._pe(L), with_kwargs=True))

    def _out(self, L, key):
        def hook(mod, args, out):
            out = out[0] if isinstance(out, tuple) else out
            self.cap[L].setdefault(key, out.reshape(-1, out.shape[-1]).detach().clone())
        return hook

    def _pe(self, L):
        def hook(mod, args, kwargs):
            pe = args[2] if len(args) > 2 else kwargs.get("position_embeddings")
            if pe is not None and "cos" not in self.cap[L]:
                self.cap[L]["cos"] = pe[0].reshape(-1, pe[0].shape[-1]).detach().clone()
                self.cap[L]["sin"] = pe[1].reshape(-1, pe[1].shape[-1]).detach().clone()
        return hook

    def remove(self):
        for h in self.h:
            h.remove()


def rope(x, cos, sin, layout):
    """x [..., r]; cos/sin broadcastable, laid out as cat(freqs, freqs) (transformers)."""
    h = x.shape[-1] // 2
    if layout == "neox":
        return x * cos + torch.cat((-x[..., h:], x[..., :h]), -1) * sin
    c, s = cos[..., :h], sin[..., :h]
    xe, xo = x[..., 0::2], x[..., 1::2]
    return torch.cat((xe * c - xo * s, xo * c + xe * s), -1)


def score_chunks(q, k, w, rows, relu=True, chunk=64):
    """q [Q,H,D], k [N,D], w [Q,H] (all one dtype) -> (row slice, scores [R,N]) with
    -inf at the keys a row cannot see (key index > row index)."""
    n = k.shape[0]
    ar = torch.arange(n, device=k.device)
    for i in range(0, q.shape[0], chunk):
        d = torch.einsum("rhd,nd->rhn", q[i:i + chunk], k)
        d = torch.relu(d) if relu else d
        s = torch.einsum("rhn,rh->rn", d, w[i:i + chunk])
        yield slice(i, i + chunk), s.masked_fill(ar[None, :] > rows[i:i + chunk, None], float("-inf"))


def topk_mask(s, k, rows):
    n = s.shape[1]
    m = torch.zeros_like(s, dtype=torch.bool)
    m.scatter_(1, s.topk(min(k, n), dim=1).indices, True)
    return m & (torch.arange(n, device=s.device)[None, :] <= rows[:, None])


def idx_mask(idx, n):
    """[R, k] indices, -1 padded -> [R, n] bool."""
    m = torch.zeros(idx.shape[0], n + 1, dtype=torch.bool, device=idx.device)
    m.scatter_(1, torch.where(idx < 0, torch.full_like(idx, n), idx), True)
    return m[:, :n]


def compare(a, g, long_rows):
    """Rows that differ, and the recall of g by a: mean and min over long rows."""
    inter = (a & g).sum(1).double()
    rec = inter / g.sum(1).clamp(min=1).double()
    lr = rec[long_rows] if long_rows.any() else rec
    return int((a != g).any(1).sum()), float(lr.mean()), float(lr.min())


def py_model_variants(cap, rows, ref, H, D, rdim, k, long_rows):
    q = cap["q"].float().view(-1, H, D)[rows]
    kk = cap["k"].float()
    w = cap["w"].float()[rows] * H ** -0.5
    cos, sin = cap["cos"].float(), cap["sin"].float()
    out = {}
    for layout in ("neox", "interleaved"):
        qr = torch.cat((rope(q[..., :rdim], cos[rows][:, None, :], sin[rows][:, None, :], layout), q[..., rdim:]), -1)
        kr = torch.cat((rope(kk[..., :rdim], cos, sin, layout), kk[..., rdim:]), -1)
        for relu in (True, False):
            m = torch.cat([topk_mask(s, k, rows[sl]) for sl, s in score_chunks(qr * D ** -0.5, kr, w, rows, relu)])
            out[layout + ("+relu" if relu else "")] = compare(m, ref, long_rows)
    return out


def load_trace(path, layer, dev):
    from safetensors import safe_open
    with safe_open(path, "pt", device="cpu") as f:
        names = set(f.keys())
        t = {n.split(".")[-1]: f.get_tensor(n) for n in names if n.startswith(f"layers.{layer}.")}
        q_pos = f.get_tensor("q_pos")
    q, kk, w = (t[x].float().double().to(dev) for x in ("q", "k", "w"))
    if "q_scale" in t:
        q = q * t["q_scale"].double().to(dev)[..., None]
    if "k_scale" in t:
        kk = kk * t["k_scale"].double().to(dev)[:, None]
    return q, kk, w, q_pos


def run(cmd, log):
    p = subprocess.run(cmd, capture_output=True, text=True)
    log(f"  $ {shlex.join(cmd)}  -> exit {p.returncode}")
    if p.returncode != 0:
        for line in (p.stderr or p.stdout).strip().splitlines()[-8:]:
            log("    | " + line)
    return p


def select(a, trace, layers, n, nq, dev, log):
    p = run([a.misabench, "trace", "select", trace, "--layers", ",".join(map(str, layers)),
             "--format", "json"] + shlex.split(a.select_args), log)
    if p.returncode != 0:
        return None
    try:
        # {"layers": [{"layer": L, "q_pos": [...], "sets": {"dsa": [[...], ...]}}]}
        got = {e["layer"]: e["sets"]["dsa"] for e in json.loads(p.stdout)["layers"]}
        out = {}
        for L in layers:
            rows = got[L]
            if len(rows) != nq:
                log(f"    | layer {L}: select gave {len(rows)} rows, the trace has {nq}")
                return None
            width = max((len(r) for r in rows), default=0)
            t = torch.full((len(rows), max(width, 1)), -1, dtype=torch.int64)
            for i, r in enumerate(rows):
                t[i, :len(r)] = torch.tensor(r, dtype=torch.int64)
            out[L] = idx_mask(t.to(dev), n)
        return out
    except (ValueError, KeyError, TypeError) as e:
        log(f"    | cannot read select's JSON: {e!r}; stdout starts {p.stdout[:200]!r}")
        return None


def record_source(rep, model, idx, tf):
    mod = sys.modules[type(idx).__module__]
    rep.appendix += [f"transformers {tf.__version__}, {inspect.getsourcefile(type(idx))}", ""]
    objs = [type(idx).forward, type(find_attention(model, idx)).forward]
    objs += [getattr(mod, n) for n in ("rotate_half", "apply_rotary_pos_emb", "apply_rotary_pos_emb_interleave")
             if hasattr(mod, n)]
    rot = getattr(getattr(model, "model", model), "rotary_emb", None)
    for o in objs:
        try:
            rep.appendix += [f"--- {o.__qualname__}", inspect.getsource(o)]
        except (OSError, TypeError):
            pass
    if rot is not None:
        inv = [f"{v:.9g}" for v in rot.inv_freq.float().tolist()]
        rep.appendix += [f"--- rotary_emb: rope_type {getattr(rot, 'rope_type', '?')}, attention_scaling "
                         f"{getattr(rot, 'attention_scaling', '?')}, inv_freq [{', '.join(inv)}]", ""]


def find_attention(model, idx):
    for m in model.modules():
        if getattr(m, "indexer", None) is idx:
            return m
    return idx


def check_model(name, a, rep, dev, tf):
    from safetensors.torch import load_file
    spec = MODELS[name]
    work = os.path.join(a.workdir, name)
    ckpt, act = os.path.join(work, "ckpt"), os.path.join(work, "activations.safetensors")
    os.makedirs(work, exist_ok=True)
    dtype = getattr(torch, a.dtype)
    cls, model = build(tf, spec, a)
    model.to(dtype).save_pretrained(ckpt, max_shard_size=a.shard_size)
    shards = sorted(f for f in os.listdir(ckpt) if f.endswith(".safetensors"))
    rep(f"\n== {name} ({spec['cls']}), checkpoint {ckpt}: {len(shards)} shards, "
        f"index json {'yes' if os.path.exists(os.path.join(ckpt, 'model.safetensors.index.json')) else 'NO'}")
    del model
    try:
        model = cls.from_pretrained(ckpt, dtype=dtype, attn_implementation="eager")
    except TypeError:
        model = cls.from_pretrained(ckpt, torch_dtype=dtype, attn_implementation="eager")
    model.to(dev).eval()
    cfg = model.config
    H, D, rdim, k = cfg.index_n_heads, cfg.index_head_dim, cfg.qk_rope_head_dim, cfg.index_topk
    found = find_indexers(model)
    idx0 = found[min(found)][1]
    rep(f"  indexer layers {sorted(found)}; H {H}, D {D}, rope dims {rdim}, topk {k}; parameter dtypes: "
        + ", ".join(f"{n} {p.dtype}" for n, p in idx0.named_parameters()))
    record_source(rep, model, idx0, tf)

    hook = DumpHook(model)
    diag = Diag(model, hook.layers)
    g = torch.Generator().manual_seed(a.seed + 1)
    ids = torch.randint(0, cfg.vocab_size, (1, a.seq_len), generator=g)
    with torch.inference_mode():
        model(input_ids=ids.to(dev), use_cache=False)
    hook.save(act, name, dataset="random-tiny", sample_id=f"{name}-seed{a.seed}")
    hook.remove()
    diag.remove()
    layers = hook.saved_layers
    saved = load_file(act)
    n = a.seq_len
    rows = saved["q_rows"].to(dev)
    long_rows = rows + 1 > k
    refs = {}
    for L in layers:
        if f"layers.{L}.ref_topk" not in saved:
            rep(f"  layer {L}: the indexer's output was not top-k indices: nothing to compare")
            return 2
        refs[L] = idx_mask(saved[f"layers.{L}.ref_topk"].to(dev), n)
    rep(f"  activations {act}: N {n}, {len(rows)} query rows ({int(long_rows.sum())} see more than {k} keys), "
        f"layers {layers}, hidden {tuple(saved[f'layers.{layers[0]}.hidden'].shape)} "
        f"{saved[f'layers.{layers[0]}.hidden'].dtype}, cos/sin {diag.cap[layers[0]]['cos'].dtype}")

    rep("  python re-computation of the model's indexer from its own pre-RoPE tensors "
        "(rows differing from its top-k / mean recall):")
    for L in layers:
        res = py_model_variants(diag.cap[L], rows, refs[L], H, D, rdim, k, long_rows)
        best = max(res, key=lambda v: res[v][1])
        rep(f"    layer {L}: " + "; ".join(f"{v} {d}/{len(rows)} {r:.4f}" for v, (d, r, _) in res.items())
            + f"  -> {best}")
    if a.skip_misabench:
        return 0

    traces = {q: os.path.join(work, f"trace-{q}.safetensors") for q in ("none", "fp8")}
    status = 0
    sel = {}
    for q, tr in traces.items():
        p = run([a.misabench, "trace", "convert", "--checkpoint", ckpt, "--activations", act, "--out", tr,
                 "--quant", q] + shlex.split(a.convert_args), rep)
        sel[q] = select(a, tr, layers, n, len(rows), dev, rep) if p.returncode == 0 else None
        if sel[q] is None:
            status = 1
    rep(f"  {'layer':>5} {'rows':>5} | none: {'differ':>6} {'exact':>5} {'near':>5} {'real':>5} {'worst gap':>9} "
        f"| trace-f64 vs select, vs model | fp8: recall mean    min")
    for L in layers:
        cells = [f"  {L:>5} {len(rows):>5} |"]
        if sel["none"] is not None:
            qt, kt, wt, q_pos = load_trace(traces["none"], L, dev)
            if not torch.equal(q_pos.to(dev), rows):
                rep(f"    layer {L}: trace q_pos differs from the dumped query rows")
                status = 1
            a_m, g_m = sel["none"][L], refs[L]
            exact = near = real = 0
            worst = 0.0
            p_parts = []
            for sl, s in score_chunks(qt, kt, wt, rows):
                r = rows[sl]
                p_parts.append(topk_mask(s, k, r))
                diff = (a_m[sl] != g_m[sl]).any(1)
                if not diff.any():
                    continue
                fin = torch.where(torch.isinf(s), torch.zeros_like(s), s)
                kth = s.topk(min(k, n), dim=1).values[:, -1]
                scale = fin.abs().amax(1).clamp(min=1e-300)
                gap = torch.where(a_m[sl] ^ g_m[sl], (fin - kth[:, None]).abs(), torch.zeros_like(fin)).amax(1) / scale
                short = r + 1 <= k  # a row that sees <= k keys has no boundary: any difference is real
                for j in torch.nonzero(diff).flatten().tolist():
                    gj = float(gap[j])
                    if short[j]:
                        real += 1
                        continue
                    worst = max(worst, gj)
                    if gj > a.tie_rtol:
                        real += 1
                    elif gj == 0:
                        exact += 1
                    else:
                        near += 1
            p_m = torch.cat(p_parts)
            d_sel, _, _ = compare(a_m, p_m, long_rows)
            d_mod, _, _ = compare(p_m, g_m, long_rows)
            differ = exact + near + real
            status = 1 if real else status
            cells.append(f"       {differ:>6} {exact:>5} {near:>5} {real:>5} {worst:>9.2e} | "
                         f"{d_sel:>14} {d_mod:>14} |")
        else:
            cells.append(f"       {'(no misabench selection)':>44} |")
        if sel["fp8"] is not None:
            _, mean, mn = compare(sel["fp8"][L], refs[L], long_rows)
            cells.append(f"         {mean:.4f} {mn:.4f}")
        else:
            cells.append("        (none)")
        rep(" ".join(cells))
    return status


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--misabench", default="./bin/misabench-cuda", help="the misabench binary")
    ap.add_argument("--out", help="also write the report here")
    ap.add_argument("--workdir", help="where checkpoints, activations and traces go (default: a new temp dir)")
    ap.add_argument("--models", default=",".join(MODELS), help="comma list of " + ", ".join(MODELS))
    ap.add_argument("--seq-len", type=int, default=3000)
    ap.add_argument("--topk", type=int, default=256)
    ap.add_argument("--num-layers", type=int, default=3)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--shard-size", default="4MB", help="save_pretrained max_shard_size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tie-rtol", type=float, default=1e-2,
                    help="a differing key within this of the k-th score (relative to the row's largest) is a near tie")
    ap.add_argument("--convert-args", default="", help="extra arguments for trace convert")
    ap.add_argument("--select-args", default="", help="extra arguments for trace select (e.g. --device gpu)")
    ap.add_argument("--skip-misabench", action="store_true", help="only dump and run the python diagnostics")
    a = ap.parse_args(argv)
    names = [m for m in a.models.split(",") if m]
    if any(m not in MODELS for m in names):
        ap.error(f"--models: choose from {', '.join(MODELS)}")
    if not a.skip_misabench and not (os.path.isfile(a.misabench) and os.access(a.misabench, os.X_OK)):
        print(f"check_reference: no executable misabench at {a.misabench} (--misabench, or --skip-misabench)",
              file=sys.stderr)
        return 2
    try:
        import transformers as tf
        from safetensors.torch import load_file as _  # needed later: fail early
    except ImportError as e:
        print(f"check_reference: {e}", file=sys.stderr)
        return 2
    del _
    a.workdir = a.workdir or tempfile.mkdtemp(prefix="misabench-refcheck-")
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rep = Report()
    rep(f"misabench reference check: transformers {tf.__version__}, torch {torch.__version__}, device {dev}"
        + (f" ({torch.cuda.get_device_name(0)})" if dev.type == "cuda" else "")
        + f", tf32 matmul {torch.backends.cuda.matmul.allow_tf32}; N {a.seq_len}, topk {a.topk}, {a.dtype}, "
        f"seed {a.seed}, tie rtol {a.tie_rtol:g}; work dir {a.workdir}")
    status = 0
    for m in names:
        try:
            status = max(status, check_model(m, a, rep, dev, tf))
        except Exception as e:  # report, and go on with the other model
            import traceback
            rep(f"  {m}: FAILED: {e!r}")
            rep(traceback.format_exc())
            status = max(status, 1)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    rep(f"\nresult: {'agreed' if status == 0 else 'DIFFERENCES or failures (see above)'}")
    if a.out:
        rep.write(a.out)
    return status


if __name__ == "__main__":
    sys.exit(main())
