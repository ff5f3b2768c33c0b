"""Record DSA indexer inputs from a Hugging Face `transformers` model
(DeepseekV32ForCausalLM, GlmMoeDsaForCausalLM) into one misabench activation
file (format misabench.activations/v1, see README.md next to this file), which
`misabench trace convert` turns into a trace.

    from misabench_dump import DumpHook
    hook = DumpHook(model)                      # every layer that has an indexer
    model(input_ids=ids, use_cache=False)       # ONE forward, batch 1
    hook.save("sample.safetensors", "deepseek-v3.2", needle=[[900, 940]])

or as a command (tokenises a text file, runs one forward, writes the file):

    python3 tools/dump/misabench_dump.py --model DIR --text-file doc.txt --out a.safetensors

What is recorded, per chosen layer L (hooks on the indexer's own sub-modules,
so it does not depend on the argument order of the indexer's forward):
  hidden  [N, hidden_size]  the input of indexer.wk (= of indexer.weights_proj):
                            the attention input, i.e. input_layernorm's output
  qr      [Q, q_lora_rank]  the input of indexer.wq_b: q_a_layernorm(q_a_proj(x))
  ref     [Q, k]            the indexer's own output (its top-k indices), with
                            indices of keys the row cannot see replaced by -1
and once: the position ids (from the decoder layer's `position_ids` argument).
Only the first forward after construction / clear() is kept; later calls (a
decode step of generate) are ignored and counted in `ignored_calls`.
"""
import argparse
import json
import os
import re
import sys
import warnings

import torch

FORMAT = "misabench.activations/v1"
MODEL_NAMES = ("deepseek-v3.2", "glm-5")
_MODEL_TYPES = {"deepseek_v32": "deepseek-v3.2", "glm_moe_dsa": "glm-5"}
_LAYER_RE = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def find_indexers(model):
    """{layer index: (module name, indexer module, decoder layer module or None)}
    for every module that has the DSA indexer's wq_b, wk and weights_proj."""
    found = {}
    for name, mod in model.named_modules():
        if not all(hasattr(mod, a) for a in ("wq_b", "wk", "weights_proj")):
            continue
        m = _LAYER_RE.search(name + ".")
        layer = getattr(mod, "layer_idx", None)
        if layer is None and m is not None:
            layer = int(m.group(1))
        if layer is None:
            continue
        layer_mod = None
        if m is not None:
            try:
                layer_mod = model.get_submodule(name[: m.end() - 1])
            except AttributeError:
                layer_mod = None
        found[int(layer)] = (name, mod, layer_mod)
    return found


def detect_model_name(model):
    mt = getattr(getattr(model, "config", None), "model_type", None)
    return _MODEL_TYPES.get(mt)


def _first(x):
    """The tensor a hook received: unwrap tuples, drop the batch dimension."""
    if isinstance(x, (tuple, list)):
        x = x[0] if x else None
    if not torch.is_tensor(x):
        return None
    if x.dim() == 3:
        if x.shape[0] != 1:
            raise ValueError(f"DumpHook records one sequence: batch size must be 1, got {x.shape[0]}")
        x = x[0]
    return x


def _as_topk(out):
    """The indexer's output as [S, k] int64 indices, or None if it is not that.
    Accepts integer indices ([B,S,k] or [S,k], possibly inside a tuple) or an
    additive float mask [B,S,T] with 0 at the selected keys."""
    if isinstance(out, (tuple, list)):
        ts = [o for o in out if torch.is_tensor(o)]
        ints = [o for o in ts if not o.is_floating_point() and o.dtype != torch.bool]
        out = ints[0] if ints else (ts[0] if ts else None)
    if not torch.is_tensor(out) or out.dtype == torch.bool:
        return None
    if out.dim() == 3:
        out = out[0]
    if out.dim() != 2:
        return None
    if not out.is_floating_point():
        return out.detach().to("cpu", torch.int64)
    sel = (out == 0).cpu()
    n = sel.shape[-1]
    k = int(sel.sum(-1).max())
    ar = torch.arange(n).expand_as(sel)
    idx = torch.where(sel, ar, torch.full_like(ar, n)).sort(-1).values[:, :k]
    return torch.where(idx == n, torch.full_like(idx, -1), idx)


