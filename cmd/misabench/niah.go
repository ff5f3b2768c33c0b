package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/misabench/misabench/indexer"
	"github.com/misabench/misabench/niah"
	"github.com/misabench/misabench/trace"
)

// NiahOptions are the options of `misabench niah`.
type NiahOptions struct {
	// The grid. Ctx is the longest context ("" : the device's default),
	// CtxPoints and DepthPoints the number of contexts and depths (0: the
	// device's default); Contexts and Depths (percent) list them instead.
	Ctx                    string
	CtxPoints, DepthPoints int
	Contexts, Depths       []string
	// contextsGiven and depthsGiven record that --contexts / --depths were
	// set (possibly to an empty list, which is an error).
	contextsGiven, depthsGiven bool

	// The synthetic needle traces (indexer level, no --trace).
	Preset      string
	Queries     int // question rows (0: the device's default)
	Seed        uint64
	Layers      []int // nil: the device's default (synthetic) or every layer (traces)
	TopK        int
	NeedleLen   int
	NeedleFocus float64
	NeedleScale float64

	// Traces are needle traces (files or directories) instead of the
	// synthetic grid.
	Traces []string

	// The methods, as recall's flags.
	MethodOptions

	// Device is cpu, gpu or auto; deviceGiven records that --device (or
	// its config/environment) was set: niah's own default is the GPU when
	// there is one.
	Device      string
	deviceGiven bool
	Workers     int

	// The model level (when Endpoint is set).
	Endpoint    string
	ServedModel string
	Haystack    string
	Samples     int
	Scorer      string
	Chat        bool
	Concurrency int
	Retries     int
	Timeout     time.Duration
	MaxTokens   int

	// Format of stdout: table, json or csv. Out is the output directory
	// (empty: results/runs/niah-<UTC time>).
	Format string
	Out    string

	Stdout, Stderr io.Writer
	// Progress draws a progress bar on Stderr.
	Progress bool
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	// Tests replace these (nil: the real ones).
	runModel   func(context.Context, niah.ModelOptions) (*niah.Grid, error)
	newBackend func(device string, workers int, stderr io.Writer) (indexer.Backend, error)
}

// niahDefaults are the grid defaults of a device.
type niahDefaults struct {
	ctx, ctxPoints, depthPoints, queries int
	layers                               []int
}

// The default grids. On the GPU: 15 contexts from 2K to --ctx (128K) × 15
// depths (as DeepSeek-V3's figure), 3 layers, 64 question rows. On the
// CPU, a grid that finishes in well under a minute on two cores: 8
// contexts from 2K to 32K × 8 depths, the same 3 layers, 16 question rows.
var (
	niahGPUDefaults = niahDefaults{ctx: 128 << 10, ctxPoints: 15, depthPoints: 15, queries: 64, layers: []int{0, 1, 2}}
	niahCPUDefaults = niahDefaults{ctx: 32 << 10, ctxPoints: 8, depthPoints: 8, queries: 16, layers: []int{0, 1, 2}}
	// The model level's grid does not depend on the device.
	niahModelDefaults = niahDefaults{ctx: 128 << 10, ctxPoints: 15, depthPoints: 15}
)

// Defaults of the focused synthetic needle (docs/synthetic.md, "Focused
// needles"): the question rows weight the needle's feature heads 4× the
// strongest other intent, and the needle's feature stands at 4× the
// amplitude of an ordinary feature (24 key-noise s.d.).
const (
	niahNeedleFocus = 4
	niahNeedleScale = 24
)

func defaultNiahOptions() NiahOptions {
	return NiahOptions{
		Preset:        defaultPreset,
		NeedleLen:     trace.DefaultNeedleLen,
		NeedleFocus:   niahNeedleFocus,
		NeedleScale:   niahNeedleScale,
		MethodOptions: defaultMethodOptions("dsa", "misa", "misa-dagger", "hisa"),
		Scorer:        "passkey",
		Concurrency:   1,
	}
}

