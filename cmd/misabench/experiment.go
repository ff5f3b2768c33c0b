package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/misabench/misabench/eval"
	"github.com/misabench/misabench/indexer"
	"github.com/misabench/misabench/trace"
)

// defaultPreset is the model of the built-in synthetic source.
const defaultPreset = "deepseek-v3.2"

// syntheticNote goes into every result computed on synthetic data.
const syntheticNote = "synthetic data (docs/synthetic.md): exercises the harness; not a claim about real models"

// ExperimentOptions describe one recall experiment: the sources, the
// methods, and where it runs. recall and regress share them.
type ExperimentOptions struct {
	// Traces are trace files or directories; empty means the built-in
	// synthetic source of Preset.
	Traces []string
	// Synthetic source knobs (zero: the preset's value).
	Preset  string
	Ctx     int
	Queries int
	Seed    uint64

	MethodOptions

	// Layers is a subset of layers to evaluate (nil: every layer).
	Layers []int
	// TopK overrides the traces' k (0: from the metadata).
	TopK int
	// By groups rows, e.g. by "dataset" (empty: no groups).
	By string

	Device  string
	Workers int
}

// MethodOptions are the method flags that recall, regress and niah share.
type MethodOptions struct {
	// Methods are method kinds (dsa, misa, misa-dagger, hisa). Every router
	// in Routers gives one MISA and one MISA† method.
	Methods    []string
	Routers    []string
	RouterPool string
	Heads      int
	Block      int
	Stage1     int
	HisaBlock  int
	HisaBlocks int
}

// defaultMethodOptions are the paper's parameters with these methods.
func defaultMethodOptions(methods ...string) MethodOptions {
	d := indexer.Defaults
	return MethodOptions{
		Methods:    methods,
		Routers:    []string{string(d.Router)},
		RouterPool: string(d.Pool),
		Heads:      d.Heads,
		Block:      d.Block,
		Stage1:     d.Stage1,
		HisaBlock:  d.HisaBlock,
		HisaBlocks: d.HisaBlocks,
	}
}

// addMethodFlags binds the method flags to o (defaults from o).
func addMethodFlags(fs *pflag.FlagSet, o *MethodOptions) {
	fs.StringSliceVar(&o.Methods, "methods", o.Methods, "methods to compare with DSA: dsa, misa, misa-dagger, hisa")
	fs.StringSliceVar(&o.Routers, "router", o.Routers, "MISA routers, a comma list to compare several: pooled, selfkey, qnorm, oracle")
	fs.StringVar(&o.RouterPool, "router-pool", o.RouterPool, "pooled router: causal, or reference (the authors' code: the query's own block includes future tokens)")
	fs.IntVar(&o.Heads, "heads", o.Heads, "MISA/MISA†: routed heads h")
	fs.IntVar(&o.Block, "block", o.Block, "MISA/MISA†: pooling block B of the pooled router")
	fs.IntVar(&o.Stage1, "stage1", o.Stage1, "MISA†: stage-1 candidates k1")
	fs.IntVar(&o.HisaBlock, "hisa-block", o.HisaBlock, "HISA: block size B_h")
	fs.IntVar(&o.HisaBlocks, "hisa-blocks", o.HisaBlocks, "HISA: blocks kept m")
}

func defaultExperimentOptions() ExperimentOptions {
	return ExperimentOptions{
		Preset:        defaultPreset,
		MethodOptions: defaultMethodOptions("misa", "misa-dagger", "hisa"),
		Device:        "cpu",
	}
}

// addExperimentFlags binds the experiment flags to o (defaults from o).
func addExperimentFlags(fs *pflag.FlagSet, o *ExperimentOptions) {
	fs.StringSliceVar(&o.Traces, "trace", o.Traces, "trace `file`s or directories (repeatable or a comma list); none: the built-in synthetic source")
	fs.StringVar(&o.Preset, "preset", o.Preset, "synthetic source: model preset (deepseek-v3.2 or glm-5)")
	fs.IntVar(&o.Ctx, "ctx", o.Ctx, "synthetic source: context length in tokens (0: the preset's)")
	fs.IntVar(&o.Queries, "queries", o.Queries, "synthetic source: query rows (0: the preset's)")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "synthetic source: random seed (0: the preset's)")

	addMethodFlags(fs, &o.MethodOptions)

	fs.IntSliceVar(&o.Layers, "layers", o.Layers, "evaluate only these layers (comma list; default: every layer)")
	fs.IntVar(&o.TopK, "topk", o.TopK, "tokens kept k (0: from the trace metadata)")
	fs.StringVar(&o.By, "by", o.By, "also summarise per group of traces: dataset (default: no groups)")
}