def clean_topk(ref, rows):
    """Keep only keys each query row can see (index <= row), -1 elsewhere;
    each row sorted ascending with the -1 padding at the end."""
    ref = ref.clone()
    ref[(ref < 0) | (ref > rows[:, None])] = -1
    big = torch.iinfo(torch.int64).max
    ref = torch.where(ref < 0, torch.full_like(ref, big), ref).sort(-1).values
    return torch.where(ref == big, torch.full_like(ref, -1), ref)


class DumpHook:
    def __init__(self, model, layers=None, query_rows=None, record_ref=True):
        found = find_indexers(model)
        if not found:
            raise ValueError("no DSA indexer module (with wq_b, wk, weights_proj) found in this model")
        if layers is None:
            layers = sorted(found)
        else:
            layers = sorted({int(x) for x in layers})
            missing = [x for x in layers if x not in found]
            if missing:
                raise ValueError(f"layers {missing} have no indexer; layers with one: {sorted(found)}")
        self.model = model
        self.layers = layers
        self.query_rows = None if query_rows is None else [int(r) for r in query_rows]
        self.record_ref = record_ref
        self.modules = {L: found[L] for L in layers}
        self._handles = []
        for L in layers:
            _, idx, layer_mod = found[L]
            self._handles.append(idx.wk.register_forward_pre_hook(self._pre(L, "hidden")))
            self._handles.append(idx.wq_b.register_forward_pre_hook(self._pre(L, "qr")))
            if record_ref:
                self._handles.append(idx.register_forward_hook(self._post(L)))
            if layer_mod is not None:
                self._handles.append(layer_mod.register_forward_pre_hook(self._layer_pre(L), with_kwargs=True))
        self.clear()

    # -- recording ---------------------------------------------------------
    def clear(self):
        """Forget what was recorded; the next forward is recorded."""
        self.records = {}
        self.n_ctx = None
        self.q_rows = None
        self.ignored_calls = 0

    def remove(self):
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()

    def _set_n(self, n):
        if self.n_ctx is None:
            self.n_ctx = n
            if self.query_rows is None:
                rows = list(range(n))
            else:
                rows = sorted({r + n if r < 0 else r for r in self.query_rows})
                if not rows or rows[0] < 0 or rows[-1] >= n:
                    raise ValueError(f"query rows out of range 0..{n - 1}")
            self.q_rows = torch.tensor(rows, dtype=torch.int64)
        elif n != self.n_ctx:
            raise ValueError(f"sequence length changed within one recording ({self.n_ctx} then {n}); call clear()")

    def _pre(self, L, key):
        def hook(mod, args):
            rec = self.records.setdefault(L, {})
            if key in rec:
                self.ignored_calls += 1
                return
            x = _first(args[0] if args else None)
            if x is None or x.dim() != 2:
                raise ValueError(f"layer {L}: unexpected input of indexer.{'wk' if key == 'hidden' else 'wq_b'}")
            self._set_n(x.shape[0])
            if key == "qr":
                x = x.index_select(0, self.q_rows.to(x.device))
            rec[key] = x.detach().to("cpu", copy=True).contiguous()
        return hook

    def _post(self, L):
        def hook(mod, args, out):
            rec = self.records.setdefault(L, {})
            if "ref" not in rec:
                rec["ref"] = _as_topk(out)
        return hook

    def _layer_pre(self, L):
        def hook(mod, args, kwargs):
            rec = self.records.setdefault(L, {})
            pid = kwargs.get("position_ids")
            if "positions" not in rec and torch.is_tensor(pid):
                rec["positions"] = pid.reshape(-1).detach().to("cpu", torch.int64).clone()
        return hook

    # -- writing -----------------------------------------------------------
    def save(self, path, model_name=None, dataset=None, sample_id=None, needle=None, question=None,
             depth_percent=None):
        """Write one activation file (safetensors, atomically). Returns path."""
        done = [L for L in self.layers if "hidden" in self.records.get(L, {}) and "qr" in self.records[L]]
        skipped = [L for L in self.layers if L not in done]
        if not done:
            raise RuntimeError("nothing recorded: run one forward pass (batch 1) with the hook attached")
        if skipped:
            warnings.warn(f"layers {skipped} were not run (shared-index layers?): left out")
        pos = None
        for L in done:
            p = self.records[L].get("positions")
            if p is not None and p.numel() == self.n_ctx:
                if pos is not None and not torch.equal(pos, p):
                    raise ValueError("layers saw different position ids")
                pos = p
        layers = {}
        for L in done:
            rec = self.records[L]
            layers[L] = {"hidden": rec["hidden"], "qr": rec["qr"]}
            ref = rec.get("ref")
            if ref is not None and ref.shape[0] == self.n_ctx:
                layers[L]["ref_topk"] = clean_topk(ref.index_select(0, self.q_rows), self.q_rows)
            elif ref is not None:
                warnings.warn(f"layer {L}: indexer output has {ref.shape[0]} rows, not {self.n_ctx}: no ref_topk")
        self.saved_layers = done
        return save_activations(path, model_name or detect_model_name(self.model), layers, self.q_rows, pos,
                                dataset=dataset, sample_id=sample_id, needle=needle, question=question,
                                depth_percent=depth_percent)