const niahLong = `niah runs needle-in-a-haystack grids: context lengths × needle depths.

Indexer level (the default): for every cell, a trace with a needle span and
question rows at its end; DSA and the chosen methods select their top-k for the
question rows, and the cell's score is the needle retention (DESIGN.md §2): the
share of the needle's tokens in the selected set, averaged over the question
rows, per layer, and its minimum over the layers. A cell is green at exactly 1.
With no --trace the traces are synthetic (docs/synthetic.md) with a focused
needle (--needle-focus, --needle-scale) that DSA keeps by construction; the
needle is visible to only a few heads, so how the other methods fare says
whether they find those heads. With --trace DIR the traces' metadata marks the
needle ("needle"), the question ("question") and the depth ("depth_percent");
traces are grouped into cells by n_ctx and depth_percent.

The grid runs on the GPU when there is one (--device, default auto in a CUDA
build) and on the CPU otherwise. Defaults: on the GPU 15 contexts from 2K to
--ctx (128K) × 15 depths (0..100%), layers 0,1,2, 64 question rows; on the
CPU 8 contexts from 2K to 32K × 8 depths, layers 0,1,2, 16 question rows
(about 15 s on two cores). Every flag overrides them.

Model level (--endpoint URL --model NAME): the classic passkey test
against an OpenAI-compatible server serving the model with the indexer under
test; the output directory keeps the answers, so that a rerun with the same
--out resumes.

The table (per method: green cells, mean, min, worst cell) goes to stdout
(--format json: the result; csv: every cell). niah.json, niah.csv, one PNG and
one SVG heatmap per method and niah.html (the heatmaps side by side, with the
summary) are written under --out once the run has succeeded.`

