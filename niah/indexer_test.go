package niah

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/misabench/misabench/indexer"
	"github.com/misabench/misabench/trace"
)

func TestRetentionExact(t *testing.T) {
	needle := []trace.Span{{Start: 10, End: 14}, {Start: 20, End: 22}} // 6 tokens
	for _, tc := range []struct {
		set  []int32
		want float64
	}{
		{nil, 0},
		{[]int32{0, 1, 2, 3}, 0},
		{[]int32{0, 10, 11, 13, 21, 50}, 4.0 / 6},
		{[]int32{10, 11, 12, 13, 20, 21}, 1},
		{[]int32{9, 14, 19, 22}, 0}, // the span ends are exclusive
		{[]int32{5, 12, 100}, 1.0 / 6},
	} {
		if got := Retention(tc.set, needle); got != tc.want {
			t.Errorf("Retention(%v) = %v, want %v", tc.set, got, tc.want)
		}
	}
	// Overlapping and repeated spans count each token once; empty spans
	// count nothing.
	overl := []trace.Span{{Start: 12, End: 16}, {Start: 10, End: 14}, {Start: 10, End: 14}, {Start: 30, End: 30}}
	if got := Retention([]int32{10, 15, 16}, overl); got != 2.0/6 {
		t.Errorf("overlapping spans: %v, want 1/3", got)
	}
	if got := Retention([]int32{1, 2}, nil); got != 0 {
		t.Errorf("no needle: %v", got)
	}
	sets := [][]int32{{10, 11, 12}, {10, 11, 12, 13, 20, 21}, {}}
	if got, want := MeanRetention(sets, needle), (3.0/6+1+0)/3; math.Abs(got-want) > 1e-15 {
		t.Errorf("MeanRetention = %v, want %v", got, want)
	}
	if got := MeanRetention(nil, needle); got != 0 {
		t.Errorf("MeanRetention of no sets = %v", got)
	}
}

func TestQuestionRows(t *testing.T) {
	qpos := []int64{3, 50, 90, 91, 92, 99}
	lo, hi := QuestionRows(qpos, trace.Span{Start: 90, End: 100})
	if lo != 2 || hi != 6 {
		t.Errorf("QuestionRows = [%d,%d), want [2,6)", lo, hi)
	}
	if lo, hi := QuestionRows(qpos, trace.Span{Start: 51, End: 90}); lo != hi {
		t.Errorf("no rows in span: [%d,%d)", lo, hi)
	}
}

// ixSource is an in-memory trace.Source.
type ixSource struct {
	name   string
	meta   trace.Meta
	qpos   []int64
	n      int
	layers map[int]*trace.Layer
}

func (s *ixSource) Name() string     { return s.name }
func (s *ixSource) Meta() trace.Meta { return s.meta }
func (s *ixSource) QPos() []int64    { return slices.Clone(s.qpos) }
func (s *ixSource) NKeys() int       { return s.n }
func (s *ixSource) Hash() string     { return s.name }
func (s *ixSource) Layer(_ context.Context, l int) (*trace.Layer, error) {
	if ly, ok := s.layers[l]; ok {
		return ly, nil
	}
	return nil, fmt.Errorf("%s: no layer %d", s.name, l)
}

// ixNewSource makes a source of n keys with rows at qpos (H = 1, D = 1),
// a needle, a question span and a depth, and layers whose W encodes the
// layer so that ixBackend can tell them apart.
func ixNewSource(name string, n int, qpos []int64, needle []trace.Span, question *trace.Span, depth *float64, layers ...int) *ixSource {
	s := &ixSource{name: name, qpos: qpos, n: n, layers: map[int]*trace.Layer{}}
	s.meta = trace.Meta{Format: trace.FormatV1, Model: "test", NCtx: n, Heads: 1, HeadDim: 1, TopK: 4,
		Layers: layers, Needle: needle, Question: question, DepthPercent: depth}
	for _, l := range layers {
		w := make([]float32, len(qpos))
		for i := range w {
			w[i] = float32(l)
		}
		s.layers[l] = &trace.Layer{Index: l, K: make([]float32, n), Q: make([]float32, len(qpos)), W: w}
	}
	return s
}

// ixBackend returns hand-made selections: for row t of a layer (read from
// W), the reference is pick(layer, pos, "dsa") and every method's set is
// pick(layer, pos, kind).
type ixBackend struct {
	pick  func(layer int, pos int64, kind indexer.Kind) []int32
	calls int
	rows  []int
}

