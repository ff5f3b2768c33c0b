package niah

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/misabench/misabench/indexer"
	"github.com/misabench/misabench/trace"
)

// The indexer-level test (DESIGN.md §2, "Needle retention"): for every cell
// of a context × depth grid, a trace with a needle span and question rows;
// every method selects its tokens for the question rows, and the cell's
// score is the share of the needle's tokens in the selected sets, averaged
// over the question rows, per layer, and its minimum over the layers.

// LevelIndexer and LevelModel are the values of Grid.Level.
const (
	LevelIndexer = "indexer"
	LevelModel   = "model"
)

// IndexerOptions say how the cells of an indexer-level grid are run.
type IndexerOptions struct {
	// Backend runs the methods (the CPU reference or the GPU).
	Backend indexer.Backend
	// Methods are the methods to score, one grid each, in this order. A
	// DSA method is scored from the backend's reference selection (it is
	// not passed to the backend); the others are run as given.
	Methods []indexer.Method
	// Layers restricts the run to these layers (nil: every layer of the
	// sources, which must then all have the same layers).
	Layers []int
	// TopK overrides the sources' k when positive.
	TopK int
	// Progress, when set, is called after each cell with the cells done
	// and the total, from one goroutine at a time.
	Progress func(done, total int)
}

// SynthGrid is a grid of synthetic needle traces: one trace per cell, made
// by the generator from Base with NCtx set to the cell's context and a
// needle (Needle's Len, Focus and Scale; the cell's depth) planted.
type SynthGrid struct {
	// Base is the generator configuration (geometry, layers, question
	// rows as Queries, seed, structure knobs). Its NCtx is ignored.
	Base trace.SynthConfig
	// Needle is the needle template; its Depth is ignored. Nil means a
	// needle of trace.DefaultNeedleLen tokens without focus (DSA may then
	// miss part of it; see docs/synthetic.md).
	Needle   *trace.NeedleSpec
	Contexts []int
	// Depths are fractions 0..1 (trace.NeedleSpec.Depth).
	Depths []float64
}

// ErrNoNeedle is wrapped by the errors about traces that cannot be scored
// for needle retention: no needle or question metadata, no question rows,
// a needle that is not entirely before the question.
var ErrNoNeedle = errors.New("no usable needle")

// ErrGrid is wrapped by the errors about an unusable grid (no contexts or
// depths, a depth outside 0..1, a context too short for the needle).
var ErrGrid = errors.New("bad needle grid")

// Retention is the share of the needle's tokens (the union of the spans)
// found in set, which must be ascending (as a backend returns it). A needle
// of no tokens gives 0.
func Retention(set []int32, needle []trace.Span) float64 {
	total, found := 0, 0
	for _, sp := range mergeSpans(needle) {
		total += sp.Len()
		lo := sort.Search(len(set), func(i int) bool { return int(set[i]) >= sp.Start })
		hi := sort.Search(len(set), func(i int) bool { return int(set[i]) >= sp.End })
		found += hi - lo
	}
	if total == 0 {
		return 0
	}
	return float64(found) / float64(total)
}

// MeanRetention is Retention averaged over sets (0 for no sets).
func MeanRetention(sets [][]int32, needle []trace.Span) float64 {
	if len(sets) == 0 {
		return 0
	}
	sum := 0.0
	for _, s := range sets {
		sum += Retention(s, needle)
	}
	return sum / float64(len(sets))
}