func newNiahCmd(a *app) *cobra.Command {
	opts := defaultNiahOptions()
	cmd := &cobra.Command{
		Use:   "niah",
		Short: "Needle-in-a-haystack heatmaps: needle retention of DSA, MISA, MISA† and HISA",
		Long:  niahLong,
		Example: `  misabench niah
  misabench niah --ctx 128k --device gpu
  misabench niah --contexts 4k,16k,64k --depths 0,50,100 --methods dsa,misa --router pooled,oracle
  misabench niah --trace dumps/niah/ --layers 0,30,60
  misabench niah --endpoint http://localhost:8000 --model deepseek-ai/DeepSeek-V3.2 --ctx 128k --out results/runs/niah-v32`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			o := opts
			o.Layers, o.Traces = slices.Clone(opts.Layers), slices.Clone(opts.Traces)
			o.Format, o.Device, o.Workers = a.global.Format, a.global.Device, a.global.Workers
			fl := cmd.Flags()
			o.deviceGiven = fl.Changed("device")
			o.contextsGiven, o.depthsGiven = fl.Changed("contexts"), fl.Changed("depths")
			o.Stdout, o.Stderr, o.Progress, o.Now = a.out, a.errOut, a.errTTY, a.now
			return a.niahF(cmd.Context(), &o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&opts.Ctx, "ctx", "", "longest context of the grid: 128k, 128K or 131072 (default 128K on the GPU, 32K on the CPU)")
	f.IntVar(&opts.CtxPoints, "ctx-points", 0, "context lengths, evenly spaced from 2K to --ctx (default 15 on the GPU, 8 on the CPU)")
	f.StringSliceVar(&opts.Contexts, "contexts", nil, "the context lengths instead of --ctx/--ctx-points (comma list: 4k,16k,64k)")
	f.IntVar(&opts.DepthPoints, "depth-points", 0, "needle depths, evenly spaced from 0 to 100% (default 15 on the GPU, 8 on the CPU)")
	f.StringSliceVar(&opts.Depths, "depths", nil, "the needle depths in percent instead of --depth-points (comma list: 0,50,100)")

	f.StringVar(&opts.Preset, "preset", opts.Preset, "synthetic traces: model preset (deepseek-v3.2 or glm-5)")
	f.IntVar(&opts.Queries, "queries", 0, "synthetic traces: question rows at the end of each trace (default 64 on the GPU, 16 on the CPU)")
	f.Uint64Var(&opts.Seed, "seed", 0, "synthetic traces (and model-level pass keys): random seed (0: the preset's)")
	f.IntSliceVar(&opts.Layers, "layers", nil, "layers to score (default: 0,1,2; with --trace every layer of the traces)")
	f.IntVar(&opts.TopK, "topk", 0, "tokens kept k (0: the preset's or the traces' metadata)")
	f.IntVar(&opts.NeedleLen, "needle-len", opts.NeedleLen, "synthetic traces: needle length in tokens")
	f.Float64Var(&opts.NeedleFocus, "needle-focus", opts.NeedleFocus, "synthetic traces: the question rows weight the needle's feature heads this many times the strongest other intent (0: unfocused)")
	f.Float64Var(&opts.NeedleScale, "needle-scale", opts.NeedleScale, "synthetic traces: amplitude of the needle's feature, in key-noise s.d. (0: feature_scale, 6)")
	f.StringSliceVar(&opts.Traces, "trace", nil, "needle trace `file`s or directories (metadata needle, question, depth_percent) instead of the synthetic grid")

	addMethodFlags(f, &opts.MethodOptions)

	f.StringVar(&opts.Endpoint, "endpoint", "", "model level: base `URL` of an OpenAI-compatible server (vLLM, SGLang) with /tokenize")
	servedModelAlias(f)
	f.StringVar(&opts.ServedModel, "served-model", "", "model level: the served model's `name` (--model works too)")
	f.StringVar(&opts.Haystack, "haystack", "", "model level: `dir`ectory of .txt files for the haystack (default: a built-in filler)")
	f.IntVar(&opts.Samples, "samples", 1, "model level: samples (pass keys) per cell")
	f.StringVar(&opts.Scorer, "scorer", opts.Scorer, "model level: "+strings.Join(niah.ModelScorers(), ", "))
	f.BoolVar(&opts.Chat, "chat", false, "model level: use /v1/chat/completions instead of /v1/completions")
	f.IntVar(&opts.Concurrency, "concurrency", opts.Concurrency, "model level: requests in flight")
	f.IntVar(&opts.Retries, "retries", 0, "model level: extra attempts on a transient failure (0: 3; negative: none)")
	f.DurationVar(&opts.Timeout, "timeout", 0, "model level: per-request timeout (0: 5m)")
	f.IntVar(&opts.MaxTokens, "max-tokens", 0, "model level: tokens per answer (0: 32)")

	f.StringVar(&opts.Out, "out", "", "output `dir`ectory (default results/runs/niah-<UTC time>)")
	return cmd
}

// niahPlan is a checked niah run, ready to go.
type niahPlan struct {
	model    bool
	contexts []int
	depths   []float64
	methods  []indexer.Method
	backend  indexer.Backend
	synth    *niah.SynthGrid
	sources  []trace.Source
	cells    int // grid cells (indexer level)
	close    func()
}

// parseDepths reads --depths: percentages in [0, 100], "%" allowed,
// repeats dropped, as fractions.
func parseDepths(ss []string) ([]float64, error) {
	var out []float64
	for _, s := range ss {
		t := strings.TrimSuffix(strings.TrimSpace(s), "%")
		v, err := strconv.ParseFloat(t, 64)
		if err != nil || v != v || v < 0 || v > 100 {
			return nil, usageErrorf("--depths %q: want a percentage in [0, 100]", s)
		}
		if !slices.Contains(out, v/100) {
			out = append(out, v/100)
		}
	}
	if len(out) == 0 {
		return nil, usageErrorf("--depths is empty: give depths in percent (0,50,100) or leave it out for --depth-points")
	}
	return out, nil
}

// grid resolves the contexts and depths from the flags and the defaults.
func (o *NiahOptions) grid(def niahDefaults) (ctxs []int, depths []float64, err error) {
	if o.CtxPoints < 0 || o.DepthPoints < 0 {
		return nil, nil, usageErrorf("--ctx-points %d and --depth-points %d must not be negative", o.CtxPoints, o.DepthPoints)
	}
	if o.contextsGiven || len(o.Contexts) > 0 {
		if o.Ctx != "" || o.CtxPoints != 0 {
			return nil, nil, usageErrorf("give either --contexts or --ctx/--ctx-points, not both")
		}
		if len(o.Contexts) == 0 {
			return nil, nil, usageErrorf("--contexts is empty: give context lengths (4k,16k) or leave it out for --ctx")
		}
		if ctxs, err = parseContexts(o.Contexts); err != nil {
			return nil, nil, err
		}
		slices.Sort(ctxs)
	} else {
		hi := def.ctx
		if o.Ctx != "" {
			if hi, err = parseCtx(o.Ctx); err != nil {
				return nil, nil, err
			}
			if hi < niah.MinContext {
				return nil, nil, usageErrorf("--ctx %s: the grid runs from 2K (%d tokens) to --ctx, so --ctx must be at least 2K (or list --contexts)", o.Ctx, niah.MinContext)
			}
		}
		n := cmpOr(o.CtxPoints, def.ctxPoints)
		ctxs = niah.ContextAxis(niah.MinContext, hi, n)
	}
	if o.depthsGiven || len(o.Depths) > 0 {
		if o.DepthPoints != 0 {
			return nil, nil, usageErrorf("give either --depths or --depth-points, not both")
		}
		if depths, err = parseDepths(o.Depths); err != nil {
			return nil, nil, err
		}
		slices.Sort(depths)
	} else {
		depths = niah.DepthAxis(cmpOr(o.DepthPoints, def.depthPoints))
	}
	return ctxs, depths, nil
}

func cmpOr(v, def int) int {
	if v != 0 {
		return v
	}
	return def
}

// methods builds the methods from recall's flags.
func (o *NiahOptions) methods() ([]indexer.Method, error) {
	return o.MethodOptions.buildMethods()
}

// device is the --device value niah uses: as given, else auto in a CUDA
// build and cpu otherwise (so that a CPU-only build says nothing).
func (o *NiahOptions) device() string { return gpuFirstDevice(o.deviceGiven, o.Device) }

// plan checks every option and opens what the run needs.
func (o *NiahOptions) plan(stderr io.Writer) (*niahPlan, error) {
	p := &niahPlan{close: func() {}}
	if o.Endpoint != "" {
		return o.planModel(p)
	}
	if o.Workers < 0 {
		return nil, usageErrorf("--workers %d must not be negative", o.Workers)
	}
	dev := o.device()
	if _, err := parseDevice(dev); err != nil {
		return nil, err
	}
	switch {
	case o.TopK < 0:
		return nil, usageErrorf("--topk %d must not be negative", o.TopK)
	case o.Queries < 0:
		return nil, usageErrorf("--queries %d must not be negative", o.Queries)
	case o.NeedleLen < 1:
		return nil, usageErrorf("--needle-len %d must be at least 1", o.NeedleLen)
	case !(o.NeedleFocus >= 0) || o.NeedleFocus > 1e6:
		return nil, usageErrorf("--needle-focus %g must be in [0, 1e6] (0: unfocused)", o.NeedleFocus)
	case !(o.NeedleScale >= 0) || o.NeedleScale > 1e6:
		return nil, usageErrorf("--needle-scale %g must be in [0, 1e6] (0: the feature amplitude)", o.NeedleScale)
	}
	if err := checkLayers(o.Layers); err != nil {
		return nil, err
	}
	methods, err := o.methods()
	if err != nil {
		return nil, err
	}
	p.methods = methods

	if len(o.Traces) > 0 {
		if err := o.openTraces(p, stderr); err != nil {
			return nil, err
		}
	} else if _, _, err := o.grid(niahCPUDefaults); err != nil {
		return nil, err // bad grid flags fail before a GPU is opened
	}
	newB := o.newBackend
	if newB == nil {
		newB = newBackend
	}
	backend, err := newB(dev, o.Workers, stderr)
	if err != nil {
		p.close()
		return nil, err
	}
	closeSources := p.close
	p.backend = backend
	p.close = func() {
		if c, ok := backend.(io.Closer); ok {
			c.Close()
		}
		closeSources()
	}
	if len(o.Traces) > 0 {
		return p, nil
	}

	def := niahCPUDefaults
	if _, cpu := backend.(*indexer.CPU); !cpu {
		def = niahGPUDefaults
	}
	if err := o.planSynthetic(p, def); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// planSynthetic resolves the synthetic grid.
func (o *NiahOptions) planSynthetic(p *niahPlan, def niahDefaults) error {
	ctxs, depths, err := o.grid(def)
	if err != nil {
		return err
	}
	layers := o.Layers
	if len(layers) == 0 {
		layers = def.layers
	}
	cfg, err := synthConfig(o.Preset, 0, cmpOr(o.Queries, def.queries), o.Seed, layers, o.TopK)
	if err != nil {
		return err
	}
	for _, m := range p.methods {
		if err := m.Validate(cfg.Heads); err != nil {
			return usageErrorf("%v (the %s preset has %d indexer heads)", err, cfg.Model, cfg.Heads)
		}
	}
	needle := &trace.NeedleSpec{Len: o.NeedleLen, Focus: o.NeedleFocus, Scale: o.NeedleScale}
	// Check the smallest context here, so that a grid that cannot hold
	// the needle and the question fails before the backend starts.
	for _, c := range ctxs {
		t := cfg
		t.NCtx = c
		n := *needle
		t.Needle = &n
		if err := t.Validate(); err != nil {
			return usageErrorf("context %s: %v", niah.CtxLabel(c), err)
		}
	}
	p.contexts, p.depths = ctxs, depths
	p.synth = &niah.SynthGrid{Base: cfg, Needle: needle, Contexts: ctxs, Depths: depths}
	p.cells = len(ctxs) * len(depths)
	return nil
}

// openTraces opens the --trace files and counts the grid's cells.
func (o *NiahOptions) openTraces(p *niahPlan, stderr io.Writer) error {
	if o.Ctx != "" || o.CtxPoints != 0 || o.DepthPoints != 0 || len(o.Contexts) > 0 || len(o.Depths) > 0 || o.Queries != 0 || o.Seed != 0 {
		fmt.Fprintln(stderr, "misabench: note: the grid flags (--ctx, --ctx-points, --contexts, --depths, --depth-points) and --queries, --seed apply to the synthetic grid only; with --trace the traces make the grid")
	}
	eo := ExperimentOptions{Traces: o.Traces, Layers: o.Layers, TopK: o.TopK}
	srcs, _, closeAll, err := eo.sources(stderr)
	if err != nil {
		return err
	}
	p.sources, p.close = srcs, closeAll
	type key struct {
		n int
		d float64
	}
	cells := map[key]bool{}
	for _, s := range srcs {
		m := s.Meta()
		if len(m.Needle) == 0 || m.Question == nil || m.DepthPercent == nil {
			closeAll()
			return badInput(fmt.Errorf("trace %s has no needle metadata (needle, question and depth_percent are required; write needle traces with misabench trace gen --needle-depth D, or dump them with their needle span)", s.Name()))
		}
		for _, m2 := range p.methods {
			if err := m2.Validate(m.Heads); err != nil {
				closeAll()
				return usageErrorf("%v (%s has %d indexer heads)", err, s.Name(), m.Heads)
			}
		}
		cells[key{m.NCtx, *m.DepthPercent}] = true
	}
	p.cells = len(cells)
	return nil
}

// planModel resolves the model-level grid.
func (o *NiahOptions) planModel(p *niahPlan) (*niahPlan, error) {
	if len(o.Traces) > 0 {
		return nil, usageErrorf("--endpoint runs the model-level test; --trace is for the indexer level: give one or the other")
	}
	if strings.TrimSpace(o.ServedModel) == "" {
		return nil, usageErrorf("--endpoint needs --model (--served-model), the name the server serves the model under")
	}
	ctxs, depths, err := o.grid(niahModelDefaults)
	if err != nil {
		return nil, err
	}
	p.model, p.contexts, p.depths = true, ctxs, depths
	p.cells = len(ctxs) * len(depths)
	return p, nil
}

// runNiah runs `misabench niah` and writes its outputs.
func runNiah(ctx context.Context, o *NiahOptions) error {
	format, err := parseFormat(o.Format, "table", "json", "csv")
	if err != nil {
		return err
	}
	stdout, stderr := writerOr(o.Stdout), writerOr(o.Stderr)
	now := o.Now
	if now == nil {
		now = time.Now
	}
	p, err := o.plan(stderr)
	if err != nil {
		return err
	}
	defer p.close()

	out := o.Out
	if out == "" {
		out = niahOutDir(now())
	}
	if fi, err := os.Stat(out); err == nil && !fi.IsDir() {
		return usageErrorf("--out %s exists and is not a directory", out)
	}
	start := time.Now()
	var res *niah.Result
	var note string
	if p.model {
		res, err = o.runModelLevel(ctx, p, out, stderr)
	} else {
		res, note, err = o.runIndexerLevel(ctx, p, stderr)
	}
	if err != nil {
		return err
	}
	res.Version = versionString()
	res.Created = now().UTC()
	res.WallSeconds = time.Since(start).Seconds()

	// Render stdout first, so that a failure there leaves no files behind.
	var buf bytes.Buffer
	switch format {
	case "json":
		err = niah.WriteJSON(&buf, res)
	case "csv":
		err = niah.WriteCSV(&buf, res)
	default:
		caption := ""
		for _, n := range res.Notes {
			caption += "note: " + n + "\n"
		}
		err = niah.SummaryTable(&buf, res, strings.TrimSuffix(caption, "\n"))
	}
	if err != nil {
		return err
	}
	var names []string
	if err := writeDir(out, func(dir string) error {
		var err error
		names, err = niah.WriteFiles(dir, res, note)
		return err
	}); err != nil {
		return err
	}
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "misabench: niah: %s in %s\n", niahWhat(res, p), fmtWall(res.WallSeconds))
	fmt.Fprintf(stderr, "misabench: wrote %s (%s)\n", out, strings.Join(names, ", "))
	return nil
}

// niahWhat describes a finished run in a few words for stderr.
func niahWhat(res *niah.Result, p *niahPlan) string {
	if p.model {
		return fmt.Sprintf("%s (%s × %s), model level", plural(p.cells, "cell"), plural(len(p.contexts), "context"), plural(len(p.depths), "depth"))
	}
	g := res.Grids[0]
	rows := 0
	for _, row := range g.Cells {
		for _, c := range row {
			rows = max(rows, c.N)
		}
	}
	return fmt.Sprintf("%s (%s × %s) × %s, %s, %s per cell, on %s",
		plural(p.cells, "cell"), plural(len(g.Contexts), "context"), plural(len(g.Depths), "depth"),
		plural(len(res.Grids), "method"), plural(len(g.Layers), "layer"), plural(rows, "question row"), res.Backend)
}

// plural writes "1 cell", "2 cells".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func fmtWall(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d < time.Minute {
		return fmt.Sprintf("%.1f s", s)
	}
	return d.Round(time.Second).String()
}

