package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/misabench/misabench/trace"
)

func newTraceCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trace",
		Short: "Generate, inspect and validate trace files",
		Long: `A trace is one safetensors file per sequence holding the indexer inputs (q, k,
weights) of several layers (format misabench.trace/v1, DESIGN.md §3). A
directory of traces is a data set.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newTraceGenCmd(a), newTraceInspectCmd(a), newTraceValidateCmd(a), newTraceSelectCmd(a), newTraceConvertCmd(a))
	return cmd
}

// TraceGenOptions are the options of `misabench trace gen`.
type TraceGenOptions struct {
	Out       string
	Preset    string
	Ctx       int
	Queries   int
	Layers    []int
	Seed      uint64
	TopK      int
	Placement string
	// NeedleDepth in [0, 1] plants a needle of NeedleLen tokens at that
	// depth of the context; negative: no needle.
	NeedleDepth float64
	NeedleLen   int
	// NeedleFocus and NeedleScale make the needle a focused one that DSA
	// keeps by construction (docs/synthetic.md, "Focused needles"; what
	// `misabench niah` uses); 0 keeps the plain needle.
	NeedleFocus, NeedleScale float64
	QType                    string
	KType                    string

	Stderr io.Writer
}

func newTraceGenCmd(a *app) *cobra.Command {
	opts := &TraceGenOptions{Preset: defaultPreset, Placement: "spread", NeedleDepth: -1, NeedleLen: 32, QType: "f32", KType: "f32"}
	cmd := &cobra.Command{
		Use:   "gen --out FILE",
		Short: "Write a synthetic trace file",
		Long: `gen writes the built-in synthetic source (DESIGN.md §8, docs/synthetic.md) as a