def save_activations(path, model_name, layers, q_rows, positions=None, dataset=None, sample_id=None,
                     needle=None, question=None, depth_percent=None):
    """Write one activation file from tensors recorded by any engine.

    layers: {L: {"hidden": [N, hidden], "qr": [Q, q_lora_rank], "ref_topk": [Q, k] (optional)}}
    q_rows: [Q] row indices into 0..N-1; positions: [N] (default 0..N-1)."""
    from safetensors.torch import save_file

    if model_name not in MODEL_NAMES:
        raise ValueError(f"model name must be one of {MODEL_NAMES}, got {model_name!r}")
    if not layers:
        raise ValueError("no layers to write")
    n = next(iter(layers.values()))["hidden"].shape[0]
    q_rows = torch.as_tensor(q_rows, dtype=torch.int64).cpu()
    if q_rows.numel() == 0 or (q_rows[1:] <= q_rows[:-1]).any() or q_rows[0] < 0 or q_rows[-1] >= n:
        raise ValueError(f"q_rows must be ascending, unique, within 0..{n - 1}")
    if positions is None:
        warnings.warn("no position ids: assuming 0..N-1")
        positions = torch.arange(n, dtype=torch.int64)
    positions = torch.as_tensor(positions, dtype=torch.int64).cpu()
    if positions.shape != (n,):
        raise ValueError(f"positions must have shape [{n}]")
    if not torch.equal(positions, torch.arange(n, dtype=torch.int64)):
        warnings.warn("position ids are not 0..N-1 (a cache or an offset?): a trace treats key row s as position s")
    out = {"positions": positions.contiguous(), "q_rows": q_rows.contiguous()}
    for L in sorted(layers):
        rec = layers[L]
        for key, rows in (("hidden", n), ("qr", q_rows.numel())):
            t = rec[key].detach().cpu()
            if t.dim() != 2 or t.shape[0] != rows:
                raise ValueError(f"layer {L}: {key} has shape {tuple(t.shape)}, want [{rows}, *]")
            if t.dtype not in (torch.bfloat16, torch.float32):
                t = t.float()  # f16 and anything else: exact or best in F32
            out[f"layers.{L}.{key}"] = t.contiguous()
        if rec.get("ref_topk") is not None:
            r = torch.as_tensor(rec["ref_topk"]).detach().cpu().to(torch.int64)
            if r.dim() != 2 or r.shape[0] != q_rows.numel():
                raise ValueError(f"layer {L}: ref_topk has shape {tuple(r.shape)}, want [{q_rows.numel()}, k]")
            out[f"layers.{L}.ref_topk"] = r.contiguous()
    meta = {"format": FORMAT, "model": model_name, "n_ctx": str(n),
            "layers": ",".join(str(L) for L in sorted(layers))}
    if dataset is not None:
        meta["dataset"] = str(dataset)
    if sample_id is not None:
        meta["sample_id"] = str(sample_id)
    if needle is not None:
        spans = [needle] if needle and isinstance(needle[0], int) else needle
        spans = [[int(s), int(e)] for s, e in spans]
        for s, e in spans:
            if not 0 <= s < e <= n:
                raise ValueError(f"needle span [{s},{e}) outside 0..{n}")
        meta["needle"] = json.dumps(spans)
    if question is not None:
        s, e = (int(v) for v in question)
        if not 0 <= s < e <= n:
            raise ValueError(f"question span [{s},{e}) outside 0..{n}")
        meta["question"] = json.dumps([s, e])
    if depth_percent is not None:
        d = float(depth_percent)
        if not 0 <= d <= 100:
            raise ValueError(f"depth_percent {d} outside 0..100")
        meta["depth_percent"] = f"{d:g}"
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        save_file(out, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def parse_rows(spec, n):
    """'all' | 'last:K' | 'every:S' (every S-th row and the last) | '0,5,10-20'."""
    if spec in (None, "", "all"):
        return None
    if spec.startswith("last:"):
        k = int(spec[5:])
        return list(range(max(n - k, 0), n))
    if spec.startswith("every:"):
        s = int(spec[6:])
        return sorted(set(range(s - 1, n, s)) | {n - 1})
    rows = []
    for part in spec.split(","):
        a, sep, b = part.partition("-")
        rows += list(range(int(a), int(b) + 1)) if sep and a else [int(part)]
    return rows


def _spans(s):
    return None if s is None else json.loads(s)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Dump DSA indexer activations of one sequence (misabench.activations/v1).")
    ap.add_argument("--model", required=True, help="model directory or hub id (a DeepSeek-V3.2 or GLM-5 checkpoint)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="the prompt")
    src.add_argument("--text-file", help="a file holding the prompt")
    src.add_argument("--input-ids", help="a JSON file holding a list of token ids")
    ap.add_argument("--out", required=True, help="the activation file to write")
    ap.add_argument("--layers", help="comma list (default: every layer with an indexer)")
    ap.add_argument("--query-rows", default="all", help="all | last:K | every:S | 0,5,10-20")
    ap.add_argument("--max-tokens", type=int, help="keep the first N tokens")
    ap.add_argument("--model-name", choices=MODEL_NAMES, help="default: from config.model_type")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32", "auto"])
    ap.add_argument("--device-map", default="auto", help="passed to from_pretrained (auto spreads over all GPUs)")
    ap.add_argument("--attn", default="eager", help="attn_implementation (eager always gives the indexer a causal mask)")
    ap.add_argument("--no-ref", action="store_true", help="do not store the indexer's own top-k")
    ap.add_argument("--dataset")
    ap.add_argument("--sample-id")
    ap.add_argument("--needle", help='JSON list of [start,end) token spans, e.g. "[[900,940]]"')
    ap.add_argument("--question", help='JSON [start,end] token span of the question')
    ap.add_argument("--depth-percent", type=float)
    a = ap.parse_args(argv)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = a.dtype if a.dtype == "auto" else getattr(torch, a.dtype)
    if a.input_ids:
        with open(a.input_ids) as f:
            ids = torch.tensor([json.load(f)], dtype=torch.int64)
    else:
        text = a.text if a.text is not None else open(a.text_file, encoding="utf-8").read()
        ids = AutoTokenizer.from_pretrained(a.model)(text, return_tensors="pt").input_ids
    if a.max_tokens:
        ids = ids[:, : a.max_tokens]
    n = ids.shape[1]
    kw = dict(device_map=a.device_map, attn_implementation=a.attn)
    try:
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype, **kw)
    except TypeError:  # transformers < 4.56 spells it torch_dtype
        model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=dtype, **kw)
    model.eval()
    layers = None if not a.layers else [int(x) for x in a.layers.split(",")]
    hook = DumpHook(model, layers=layers, query_rows=parse_rows(a.query_rows, n), record_ref=not a.no_ref)
    base = getattr(model, "model", model)  # the decoder stack: no [N, vocab] logits
    with torch.inference_mode():
        base(input_ids=ids.to(model.get_input_embeddings().weight.device), use_cache=False)
    hook.save(a.out, a.model_name, dataset=a.dataset, sample_id=a.sample_id, needle=_spans(a.needle),
              question=_spans(a.question), depth_percent=a.depth_percent)
    print(f"{a.out}: {n} tokens, {len(hook.q_rows)} query rows, layers {hook.saved_layers}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