// runIndexerLevel runs the synthetic grid or the traces.
func (o *NiahOptions) runIndexerLevel(ctx context.Context, p *niahPlan, stderr io.Writer) (*niah.Result, string, error) {
	bar := newProgress(stderr, o.Progress, "cells")
	iopts := niah.IndexerOptions{Backend: p.backend, Methods: p.methods, Layers: o.Layers, TopK: o.TopK, Progress: bar.update}
	bar.start(p.cells)
	var res *niah.Result
	var err error
	note := ""
	if p.synth != nil {
		res, err = niah.RunSynthetic(ctx, *p.synth, iopts)
		note = "synthetic data (docs/synthetic.md): not a claim about real models"
	} else {
		res, err = niah.RunTraces(ctx, p.sources, iopts)
	}
	bar.finish()
	if err != nil {
		if errors.Is(err, niah.ErrGrid) || errors.Is(err, trace.ErrSynthConfig) {
			return nil, "", badInput(err)
		}
		return nil, "", err
	}
	names := make([]string, len(p.methods))
	for i, m := range p.methods {
		names[i] = m.Name()
	}
	c := map[string]any{
		"level":         niah.LevelIndexer,
		"methods":       names,
		"method_params": methodParams(p.methods),
		"device":        o.device(),
	}
	if o.TopK > 0 {
		c["topk"] = o.TopK
	}
	if p.synth != nil {
		c["preset"] = p.synth.Base.Model
		base := p.synth.Base.WithDefaults()
		base.NCtx = 0 // each cell's own (contexts)
		c["synthetic"] = base
		c["needle"] = p.synth.Needle
		c["contexts"], c["depths"] = p.synth.Contexts, p.synth.Depths
		res.Notes = append(res.Notes, syntheticNote)
		if n := p.synth.Needle; n.Focus > 0 || n.Scale > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("focused synthetic needle (focus %g, scale %g; docs/synthetic.md): DSA keeps it by construction, so DSA's grid checks the harness, not DSA", n.Focus, n.Scale))
		}
	} else {
		c["traces"] = o.Traces
	}
	res.Config = c
	return res, note, nil
}