// buildMethods turns the method flags into methods, in flag order, each
// router giving one MISA and one MISA†; duplicates are dropped. It checks
// the values that do not depend on the trace.
func (o *MethodOptions) buildMethods() ([]indexer.Method, error) {
	if len(o.Methods) == 0 {
		return nil, usageErrorf("--methods is empty")
	}
	var routers []indexer.Router
	for _, r := range o.Routers {
		r = strings.ToLower(strings.TrimSpace(r))
		switch indexer.Router(r) {
		case indexer.RouterPooled, indexer.RouterSelfKey, indexer.RouterQNorm, indexer.RouterOracle:
			if !slices.Contains(routers, indexer.Router(r)) {
				routers = append(routers, indexer.Router(r))
			}
		default:
			return nil, usageErrorf("unknown --router %q (want pooled, selfkey, qnorm or oracle)", r)
		}
	}
	pool := indexer.Pool(strings.ToLower(strings.TrimSpace(o.RouterPool)))
	if pool != indexer.PoolCausal && pool != indexer.PoolReference {
		return nil, usageErrorf("unknown --router-pool %q (want causal or reference)", o.RouterPool)
	}
	var out []indexer.Method
	add := func(m indexer.Method) {
		n := m.Normalize()
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, s := range o.Methods {
		k, err := indexer.ParseKind(s)
		if err != nil {
			return nil, usageErrorf("--methods: %v", err)
		}
		base := indexer.Method{
			Kind: k, Heads: o.Heads, Block: o.Block, Pool: pool, Stage1: o.Stage1,
			HisaBlock: o.HisaBlock, HisaBlocks: o.HisaBlocks,
		}
		if k == indexer.MISA || k == indexer.MISADagger {
			if len(routers) == 0 {
				return nil, usageErrorf("--router is empty but --methods has %s", k)
			}
			for _, r := range routers {
				m := base
				m.Router = r
				add(m)
			}
			continue
		}
		add(base)
	}
	return out, nil
}

// validateMethods checks every method against a source's head count.
func validateMethods(methods []indexer.Method, src trace.Source) error {
	H := src.Meta().Heads
	for _, m := range methods {
		if err := m.Validate(H); err != nil {
			return usageErrorf("%v (%s has %d indexer heads)", err, src.Name(), H)
		}
	}
	return nil
}

// sources opens the experiment's sources. The returned closer releases them
// (it is never nil).
func (o *ExperimentOptions) sources(stderr io.Writer) (srcs []trace.Source, synthetic bool, closeAll func(), err error) {
	closeAll = func() {}
	if o.TopK < 0 {
		return nil, false, closeAll, usageErrorf("--topk %d must not be negative", o.TopK)
	}
	if err := checkLayers(o.Layers); err != nil {
		return nil, false, closeAll, err
	}
	if len(o.Traces) == 0 {
		src, err := o.synthetic()
		if err != nil {
			return nil, false, closeAll, err
		}
		return []trace.Source{src}, true, closeAll, nil
	}

	if o.Ctx != 0 || o.Queries != 0 || o.Seed != 0 {
		fmt.Fprintln(stderr, "misabench: note: --ctx, --queries and --seed apply to the synthetic source only; ignored with --trace")
	}
	paths, err := trace.Expand(o.Traces)
	if err != nil {
		return nil, false, closeAll, badInput(err)
	}
	if len(paths) == 0 {
		return nil, false, closeAll, usageErrorf("no traces found in %s", strings.Join(o.Traces, ", "))
	}
	var files []*trace.File
	closeAll = func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, p := range paths {
		f, err := trace.Open(p)
		if err != nil {
			closeAll()
			return nil, false, func() {}, badInput(err)
		}
		files = append(files, f)
		meta := f.Meta()
		for _, l := range o.Layers {
			if !meta.HasLayer(l) {
				closeAll()
				return nil, false, func() {}, usageErrorf("--layers: %s has no layer %d (it has %v)", p, l, meta.Layers)
			}
		}
		srcs = append(srcs, f)
	}
	return srcs, false, closeAll, nil
}

// checkLayers checks a --layers list.
func checkLayers(layers []int) error {
	for i, l := range layers {
		if l < 0 {
			return usageErrorf("--layers: layer %d must not be negative", l)
		}
		if slices.Contains(layers[:i], l) {
			return usageErrorf("--layers: layer %d is listed twice", l)
		}
	}
	return nil
}

// synthConfig is the generator configuration the synthetic knobs give.
func synthConfig(preset string, ctx, queries int, seed uint64, layers []int, topk int) (trace.SynthConfig, error) {
	if preset == "" {
		preset = defaultPreset
	}
	cfg, err := trace.SynthPreset(preset)
	if err != nil {
		return cfg, usageErrorf("--preset: %v", err)
	}
	if ctx < 0 || queries < 0 {
		return cfg, usageErrorf("--ctx %d and --queries %d must not be negative", ctx, queries)
	}
	if ctx > 0 {
		cfg.NCtx = ctx
	}
	if queries > 0 {
		cfg.Queries = queries
	}
	if seed != 0 {
		cfg.Seed = seed
	}
	if len(layers) > 0 {
		cfg.Layers = slices.Clone(layers)
	}
	if topk > 0 {
		cfg.TopK = topk
	}
	return cfg, nil
}

func (o *ExperimentOptions) synthetic() (*trace.Synthetic, error) {
	cfg, err := synthConfig(o.Preset, o.Ctx, o.Queries, o.Seed, o.Layers, o.TopK)
	if err != nil {
		return nil, err
	}
	src, err := trace.NewSynthetic(cfg)
	if err != nil {
		return nil, badInput(fmt.Errorf("synthetic source: %w", err))
	}
	return src, nil
}

// experiment is a resolved experiment, ready to run.
type experiment struct {
	opts      ExperimentOptions
	methods   []indexer.Method
	sources   []trace.Source
	synthetic bool
	backend   indexer.Backend
	close     func()
}

// prepare resolves and checks everything an experiment needs before any
// work starts, so that bad input fails fast and leaves nothing behind.
func (o *ExperimentOptions) prepare(stderr io.Writer) (*experiment, error) {
	if o.Workers < 0 {
		return nil, usageErrorf("--workers %d must not be negative", o.Workers)
	}
	if _, err := parseDevice(o.Device); err != nil {
		return nil, err
	}
	switch o.By {
	case "", "dataset":
	default:
		return nil, usageErrorf("unknown --by %q (want dataset, or nothing)", o.By)
	}
	methods, err := o.buildMethods()
	if err != nil {
		return nil, err
	}
	srcs, synthetic, closeAll, err := o.sources(stderr)
	if err != nil {
		return nil, err
	}
	for _, s := range srcs {
		if err := validateMethods(methods, s); err != nil {
			closeAll()
			return nil, err
		}
	}
	backend, err := newBackend(o.Device, o.Workers, stderr)
	if err != nil {
		closeAll()
		return nil, err
	}
	closeBoth := func() {
		if c, ok := backend.(io.Closer); ok {
			c.Close()
		}
		closeAll()
	}
	return &experiment{opts: *o, methods: methods, sources: srcs, synthetic: synthetic, backend: backend, close: closeBoth}, nil
}

// layerCount is the number of layers the run will evaluate.
func (e *experiment) layerCount() int {
	n := 0
	for _, s := range e.sources {
		if len(e.opts.Layers) > 0 {
			n += len(e.opts.Layers)
		} else {
			n += len(s.Meta().Layers)
		}
	}
	return n
}

// run computes the result and fills in what eval.Run leaves to the caller.
func (e *experiment) run(ctx context.Context, progress func(done, total int), now func() time.Time) (*eval.Result, error) {
	var layers []int
	if !e.synthetic {
		layers = e.opts.Layers // the generator makes exactly the layers asked for
	}
	res, err := eval.Run(ctx, e.sources, e.backend, eval.RunOptions{
		Methods:  e.methods,
		Layers:   layers,
		TopK:     e.opts.TopK,
		GroupBy:  e.opts.By,
		Progress: progress,
	})
	if err != nil {
		return nil, err
	}
	res.Version = versionString()
	res.Created = now().UTC()
	res.Config = e.config()
	if e.synthetic {
		res.Notes = append(res.Notes, syntheticNote)
	}
	return res, nil
}

// config records the effective configuration in the result.
func (e *experiment) config() map[string]any {
	o := e.opts
	names := make([]string, len(e.methods))
	params := make([]indexer.Method, len(e.methods))
	for i, m := range e.methods {
		names[i], params[i] = m.Name(), m.Normalize()
	}
	c := map[string]any{
		"methods":       names,
		"method_params": params,
		"device":        o.Device,
	}
	if len(o.Layers) > 0 {
		c["layers"] = o.Layers
	}
	if o.TopK > 0 {
		c["topk"] = o.TopK
	}
	if o.By != "" {
		c["by"] = o.By
	}
	if e.synthetic {
		c["preset"] = o.Preset
		if s, ok := e.sources[0].(interface{ Config() trace.SynthConfig }); ok {
			c["synthetic"] = s.Config()
		} else {
			c["ctx"], c["queries"], c["seed"] = o.Ctx, o.Queries, o.Seed
		}
	} else {
		c["traces"] = o.Traces
	}
	return c
}