func (b *ixBackend) Name() string { return "hand" }
func (b *ixBackend) Run(_ context.Context, in *indexer.Input, methods []indexer.Method) (*indexer.Output, error) {
	if err := in.Check(); err != nil {
		return nil, err
	}
	b.calls++
	b.rows = append(b.rows, in.Rows())
	out := &indexer.Output{Reference: make([][]int32, in.Rows()), Methods: make([]indexer.MethodOutput, len(methods))}
	for i, m := range methods {
		if m.Kind == indexer.DSA {
			return nil, fmt.Errorf("DSA passed to the backend")
		}
		out.Methods[i] = indexer.MethodOutput{Method: m, Sets: make([][]int32, in.Rows())}
	}
	for t, p := range in.QPos {
		layer := int(in.W[t])
		out.Reference[t] = b.pick(layer, p, indexer.DSA)
		for i, m := range methods {
			out.Methods[i].Sets[t] = b.pick(layer, p, m.Kind)
		}
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }

// TestRunTracesHandBuilt checks the whole indexer-level pipeline on
// hand-made selections: question rows only, exact per-layer fractions, the
// minimum over layers, cells grouped by n_ctx and depth_percent, question
// rows of two traces of one cell pooled.
func TestRunTracesHandBuilt(t *testing.T) {
	needle := []trace.Span{{Start: 10, End: 14}} // 4 tokens
	q := &trace.Span{Start: 90, End: 100}
	// Rows at 50 (not a question row) and 95, 97, 99.
	qpos := []int64{50, 95, 97, 99}
	a := ixNewSource("a", 100, qpos, needle, q, ptr(25.0), 0, 3)
	b := ixNewSource("b", 100, qpos, needle, q, ptr(75.0), 0, 3)
	c := ixNewSource("c", 200, []int64{195, 199}, needle, &trace.Span{Start: 190, End: 200}, ptr(25.0), 0, 3)
	c2 := ixNewSource("c2", 200, []int64{198}, needle, &trace.Span{Start: 190, End: 200}, ptr(25.0), 0, 3)

	be := &ixBackend{pick: func(layer int, pos int64, kind indexer.Kind) []int32 {
		switch {
		case pos == 50:
			return []int32{} // a non-question row: must never count
		case kind == indexer.DSA:
			return []int32{10, 11, 12, 13}
		case kind == indexer.MISA && layer == 0:
			// 95: 1/4, 97: 2/4, 99: 4/4 → mean 7/12
			switch pos {
			case 95:
				return []int32{1, 10}
			case 97:
				return []int32{10, 13}
			case 195, 198:
				return []int32{10, 11, 12}
			}
			return []int32{10, 11, 12, 13}
		case kind == indexer.MISA && layer == 3:
			return []int32{11, 12, 13, 50} // 3/4 on every row
		}
		return []int32{13} // HISA: 1/4
	}}
	methods := []indexer.Method{{Kind: indexer.DSA}, {Kind: indexer.MISA, Heads: 1, Router: indexer.RouterQNorm},
		{Kind: indexer.HISA, HisaBlock: 1, HisaBlocks: 1}}
	var progress [][2]int
	res, err := RunTraces(context.Background(), []trace.Source{c, b, a, c2}, IndexerOptions{
		Backend: be, Methods: methods,
		Progress: func(done, total int) { progress = append(progress, [2]int{done, total}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Grids) != 3 || res.Schema != SchemaV1 || res.Backend != "hand" {
		t.Fatalf("result: %+v", res)
	}
	g := res.Grids[1]
	if g.Method != methods[1].Name() || g.Level != LevelIndexer {
		t.Errorf("grid %q level %q", g.Method, g.Level)
	}
	if !slices.Equal(g.Contexts, []int{100, 200}) || !slices.Equal(g.Depths, []float64{0.25, 0.75}) || !slices.Equal(g.Layers, []int{0, 3}) {
		t.Fatalf("axes: contexts %v depths %v layers %v", g.Contexts, g.Depths, g.Layers)
	}
	// (100, 25%): trace a.
	cell := g.Cells[0][0]
	if cell.Ctx != 100 || cell.Depth != 0.25 || cell.N != 3 {
		t.Errorf("cell %+v", cell)
	}
	if want := []float64{7.0 / 12, 0.75}; !slices.Equal(cell.PerLayer, want) || cell.Score != 7.0/12 {
		t.Errorf("misa cell (100, 25%%): per layer %v score %v, want %v and %v", cell.PerLayer, cell.Score, want, 7.0/12)
	}
	// (200, 25%): traces c and c2 pooled: rows 195 (3/4), 199 (4/4), 198 (3/4).
	cell = g.Cells[0][1]
	if want := (0.75 + 1 + 0.75) / 3; cell.N != 3 || math.Abs(cell.PerLayer[0]-want) > 1e-15 || cell.Score != 0.75 {
		t.Errorf("misa cell (200, 25%%): %+v, want layer 0 %v, score 0.75", cell, want)
	}
	// (200, 75%): no trace.
	if cell := g.Cells[1][1]; cell.HasData() || cell.PerLayer != nil {
		t.Errorf("empty cell has data: %+v", cell)
	}
	for _, row := range res.Grids[0].Cells {
		for _, c := range row {
			if c.HasData() && (c.Score != 1 || !slices.Equal(c.PerLayer, []float64{1, 1})) {
				t.Errorf("dsa cell %+v", c)
			}
		}
	}
	if c := res.Grids[2].Cells[1][0]; c.Score != 0.25 || c.Depth != 0.75 {
		t.Errorf("hisa cell (100, 75%%): %+v", c)
	}
	// One backend call per layer per trace, with the question rows only.
	if be.calls != 8 {
		t.Errorf("%d backend calls, want 8", be.calls)
	}
	for _, r := range be.rows {
		if r > 3 {
			t.Errorf("a backend call got %d rows (the non-question row leaked)", r)
		}
	}
	if want := [][2]int{{1, 3}, {2, 3}, {3, 3}}; !slices.Equal(progress, want) {
		t.Errorf("progress %v, want %v", progress, want)
	}

	s := Summarize(&g)
	if s.Cells != 3 || s.Green != 0 || s.Worst == nil || s.Worst.Ctx != 100 || s.Worst.Depth != 0.25 || s.Min != 7.0/12 {
		t.Errorf("summary %+v (worst %+v)", s, s.Worst)
	}
	if want := (7.0/12 + 0.75 + 7.0/12) / 3; math.Abs(s.Mean-want) > 1e-15 {
		t.Errorf("summary mean %v, want %v", s.Mean, want)
	}
}

func TestRunTracesBadNeedle(t *testing.T) {
	q := &trace.Span{Start: 90, End: 100}
	needle := []trace.Span{{Start: 10, End: 14}}
	qpos := []int64{95, 99}
	be := &ixBackend{pick: func(int, int64, indexer.Kind) []int32 { return nil }}
	methods := []indexer.Method{{Kind: indexer.DSA}}
	for name, tc := range map[string]struct {
		src  *ixSource
		want string
	}{
		"no needle":          {ixNewSource("x", 100, qpos, nil, q, ptr(50.0), 0), "no needle"},
		"no question":        {ixNewSource("x", 100, qpos, needle, nil, ptr(50.0), 0), "no \"question\""},
		"no depth":           {ixNewSource("x", 100, qpos, needle, q, nil, 0), "depth_percent"},
		"needle in question": {ixNewSource("x", 100, qpos, []trace.Span{{Start: 85, End: 92}}, q, ptr(50.0), 0), "before the question"},
		"no question rows":   {ixNewSource("x", 100, []int64{20, 50}, needle, q, ptr(50.0), 0), "no query row"},
		"depth over 100":     {ixNewSource("x", 100, qpos, needle, q, ptr(150.0), 0), "outside 0..100"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := RunTraces(context.Background(), []trace.Source{tc.src}, IndexerOptions{Backend: be, Methods: methods})
			var fe *trace.FormatError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "x") {
				t.Fatalf("err = %v, want a FormatError about %q naming the trace", err, tc.want)
			}
			if be.calls != 0 {
				t.Errorf("the backend ran before the input was checked")
			}
		})
	}
	// Traces with different layers.
	a := ixNewSource("a", 100, qpos, needle, q, ptr(0.0), 0, 1)
	b := ixNewSource("b", 100, qpos, needle, q, ptr(100.0), 0)
	if _, err := RunTraces(context.Background(), []trace.Source{a, b}, IndexerOptions{Backend: be, Methods: methods}); err == nil || !strings.Contains(err.Error(), "layer") {
		t.Errorf("different layers: %v", err)
	}
	// ... which --layers resolves.
	if _, err := RunTraces(context.Background(), []trace.Source{a, b}, IndexerOptions{Backend: be, Methods: methods, Layers: []int{0}}); err != nil {
		t.Errorf("common layer: %v", err)
	}
}

// ixSynthBase is a small deepseek-v3.2-shaped generator configuration.
func ixSynthBase(t *testing.T, layers ...int) trace.SynthConfig {
	t.Helper()
	cfg, err := trace.SynthPreset("deepseek-v3.2")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Queries, cfg.Layers = 8, layers
	return cfg
}

// TestSynthDSAGreen is the construction's check: on a focused synthetic
// needle (the niah command's defaults) DSA keeps every needle token on
// every question row of every layer, at the preset's k and at k = 256;
// without focus it does not (which is why the knob exists).
func TestSynthDSAGreen(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and scores 24 layers")
	}
	focused := &trace.NeedleSpec{Len: trace.DefaultNeedleLen, Focus: 4, Scale: 24}
	methods := []indexer.Method{{Kind: indexer.DSA}, {Kind: indexer.MISA, Heads: 8, Block: 1024, Router: indexer.RouterPooled, Pool: indexer.PoolCausal}}
	g := SynthGrid{Base: ixSynthBase(t, 0, 1), Needle: focused, Contexts: []int{6144, 32768}, Depths: []float64{0, 0.5, 1}}
	be := indexer.NewCPU(0)
	for _, topk := range []int{0, 256} {
		res, err := RunSynthetic(context.Background(), g, IndexerOptions{Backend: be, Methods: methods, TopK: topk})
		if err != nil {
			t.Fatal(err)
		}
		dsa := res.Grids[0]
		if dsa.Method != "dsa" || len(dsa.Cells) != 3 || len(dsa.Cells[0]) != 2 {
			t.Fatalf("dsa grid %q %dx%d", dsa.Method, len(dsa.Cells), len(dsa.Cells[0]))
		}
		for _, row := range dsa.Cells {
			for _, c := range row {
				if c.Score != 1 || !slices.Equal(c.PerLayer, []float64{1, 1}) || c.N != 8 {
					t.Errorf("k=%d: DSA cell (%d, %v) = %v per layer %v (N %d), want 1", topk, c.Ctx, c.Depth, c.Score, c.PerLayer, c.N)
				}
			}
		}
		if res.Grids[1].Cells[2][1].N != 8 {
			t.Errorf("misa grid not filled: %+v", res.Grids[1].Cells[2][1])
		}
	}

	// The same needle without focus: DSA misses part of it somewhere.
	g.Needle = &trace.NeedleSpec{Len: trace.DefaultNeedleLen}
	g.Contexts, g.Depths = []int{12288}, []float64{0.5}
	res, err := RunSynthetic(context.Background(), g, IndexerOptions{Backend: be, Methods: methods[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Grids[0].Cells[0][0]; c.Score >= 1 {
		t.Errorf("unfocused needle: DSA keeps all of it (%v); the focus knob would not be needed", c.Score)
	}
}

func TestRunSyntheticBadGrid(t *testing.T) {
	be := indexer.NewCPU(1)
	methods := []indexer.Method{{Kind: indexer.DSA}}
	base := ixSynthBase(t, 0)
	for name, g := range map[string]SynthGrid{
		"no contexts":   {Base: base, Depths: []float64{0}},
		"no depths":     {Base: base, Contexts: []int{4096}},
		"depth over 1":  {Base: base, Contexts: []int{4096}, Depths: []float64{1.5}},
		"depth NaN":     {Base: base, Contexts: []int{4096}, Depths: []float64{math.NaN()}},
		"context twice": {Base: base, Contexts: []int{4096, 4096}, Depths: []float64{0}},
		"too short":     {Base: base, Contexts: []int{20}, Depths: []float64{0}},
	} {
		if _, err := RunSynthetic(context.Background(), g, IndexerOptions{Backend: be, Methods: methods}); !errors.Is(err, ErrGrid) {
			t.Errorf("%s: err = %v, want ErrGrid", name, err)
		}
	}
	// A method the preset cannot run.
	g := SynthGrid{Base: base, Contexts: []int{4096}, Depths: []float64{0}}
	if _, err := RunSynthetic(context.Background(), g, IndexerOptions{Backend: be, Methods: []indexer.Method{{Kind: indexer.MISA, Heads: 65, Router: indexer.RouterQNorm}}}); err == nil {
		t.Error("h = 65 of 64 heads accepted")
	}
	// A cancelled run stops with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RunSynthetic(ctx, g, IndexerOptions{Backend: be, Methods: methods}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