func methodParams(ms []indexer.Method) []indexer.Method {
	out := make([]indexer.Method, len(ms))
	for i, m := range ms {
		out[i] = m.Normalize()
	}
	return out
}

// runModelLevel runs niah.RunModel with its results kept in out, so that a
// rerun with the same --out resumes.
func (o *NiahOptions) runModelLevel(ctx context.Context, p *niahPlan, out string, stderr io.Writer) (_ *niah.Result, err error) {
	_, statErr := os.Stat(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// A run that fails before any answer leaves no empty directory
		// behind (os.Remove keeps a directory that holds answers).
		defer func() {
			if err != nil {
				os.Remove(out)
			}
		}()
	}
	runModel := o.runModel
	if runModel == nil {
		runModel = niah.RunModel
	}
	bar := newProgress(stderr, o.Progress, "samples")
	mo := niah.ModelOptions{
		Endpoint: o.Endpoint, Model: o.ServedModel, Haystack: o.Haystack,
		Contexts: p.contexts, Depths: p.depths, Samples: o.Samples, Scorer: o.Scorer, Chat: o.Chat,
		Concurrency: o.Concurrency, Retries: o.Retries, Timeout: o.Timeout, Out: out,
		Seed: o.Seed, MaxTokens: o.MaxTokens, Progress: bar.update,
	}
	var g *niah.Grid
	g, err = runModel(ctx, mo)
	bar.finish()
	if err != nil {
		if errors.Is(err, niah.ErrModelOptions) || errors.Is(err, niah.ErrModelEndpoint) || errors.Is(err, niah.ErrModelResults) {
			return nil, badInput(err)
		}
		return nil, err
	}
	if g == nil {
		return nil, failf("niah: the model-level run returned no grid")
	}
	res := &niah.Result{Schema: niah.SchemaV1, Grids: []niah.Grid{*g}}
	res.Config = map[string]any{
		"level": niah.LevelModel, "endpoint": o.Endpoint, "served_model": o.ServedModel, "haystack": o.Haystack,
		"samples": o.Samples, "scorer": o.Scorer, "chat": o.Chat, "seed": o.Seed, "max_tokens": o.MaxTokens,
		"contexts": p.contexts, "depths": p.depths,
	}
	res.Notes = append(res.Notes, fmt.Sprintf("model level, scored with %q (research/evals.md B.3: not the GPT-judge 1–10 scale of published heatmaps)", o.Scorer))
	return res, nil
}

// niahOutDir is results/runs/niah-<UTC time>, with a suffix if a run of
// the same second already took that name.
func niahOutDir(now time.Time) string {
	base := filepath.Join(runsDir, "niah-"+now.UTC().Format("20060102-150405"))
	dir := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
			return dir
		}
		dir = fmt.Sprintf("%s-%d", base, i)
	}
}