trace file, atomically. Synthetic data exercise the harness; they are not a
claim about real models.`,
		Example: `  misabench trace gen --out /tmp/synth.safetensors
  misabench trace gen --out needle.safetensors --ctx 65536 --needle-depth 0.5 --needle-len 32 --qtype f8 --ktype f8`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			opts.Stderr = a.errOut
			return a.traceGenF(cmd.Context(), opts)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&opts.Out, "out", "", "trace `file` to write (required)")
	f.StringVar(&opts.Preset, "preset", opts.Preset, "model preset (deepseek-v3.2 or glm-5)")
	f.IntVar(&opts.Ctx, "ctx", 0, "context length in tokens (0: the preset's)")
	f.IntVar(&opts.Queries, "queries", 0, "query rows (0: the preset's)")
	f.IntSliceVar(&opts.Layers, "layers", nil, "layer indices to generate (default: the preset's)")
	f.Uint64Var(&opts.Seed, "seed", 0, "random seed (0: the preset's)")
	f.IntVar(&opts.TopK, "topk", 0, "tokens kept k recorded in the metadata (0: the preset's)")
	f.StringVar(&opts.Placement, "placement", opts.Placement, "query rows: spread over the context, or the tail")
	f.Float64Var(&opts.NeedleDepth, "needle-depth", opts.NeedleDepth, "plant a needle at this depth in [0, 1] of the context (negative: none)")
	f.IntVar(&opts.NeedleLen, "needle-len", opts.NeedleLen, "needle length in tokens")
	f.Float64Var(&opts.NeedleFocus, "needle-focus", 0, "question rows' weight on the needle's heads, × their strongest intent (0: plain needle; niah uses 4)")
	f.Float64Var(&opts.NeedleScale, "needle-scale", 0, "amplitude of the needle's feature on its keys (0: the generator's feature scale; niah uses 24)")
	f.StringVar(&opts.QType, "qtype", opts.QType, "dtype of q: f32, bf16, f16 or f8 (F8_E4M3 with scales)")
	f.StringVar(&opts.KType, "ktype", opts.KType, "dtype of k: f32, bf16, f16 or f8 (F8_E4M3 with scales)")
	return cmd
}

// parseInputDType accepts the dtype names of --qtype and --ktype.
func parseInputDType(flag, s string) (trace.DType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "f32", "fp32", "float32":
		return trace.DTypeF32, nil
	case "bf16", "bfloat16":
		return trace.DTypeBF16, nil
	case "f16", "fp16", "float16", "half":
		return trace.DTypeF16, nil
	case "f8", "fp8", "f8_e4m3", "e4m3", "fp8_e4m3":
		return trace.DTypeF8E4M3, nil
	}
	return "", usageErrorf("unknown --%s %q (want f32, bf16, f16 or f8)", flag, s)
}

func runTraceGen(ctx context.Context, opts *TraceGenOptions) error {
	if opts.Out == "" {
		return usageErrorf("--out is required")
	}
	qt, err := parseInputDType("qtype", opts.QType)
	if err != nil {
		return err
	}
	kt, err := parseInputDType("ktype", opts.KType)
	if err != nil {
		return err
	}
	switch opts.Placement {
	case "spread", "tail":
	default:
		return usageErrorf("unknown --placement %q (want spread or tail)", opts.Placement)
	}
	if err := checkLayers(opts.Layers); err != nil {
		return err
	}
	if opts.TopK < 0 {
		return usageErrorf("--topk %d must not be negative", opts.TopK)
	}
	cfg, err := synthConfig(opts.Preset, opts.Ctx, opts.Queries, opts.Seed, opts.Layers, opts.TopK)
	if err != nil {
		return err
	}
	cfg.Placement = opts.Placement
	if opts.NeedleDepth >= 0 {
		if opts.NeedleDepth > 1 {
			return usageErrorf("--needle-depth %g must be in [0, 1]", opts.NeedleDepth)
		}
		if opts.NeedleLen < 1 {
			return usageErrorf("--needle-len %d must be at least 1", opts.NeedleLen)
		}
		if opts.NeedleFocus < 0 || opts.NeedleScale < 0 {
			return usageErrorf("--needle-focus and --needle-scale must not be negative")
		}
		cfg.Needle = &trace.NeedleSpec{Depth: opts.NeedleDepth, Len: opts.NeedleLen, Focus: opts.NeedleFocus, Scale: opts.NeedleScale}
	}
	src, err := trace.NewSynthetic(cfg)
	if err != nil {
		return badInput(fmt.Errorf("synthetic source: %w", err))
	}
	if err := trace.WriteSource(ctx, opts.Out, src, trace.WriteOptions{QType: qt, KType: kt}); err != nil {
		return err
	}
	m := src.Meta()
	fmt.Fprintf(writerOr(opts.Stderr), "misabench: wrote %s (%s, %d tokens, %d query rows, layers %v; synthetic data)\n",
		opts.Out, m.Model, m.NCtx, len(src.QPos()), m.Layers)
	return nil
}

// TraceInspectOptions are the options of `misabench trace inspect`.
type TraceInspectOptions struct {
	Paths  []string
	Format string
	Stdout io.Writer
}

func newTraceInspectCmd(a *app) *cobra.Command {
	opts := &TraceInspectOptions{}
	return &cobra.Command{
		Use:   "inspect FILE...",
		Short: "Print a trace's metadata and tensor table",
		Args:  cobra.MinimumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			opts.Paths, opts.Format, opts.Stdout = args, a.global.Format, a.out
			return a.inspectF(cmd.Context(), opts)
		}),
	}
}

type inspectJSON struct {
	File    string              `json:"file"`
	Meta    trace.Meta          `json:"meta"`
	Raw     map[string]string   `json:"raw_meta"`
	Tensors []inspectTensorJSON `json:"tensors"`
}

type inspectTensorJSON struct {
	Name  string      `json:"name"`
	DType trace.DType `json:"dtype"`
	Shape []int       `json:"shape"`
	Bytes int64       `json:"bytes"`
}

func runTraceInspect(_ context.Context, opts *TraceInspectOptions) error {
	format, err := parseFormat(opts.Format, "table", "json")
	if err != nil {
		return err
	}
	if len(opts.Paths) == 0 {
		return usageErrorf("no trace files given")
	}
	var all []inspectJSON
	for _, p := range opts.Paths {
		f, err := trace.Open(p)
		if err != nil {
			return badInput(err)
		}
		item := inspectJSON{File: p, Meta: f.Meta(), Raw: f.RawMeta()}
		for _, t := range f.Tensors() {
			item.Tensors = append(item.Tensors, inspectTensorJSON{Name: t.Name, DType: t.DType, Shape: t.Shape, Bytes: t.End - t.Begin})
		}
		f.Close()
		all = append(all, item)
	}
	w := writerOr(opts.Stdout)
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	for i, it := range all {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := printInspect(w, it); err != nil {
			return err
		}
	}
	return nil
}

func printInspect(w io.Writer, it inspectJSON) error {
	fmt.Fprintf(w, "%s\n", it.File)
	keys := make([]string, 0, len(it.Raw))
	for k := range it.Raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	width := 0
	for _, k := range keys {
		width = max(width, len(k))
	}
	for _, k := range keys {
		v := it.Raw[k]
		if r := []rune(v); len(r) > 100 { // e.g. synthetic_config; --format json has it whole
			v = string(r[:99]) + "…"
		}
		fmt.Fprintf(w, "  %-*s  %s\n", width, k, v)
	}
	var total int64
	rows := make([][]string, 0, len(it.Tensors))
	for _, t := range it.Tensors {
		shape := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			shape[i] = fmt.Sprint(d)
		}
		rows = append(rows, []string{t.Name, string(t.DType), "[" + strings.Join(shape, ", ") + "]", fmt.Sprint(t.Bytes)})
		total += t.Bytes
	}
	rows = append(rows, []string{"total", "", "", fmt.Sprint(total)})
	table := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: []tw.Align{tw.AlignLeft, tw.AlignLeft, tw.AlignLeft, tw.AlignRight}}))
	table.Header([]string{"tensor", "dtype", "shape", "bytes"})
	if err := table.Bulk(rows); err != nil {
		return err
	}
	return table.Render()
}

// TraceValidateOptions are the options of `misabench trace validate`.
type TraceValidateOptions struct {
	Paths  []string
	Stdout io.Writer
}

func newTraceValidateCmd(a *app) *cobra.Command {
	opts := &TraceValidateOptions{}
	return &cobra.Command{
		Use:   "validate FILE|DIR...",
		Short: "Check every rule of the trace format on every byte of each trace",
		Long: `validate reads each trace completely and checks every rule of the format
(offsets, shapes, dtypes, positions, non-finite values). It prints "ok FILE"
or "FAIL FILE: reason" per trace and exits 2 if any failed.`,
		Args: cobra.MinimumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			opts.Paths, opts.Stdout = args, a.out
			return a.validateF(cmd.Context(), opts)
		}),
	}
}

func runTraceValidate(ctx context.Context, opts *TraceValidateOptions) error {
	paths, err := trace.Expand(opts.Paths)
	if err != nil {
		return badInput(err)
	}
	if len(paths) == 0 {
		return usageErrorf("no traces found in %s", strings.Join(opts.Paths, ", "))
	}
	w := writerOr(opts.Stdout)
	failed := 0
	for _, p := range paths {
		err := validateOne(ctx, p)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			failed++
			fmt.Fprintf(w, "FAIL %s: %s\n", p, oneLine(err.Error()))
			continue
		}
		fmt.Fprintf(w, "ok %s\n", p)
	}
	if failed > 0 {
		return usageErrorf("%d of %d traces failed validation", failed, len(paths))
	}
	return nil
}

func validateOne(ctx context.Context, path string) error {
	f, err := trace.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Validate(ctx)
}
