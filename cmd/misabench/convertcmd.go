package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/misabench/misabench/checkpoint"
	"github.com/misabench/misabench/convert"
)

// TraceConvertOptions are the options of `misabench trace convert`.
type TraceConvertOptions struct {
	Checkpoint  string
	Activations string
	Out         string
	Layers      []int
	Quant       string
	NoHadamard  bool
	Stderr      io.Writer
}

func newTraceConvertCmd(a *app) *cobra.Command {
	opts := &TraceConvertOptions{}
	cmd := &cobra.Command{
		Use:   "convert --checkpoint DIR --activations FILE --out FILE",
		Short: "Turn a model's indexer weights and recorded activations into a trace",
		Long: `convert reads the indexer weights of the chosen layers straight from a
Hugging Face checkpoint (DeepSeek-V3.2 or GLM-5: sharded safetensors with their
index, FP8 block-quantised weights dequantised with weight_scale_inv; only the
indexer tensors are read) and an activation dump written by
tools/dump/misabench_dump.py, and writes a v1 trace: q = wq_b(qr),
k = LayerNorm(wk(x)), RoPE on the first qk_rope_head_dim dimensions in the
model's layout (YaRN from config.json), the Hadamard rotation, weights
weights_proj(x)·H^-1/2·D^-1/2, and with --quant fp8 E4M3 q and k with
power-of-two scales. It runs on the CPU (one layer at a time).`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			opts.Stderr = a.errOut
			return runTraceConvert(cmd.Context(), opts)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&opts.Checkpoint, "checkpoint", "", "model checkpoint `dir`ectory (config.json, *.safetensors, model.safetensors.index.json)")
	f.StringVar(&opts.Activations, "activations", "", "activation dump `file` (misabench.activations/v1)")
	f.StringVar(&opts.Out, "out", "", "trace `file` to write")
	f.IntSliceVar(&opts.Layers, "layers", nil, "layers to convert (default: every layer in the dump)")
	f.StringVar(&opts.Quant, "quant", "none", "q and k in the trace: none (F32) or fp8 (E4M3 with power-of-two scales)")
	f.BoolVar(&opts.NoHadamard, "no-hadamard", false, "skip the Hadamard rotation (changes no score, only FP8 rounding)")
	return cmd
}

func runTraceConvert(ctx context.Context, opts *TraceConvertOptions) error {
	for _, req := range []struct{ flag, v string }{{"--checkpoint", opts.Checkpoint}, {"--activations", opts.Activations}, {"--out", opts.Out}} {
		if req.v == "" {
			return usageErrorf("trace convert: %s is required", req.flag)
		}
	}
	q := strings.ToLower(opts.Quant)
	if q != "none" && q != "fp8" {
		return usageErrorf("unknown --quant %q (want none or fp8)", opts.Quant)
	}
	ck, err := checkpoint.Open(opts.Checkpoint)
	if err != nil {
		return badInput(err)
	}
	defer ck.Close()
	err = convert.Convert(ctx, ck, opts.Activations, opts.Out, convert.Options{Layers: opts.Layers, Quant: q, NoHadamard: opts.NoHadamard})
	if err != nil {
		return badInput(err)
	}
	fmt.Fprintf(writerOr(opts.Stderr), "misabench: wrote %s (%s, quant %s)\n", opts.Out, ck.Config.ModelType, q)
	return nil
}
