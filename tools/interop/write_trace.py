"""Write a misabench trace (v1) with the Python safetensors library, as a
model-dumping tool would, so that misabench's reader is checked against a
writer it did not produce (DESIGN.md §3).

    python3 tools/interop/write_trace.py OUT.safetensors [--dtype bf16|f16|f32]

Needs torch and safetensors (both on the GPU host). The values are random;
the point is the file layout: the library orders tensors itself, pads the
header, and stores metadata as strings.
"""
import argparse
import json

import torch
from safetensors.torch import save_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f16", "f32"])
    ap.add_argument("--ctx", type=int, default=6000)
    ap.add_argument("--queries", type=int, default=48)
    ap.add_argument("--heads", type=int, default=64)
    ap.add_argument("--layers", default="0,5")
    a = ap.parse_args()
    dt = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[a.dtype]
    g = torch.Generator().manual_seed(0)
    layers = [int(x) for x in a.layers.split(",")]
    q_pos = torch.sort(torch.randint(0, a.ctx, (a.queries,), generator=g)).values
    q_pos[-1] = a.ctx - 1
    tensors = {"q_pos": q_pos.to(torch.int64)}
    for l in layers:
        tensors[f"layers.{l}.q"] = torch.randn(a.queries, a.heads, 128, generator=g).to(dt)
        tensors[f"layers.{l}.k"] = torch.randn(a.ctx, 128, generator=g).to(dt)
        tensors[f"layers.{l}.w"] = (torch.randn(a.queries, a.heads, generator=g) * 0.1).to(torch.float32)
    meta = {
        "format": "misabench.trace/v1",
        "model": "deepseek-v3.2",
        "n_ctx": str(a.ctx),
        "heads": str(a.heads),
        "head_dim": "128",
        "topk": "2048",
        "layers": ",".join(str(l) for l in layers),
        "dataset": "interop",
        "needle": json.dumps([[100, 120]]),
        "question": json.dumps([a.ctx - 8, a.ctx]),
    }
    save_file(tensors, a.out, metadata=meta)


if __name__ == "__main__":
    main()
