package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/misabench/misabench/checkpoint"
	"github.com/misabench/misabench/convert"
	"github.com/misabench/misabench/indexer"
)

// TraceConvertOptions are the options of `misabench trace convert`.
type TraceConvertOptions struct {
	Checkpoint  string
	Activations string
	Out         string
	Layers      []int
	Quant       string
	NoHadamard  bool
	// Device is cpu, gpu or auto (the global --device); deviceGiven
	// records that it was set (flag, environment or config): otherwise
	// the conversion runs on the GPU when there is one (gpuFirstDevice).
	Device      string
	deviceGiven bool
	Stderr      io.Writer

	// newBackend opens the backend for Device (nil: newBackend); a backend
	// that is a convert.Multiplier (the GPU) computes the products.
	newBackend func(device string, workers int, stderr io.Writer) (indexer.Backend, error)
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
power-of-two scales. One layer at a time; the matrix products (wk·x for every
row, wq_b·qr and weights_proj·x for the query rows) run on the GPU when there
is one (--device, default auto in a CUDA build: the GPU, else the CPU with a
notice), with the same float64 sums as the CPU, so the trace is the same;
LayerNorm, RoPE, the rotation and the quantisation run on the CPU.`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			opts.Stderr = a.errOut
			opts.Device, opts.deviceGiven = a.global.Device, cmd.Flags().Changed("device")
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
	dev := gpuFirstDevice(opts.deviceGiven, opts.Device)
	if _, err := parseDevice(dev); err != nil {
		return err
	}
	ck, err := checkpoint.Open(opts.Checkpoint)
	if err != nil {
		return badInput(err)
	}
	defer ck.Close()
	stderr := writerOr(opts.Stderr)
	newB := opts.newBackend
	if newB == nil {
		newB = newBackend
	}
	backend, err := newB(dev, 0, stderr)
	if err != nil {
		return err
	}
	if c, ok := backend.(io.Closer); ok {
		defer c.Close()
	}
	// The CPU backend is no Multiplier: nil keeps convert's CPU products.
	var mul convert.Multiplier
	on := "cpu"
	if m, ok := backend.(convert.Multiplier); ok {
		mul, on = deviceMul{m}, backend.Name()
	}
	err = convert.Convert(ctx, ck, opts.Activations, opts.Out,
		convert.Options{Layers: opts.Layers, Quant: q, NoHadamard: opts.NoHadamard, Multiplier: mul})
	if err != nil {
		return badInput(err)
	}
	fmt.Fprintf(stderr, "misabench: wrote %s (%s, quant %s, products on %s)\n", opts.Out, ck.Config.ModelType, q, on)
	return nil
}

// deviceMul marks the errors of a device's products as failures (exit 1),
// which Convert's bad-input classification would otherwise make exit 2.
type deviceMul struct{ m convert.Multiplier }

func (d deviceMul) MatMulT(y, x, a []float32, n, m, k int) error {
	if err := d.m.MatMulT(y, x, a, n, m, k); err != nil {
		return &exitError{code: exitFail, err: err}
	}
	return nil
}
