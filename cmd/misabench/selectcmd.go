package main

import (
	"context"
	"encoding/json"
	"io"

	"github.com/spf13/cobra"

	"github.com/misabench/misabench/eval"
	"github.com/misabench/misabench/trace"
)

// TraceSelectOptions are the options of `misabench trace select`.
type TraceSelectOptions struct {
	Path    string
	Layers  []int
	Device  string
	Workers int
	Stdout  io.Writer
	Stderr  io.Writer
}

func newTraceSelectCmd(a *app) *cobra.Command {
	opts := &TraceSelectOptions{}
	cmd := &cobra.Command{
		Use:   "select FILE",
		Short: "Print DSA's selected tokens per layer and query row, as JSON",
		Long: `select runs DSA on the trace's layers (all, or --layers) and prints, per
layer, the query rows' positions and each row's selected token indices
(ascending) as JSON: {"source":…, "layers":[{"layer":L, "q_pos":[…],
"sets":{"dsa":[[…],…]}}]}. It is the hook for comparing misabench's DSA with
another implementation's top-k, such as a model's own indexer
(tools/dump/check_reference.py).`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			opts.Path, opts.Device, opts.Workers = args[0], a.global.Device, a.global.Workers
			opts.Stdout, opts.Stderr = a.out, a.errOut
			return runTraceSelect(cmd.Context(), opts)
		}),
	}
	cmd.Flags().IntSliceVar(&opts.Layers, "layers", nil, "layers to select on (default: every layer of the trace)")
	return cmd
}

func runTraceSelect(ctx context.Context, opts *TraceSelectOptions) error {
	f, err := trace.Open(opts.Path)
	if err != nil {
		return badInput(err)
	}
	defer f.Close()
	b, err := newBackend(opts.Device, opts.Workers, writerOr(opts.Stderr))
	if err != nil {
		return err
	}
	if c, ok := b.(io.Closer); ok {
		defer c.Close()
	}
	sel, err := eval.Select(ctx, f, b, opts.Layers, nil)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(writerOr(opts.Stdout))
	return enc.Encode(struct {
		Source string                `json:"source"`
		Layers []eval.LayerSelection `json:"layers"`
	}{opts.Path, sel})
}