// mergeSpans sorts the non-empty spans and merges overlapping ones, so
// that a token listed twice counts once.
func mergeSpans(spans []trace.Span) []trace.Span {
	var out []trace.Span
	for _, s := range spans {
		if s.End > s.Start {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b trace.Span) int { return cmp.Compare(a.Start, b.Start) })
	merged := out[:0]
	for _, s := range out {
		if n := len(merged); n > 0 && s.Start <= merged[n-1].End {
			merged[n-1].End = max(merged[n-1].End, s.End)
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// QuestionRows returns the range [lo, hi) of the rows of qpos (ascending)
// whose positions lie in the question span.
func QuestionRows(qpos []int64, q trace.Span) (lo, hi int) {
	lo = sort.Search(len(qpos), func(i int) bool { return qpos[i] >= int64(q.Start) })
	hi = sort.Search(len(qpos), func(i int) bool { return qpos[i] >= int64(q.End) })
	return lo, hi
}

// checkNeedle checks that a source can be scored: it has a needle and a
// question, the needle lies inside the sequence and before the first
// question row, and some query rows are question rows. It returns the
// question rows' range.
func checkNeedle(src trace.Source) (lo, hi int, err error) {
	m := src.Meta()
	bad := func(format string, a ...any) error {
		return &trace.FormatError{File: src.Name(), Rule: fmt.Sprintf("%v: ", ErrNoNeedle) + fmt.Sprintf(format, a...)}
	}
	switch {
	case len(m.Needle) == 0:
		return 0, 0, bad("the metadata has no needle (needle-in-a-haystack traces need \"needle\", \"question\" and \"depth_percent\", e.g. from misabench trace gen --needle-depth 0.5)")
	case m.Question == nil:
		return 0, 0, bad("the metadata has a needle but no \"question\" span, so no query row is known to ask for it")
	}
	q := *m.Question
	if q.Start < 0 || q.End > m.NCtx || q.End <= q.Start {
		return 0, 0, bad("question span [%d,%d) is not a non-empty span inside [0,%d)", q.Start, q.End, m.NCtx)
	}
	for _, sp := range m.Needle {
		if sp.Start < 0 || sp.End <= sp.Start || sp.End > q.Start {
			return 0, 0, bad("needle span [%d,%d) is not a non-empty span before the question [%d,%d)", sp.Start, sp.End, q.Start, q.End)
		}
	}
	lo, hi = QuestionRows(src.QPos(), q)
	if hi == lo {
		return 0, 0, bad("no query row lies in the question span [%d,%d)", q.Start, q.End)
	}
	return lo, hi, nil
}

// cellPlan is one cell to run: its grid position and how to open its
// sources (one or more traces whose question rows are pooled).
type cellPlan struct {
	di, ci  int
	sources func() ([]trace.Source, error)
}

// plannedGrid is what RunSynthetic and RunTraces hand to run.
type plannedGrid struct {
	contexts []int
	depths   []float64
	layers   []int
	cells    []cellPlan
}

// RunSynthetic runs the indexer-level test on a synthetic grid. It checks
// every cell's configuration before any work starts.
func RunSynthetic(ctx context.Context, g SynthGrid, o IndexerOptions) (*Result, error) {
	if len(g.Contexts) == 0 {
		return nil, fmt.Errorf("%w: no context lengths", ErrGrid)
	}
	if len(g.Depths) == 0 {
		return nil, fmt.Errorf("%w: no depths", ErrGrid)
	}
	for i, c := range g.Contexts {
		if slices.Contains(g.Contexts[:i], c) {
			return nil, fmt.Errorf("%w: context length %d given twice", ErrGrid, c)
		}
	}
	for i, d := range g.Depths {
		if math.IsNaN(d) || d < 0 || d > 1 {
			return nil, fmt.Errorf("%w: depth %v is outside 0..1", ErrGrid, d)
		}
		if slices.Contains(g.Depths[:i], d) {
			return nil, fmt.Errorf("%w: depth %v given twice", ErrGrid, d)
		}
	}
	base := g.Base
	if len(o.Layers) > 0 {
		base.Layers = slices.Clone(o.Layers)
	}
	if o.TopK > 0 {
		base.TopK = o.TopK
	}
	needle := trace.NeedleSpec{}
	if g.Needle != nil {
		needle = *g.Needle
	}
	cfgOf := func(c int, d float64) trace.SynthConfig {
		cfg := base
		cfg.Layers = slices.Clone(base.Layers)
		cfg.NCtx = c
		n := needle
		n.Depth = d
		cfg.Needle = &n
		return cfg
	}
	p := &plannedGrid{contexts: slices.Clone(g.Contexts), depths: slices.Clone(g.Depths), layers: slices.Clone(base.Layers)}
	for ci, c := range g.Contexts {
		for di, d := range g.Depths {
			cfg := cfgOf(c, d)
			if err := cfg.Validate(); err != nil {
				return nil, fmt.Errorf("%w: context %d, depth %v: %w", ErrGrid, c, d, err)
			}
			p.cells = append(p.cells, cellPlan{di: di, ci: ci, sources: func() ([]trace.Source, error) {
				s, err := trace.NewSynthetic(cfg)
				if err != nil {
					return nil, err
				}
				return []trace.Source{s}, nil
			}})
		}
	}
	for _, m := range o.Methods {
		if err := m.Validate(base.Heads); err != nil {
			return nil, err
		}
	}
	return run(ctx, p, o)
}

// RunTraces runs the indexer-level test on traces whose metadata marks a
// needle ("needle"), a question ("question") and the needle's depth
// ("depth_percent"). Traces are grouped into cells by n_ctx and
// depth_percent; the question rows of the traces of one cell are pooled.
// Every trace is checked before any work starts: one without the needle
// metadata is an error wrapping ErrNoNeedle (a *trace.FormatError).
func RunTraces(ctx context.Context, srcs []trace.Source, o IndexerOptions) (*Result, error) {
	if len(srcs) == 0 {
		return nil, fmt.Errorf("%w: no traces", ErrGrid)
	}
	type key struct {
		ctx   int
		depth float64
	}
	groups := map[key][]trace.Source{}
	var ctxs []int
	var depths []float64
	layers := slices.Clone(o.Layers)
	for _, s := range srcs {
		m := s.Meta()
		if _, _, err := checkNeedle(s); err != nil {
			return nil, err
		}
		if m.DepthPercent == nil {
			return nil, &trace.FormatError{File: s.Name(), Rule: fmt.Sprintf("%v: the metadata has a needle but no \"depth_percent\", so the trace has no place in the grid", ErrNoNeedle)}
		}
		dp := *m.DepthPercent
		if math.IsNaN(dp) || dp < 0 || dp > 100 {
			return nil, &trace.FormatError{File: s.Name(), Rule: fmt.Sprintf("depth_percent %v is outside 0..100", dp)}
		}
		if layers == nil {
			layers = slices.Clone(m.Layers)
		}
		for _, l := range layers {
			if !m.HasLayer(l) {
				what := "the other traces'"
				if len(o.Layers) > 0 {
					what = "the requested"
				}
				return nil, &trace.FormatError{File: s.Name(), Tensor: fmt.Sprintf("layers.%d", l),
					Rule: fmt.Sprintf("layer %d (one of %s layers %v) is not in the trace (it has %v); choose common layers", l, what, layers, m.Layers)}
			}
		}
		if len(o.Layers) == 0 && len(m.Layers) != len(layers) {
			return nil, &trace.FormatError{File: s.Name(), Rule: fmt.Sprintf("has layers %v, the other traces %v; choose common layers", m.Layers, layers)}
		}
		for _, meth := range o.Methods {
			if err := meth.Validate(m.Heads); err != nil {
				return nil, fmt.Errorf("%s: %w", s.Name(), err)
			}
		}
		k := key{m.NCtx, dp / 100}
		groups[k] = append(groups[k], s)
		if !slices.Contains(ctxs, k.ctx) {
			ctxs = append(ctxs, k.ctx)
		}
		if !slices.Contains(depths, k.depth) {
			depths = append(depths, k.depth)
		}
	}
	slices.Sort(ctxs)
	slices.Sort(depths)
	p := &plannedGrid{contexts: ctxs, depths: depths, layers: layers}
	for ci, c := range ctxs {
		for di, d := range depths {
			if ss, ok := groups[key{c, d}]; ok {
				p.cells = append(p.cells, cellPlan{di: di, ci: ci, sources: func() ([]trace.Source, error) { return ss, nil }})
			}
		}
	}
	return run(ctx, p, o)
}

// job is one layer of one source of one cell, ready for the backend.
type job struct {
	cell  int // index into plannedGrid.cells
	layer int // index into plannedGrid.layers
	in    *indexer.Input
	// needle is the source's needle; last marks the cell's last job.
	needle []trace.Span
	last   bool
}

// run executes a planned grid: a producer goroutine generates (or decodes)
// one layer ahead while the backend runs the current one, so that on a GPU
// host the CPU-side generation overlaps the kernels.
func run(ctx context.Context, p *plannedGrid, o IndexerOptions) (*Result, error) {
	if o.Backend == nil {
		return nil, errors.New("niah: no backend")
	}
	if len(o.Methods) == 0 {
		return nil, errors.New("niah: no methods")
	}
	if len(p.layers) == 0 {
		return nil, fmt.Errorf("%w: no layers", ErrGrid)
	}
	// The methods passed to the backend: all but DSA, which is the
	// reference every backend returns anyway.
	var backendMethods []indexer.Method
	slot := make([]int, len(o.Methods)) // index into Output.Methods, -1: the reference
	for i, m := range o.Methods {
		if m.Kind == indexer.DSA {
			slot[i] = -1
			continue
		}
		slot[i] = len(backendMethods)
		backendMethods = append(backendMethods, m)
	}

	nm, nl := len(o.Methods), len(p.layers)
	res := &Result{Schema: SchemaV1, Backend: o.Backend.Name()}
	grids := make([]Grid, nm)
	for i, m := range o.Methods {
		grids[i] = Grid{Method: m.Name(), Level: LevelIndexer, Contexts: slices.Clone(p.contexts),
			Depths: slices.Clone(p.depths), Layers: slices.Clone(p.layers), Cells: make([][]Cell, len(p.depths))}
		for di, d := range p.depths {
			row := make([]Cell, len(p.contexts))
			for ci, c := range p.contexts {
				row[ci] = Cell{Ctx: c, Depth: d}
			}
			grids[i].Cells[di] = row
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan job, 1)
	var prodErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		prodErr = produce(ctx, p, o.TopK, jobs)
	}()

	// sums[m][l] and rows accumulate the current cell.
	sums := make([][]float64, nm)
	for i := range sums {
		sums[i] = make([]float64, nl)
	}
	rows := make([]int, nl)
	done := 0
	var runErr error
	for j := range jobs {
		if runErr != nil {
			continue // drain, so that the producer can stop
		}
		out, err := o.Backend.Run(ctx, j.in, backendMethods)
		if err != nil {
			runErr = fmt.Errorf("context %d, layer %d: %w", p.contexts[p.cells[j.cell].ci], p.layers[j.layer], err)
			cancel()
			continue
		}
		for i := range o.Methods {
			sets := out.Reference
			if slot[i] >= 0 {
				sets = out.Methods[slot[i]].Sets
			}
			for _, s := range sets {
				sums[i][j.layer] += Retention(s, j.needle)
			}
		}
		rows[j.layer] += j.in.Rows()
		if !j.last {
			continue
		}
		cp := p.cells[j.cell]
		for i := range o.Methods {
			c := &grids[i].Cells[cp.di][cp.ci]
			c.PerLayer = make([]float64, nl)
			c.Score = math.Inf(1)
			for l := range nl {
				c.PerLayer[l] = sums[i][l] / float64(rows[l])
				c.Score = min(c.Score, c.PerLayer[l])
				sums[i][l] = 0
			}
			c.N = rows[0]
		}
		clear(rows)
		done++
		if o.Progress != nil {
			o.Progress(done, len(p.cells))
		}
	}
	wg.Wait()
	if runErr != nil {
		return nil, runErr
	}
	if prodErr != nil {
		return nil, prodErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.Grids = grids
	return res, nil
}

// produce sends the jobs of every cell in order, one layer at a time.
func produce(ctx context.Context, p *plannedGrid, topk int, jobs chan<- job) error {
	for ci, cp := range p.cells {
		srcs, err := cp.sources()
		if err != nil {
			return err
		}
		for si, src := range srcs {
			meta := src.Meta()
			lo, hi, err := checkNeedle(src)
			if err != nil {
				return err
			}
			k := meta.TopK
			if topk > 0 {
				k = topk
			}
			qpos := src.QPos()[lo:hi]
			H, D := meta.Heads, meta.HeadDim
			for li, l := range p.layers {
				if err := ctx.Err(); err != nil {
					return err
				}
				layer, err := src.Layer(ctx, l)
				if err != nil {
					return err
				}
				in := &indexer.Input{
					H: H, D: D, TopK: k, N: src.NKeys(), QPos: qpos,
					Q: layer.Q[lo*H*D : hi*H*D], W: layer.W[lo*H : hi*H], K: layer.K,
				}
				j := job{cell: ci, layer: li, in: in, needle: meta.Needle, last: si == len(srcs)-1 && li == len(p.layers)-1}
				select {
				case jobs <- j:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
	}
	return nil
}
