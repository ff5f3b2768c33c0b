package eval

import (
	"math"
	"strings"
	"testing"

	"github.com/misabench/misabench/indexer"
)

var (
	dsa  = indexer.Method{Kind: indexer.DSA}
	misa = indexer.Method{Kind: indexer.MISA, Heads: 2, Router: indexer.RouterPooled, Block: 4, Pool: indexer.PoolCausal,
		Stage1: 99} // Stage1 is not a MISA field: Params must come back normalised
)

// fixture is two layers of three rows with H = 4, k = 2 and q_pos 1, 4, 7:
// the rows see 2, 5 and 8 keys, so row 0 is trivial.
func fixture() (in *indexer.Input, l0, l1 *indexer.Output) {
	in = &indexer.Input{H: 4, D: 1, TopK: 2, N: 8, QPos: []int64{1, 4, 7}}
	l0 = &indexer.Output{
		Reference: [][]int32{{0, 1}, {2, 4}, {5, 7}},
		HeadRank:  [][]int{{0, 1, 2, 3}, {3, 1, 0, 2}, {2, 0, 1, 3}},
		Methods: []indexer.MethodOutput{
			{Method: dsa, Sets: [][]int32{{0, 1}, {2, 4}, {5, 7}}, Mass: []float64{1, 1, 1}},
			{
				Method: misa,
				// Row 1: ∩ {4}: recall 1/2, IoU 1/3. Row 2: exact.
				Sets: [][]int32{{0, 1}, {1, 4}, {5, 7}},
				// Row 1: oracle {3,1} ⊂ routed: 1. Row 2: oracle {2,0}: 1/2.
				Heads: [][]int{{0, 1}, {1, 3}, {0, 3}},
				// Row 0 is trivial: its 0.1 must not count.
				Mass: []float64{0.1, 0.8, 1},
			},
		},
	}
	l1 = &indexer.Output{
		Reference: [][]int32{{0, 1}, {0, 3}, {6, 7}},
		HeadRank:  [][]int{{0, 1, 2, 3}, {0, 1, 2, 3}, {1, 0, 2, 3}},
		Methods: []indexer.MethodOutput{
			{Method: dsa, Sets: [][]int32{{0, 1}, {0, 3}, {6, 7}}, Mass: []float64{1, 1, 1}},
			{
				Method: misa,
				// Row 1: recall 1/2, IoU 1/3. Row 2: nothing in common.
				Sets: [][]int32{{0, 1}, {0, 1}, {2, 3}},
				// Row 1: oracle {0,1}: 0. Row 2: oracle {1,0}: 1.
				Heads: [][]int{{0, 1}, {2, 3}, {0, 1}},
				Mass:  []float64{1, 0.6, 0.2},
			},
		},
	}
	return in, l0, l1
}

func checkSummary(t *testing.T, what string, got Summary, want Summary) {
	t.Helper()
	if !near(got.Mean, want.Mean) || !near(got.P5, want.P5) || !near(got.Min, want.Min) || got.N != want.N {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

func TestAccumulator(t *testing.T) {
	in, l0, l1 := fixture()
	a := NewAccumulator()
	// Layer 1 first: Layers must still come out in layer order.
	if err := a.Add("s", "", 1, in, l1); err != nil {
		t.Fatal(err)
	}
	if err := a.Add("s", "", 0, in, l0); err != nil {
		t.Fatal(err)
	}

	// MISA with H = 4, h = 2, B = 4 spends 2L + 4⌈L/4⌉ dot products against
	// DSA's 4L: 18/20 at L = 5 and 24/32 at L = 8, a mean of 0.825.
	cost := (misa.Cost(4, 5)/20 + misa.Cost(4, 8)/32) / 2
	if !near(cost, 0.825) {
		t.Fatalf("Method.Cost changed: mean ratio %v, want 0.825", cost)
	}

	layers := a.Layers()
	if len(layers) != 4 {
		t.Fatalf("Layers: %d stats, want 4", len(layers))
	}
	wantOrder := []struct {
		method string
		layer  int
	}{{"dsa", 0}, {"dsa", 1}, {misa.Name(), 0}, {misa.Name(), 1}}
	for i, w := range wantOrder {
		if layers[i].Method != w.method || layers[i].Layer != w.layer {
			t.Errorf("Layers[%d] = %s layer %d, want %s layer %d", i, layers[i].Method, layers[i].Layer, w.method, w.layer)
		}
	}
	for _, s := range layers {
		if s.Rows != 3 || s.Trivial != 1 || s.Group != "" {
			t.Errorf("%s layer %d: rows %d trivial %d group %q, want 3, 1, \"\"", s.Method, s.Layer, s.Rows, s.Trivial, s.Group)
		}
	}

	d0 := layers[0]
	checkSummary(t, "dsa recall", d0.Recall, Summary{1, 1, 1, 2})
	checkSummary(t, "dsa iou", d0.IoU, Summary{1, 1, 1, 2})
	checkSummary(t, "dsa mass", d0.Mass, Summary{1, 1, 1, 2})
	if d0.RouterPrecision != nil {
		t.Errorf("dsa has router precision %+v, want nil", *d0.RouterPrecision)
	}
	if d0.CostRatio != 1 {
		t.Errorf("dsa cost ratio %v, want 1", d0.CostRatio)
	}
	if d0.Params != dsa {
		t.Errorf("dsa params %+v", d0.Params)
	}

	m0, m1 := layers[2], layers[3]
	if m0.Params != misa.Normalize() || m0.Params.Stage1 != 0 {
		t.Errorf("misa params %+v, want normalised %+v", m0.Params, misa.Normalize())
	}
	// Two non-trivial rows each, so P5 = lo + 0.05·(hi − lo).
	checkSummary(t, "misa L0 recall", m0.Recall, Summary{0.75, 0.525, 0.5, 2})
	checkSummary(t, "misa L0 iou", m0.IoU, Summary{2.0 / 3, 1.0/3 + 0.05*2/3, 1.0 / 3, 2})
	checkSummary(t, "misa L0 mass", m0.Mass, Summary{0.9, 0.81, 0.8, 2})
	if m0.RouterPrecision == nil {
		t.Fatal("misa L0: no router precision")
	}
	checkSummary(t, "misa L0 router", *m0.RouterPrecision, Summary{0.75, 0.525, 0.5, 2})
	if !near(m0.CostRatio, cost) {
		t.Errorf("misa L0 cost ratio %v, want %v", m0.CostRatio, cost)
	}

	checkSummary(t, "misa L1 recall", m1.Recall, Summary{0.25, 0.025, 0, 2})
	checkSummary(t, "misa L1 iou", m1.IoU, Summary{1.0 / 6, 0.05 / 3, 0, 2})
	checkSummary(t, "misa L1 mass", m1.Mass, Summary{0.4, 0.22, 0.2, 2})
	checkSummary(t, "misa L1 router", *m1.RouterPrecision, Summary{0.5, 0.05, 0, 2})
	if !near(m1.CostRatio, cost) {
		t.Errorf("misa L1 cost ratio %v, want %v", m1.CostRatio, cost)
	}

	overall := a.Overall()
	if len(overall) != 2 || overall[0].Method != "dsa" || overall[1].Method != misa.Name() {
		t.Fatalf("Overall = %+v", overall)
	}
	o := overall[1]
	if o.Layer != -1 || o.Rows != 6 || o.Trivial != 2 {
		t.Errorf("overall: layer %d rows %d trivial %d, want -1, 6, 2", o.Layer, o.Rows, o.Trivial)
	}
	// Four rows: P5 rank r = 0.05·3 = 0.15 above the minimum.
	checkSummary(t, "overall recall", o.Recall, Summary{0.5, 0.075, 0, 4})             // {0, .5, .5, 1}
	checkSummary(t, "overall iou", o.IoU, Summary{5.0 / 12, 0.05, 0, 4})               // {0, 1/3, 1/3, 1}
	checkSummary(t, "overall mass", o.Mass, Summary{0.65, 0.26, 0.2, 4})               // {.2, .6, .8, 1}
	checkSummary(t, "overall router", *o.RouterPrecision, Summary{0.625, 0.075, 0, 4}) // {0, .5, 1, 1}
	if !near(o.CostRatio, cost) {
		t.Errorf("overall cost ratio %v, want %v", o.CostRatio, cost)
	}

	if g := a.Groups(); g != nil {
		t.Errorf("Groups without groups = %+v, want nil", g)
	}
}

func TestAccumulatorGroups(t *testing.T) {
	in, l0, l1 := fixture()
	a := NewAccumulator()
	for _, step := range []struct {
		src, group string
		layer      int
		out        *indexer.Output
	}{{"x", "b", 0, l0}, {"x", "b", 1, l1}, {"y", "a", 1, l1}} {
		if err := a.Add(step.src, step.group, step.layer, in, step.out); err != nil {
			t.Fatal(err)
		}
	}
	g := a.Groups()
	if len(g) != 4 {
		t.Fatalf("Groups: %d stats, want 4", len(g))
	}
	// Groups in order of first appearance: b, then a.
	if g[2].Method != misa.Name() || g[2].Group != "b" || g[3].Group != "a" || g[2].Layer != -1 {
		t.Fatalf("Groups order: %s/%s, %s/%s", g[2].Method, g[2].Group, g[3].Method, g[3].Group)
	}
	checkSummary(t, "group b recall", g[2].Recall, Summary{0.5, 0.075, 0, 4})
	checkSummary(t, "group a recall", g[3].Recall, Summary{0.25, 0.025, 0, 2})

	// Layer 1 pools both sources.
	l := a.Layers()
	if l[3].Layer != 1 || l[3].Rows != 6 || l[3].Recall.N != 4 {
		t.Errorf("layer 1 pooled over sources: %+v", l[3])
	}
}

func TestAccumulatorAllTrivial(t *testing.T) {
	// Every row sees at most k = 4 keys: no summary has values, and the cost
	// ratio falls back to all rows: (Cost(4,1)/4 + Cost(4,2)/8)/2.
	in := &indexer.Input{H: 4, D: 1, TopK: 4, N: 2, QPos: []int64{0, 1}}
	out := &indexer.Output{
		Reference: [][]int32{{0}, {0, 1}},
		Methods:   []indexer.MethodOutput{{Method: misa, Sets: [][]int32{{0}, {0, 1}}}},
	}
	a := NewAccumulator()
	if err := a.Add("s", "", 3, in, out); err != nil {
		t.Fatal(err)
	}
	s := a.Layers()[0]
	if s.Rows != 2 || s.Trivial != 2 || s.Recall != (Summary{}) || s.Mass != (Summary{}) {
		t.Errorf("all trivial: %+v", s)
	}
	// No head ranking from the backend: no router precision.
	if s.RouterPrecision != nil {
		t.Errorf("router precision without heads: %+v", *s.RouterPrecision)
	}
	want := (misa.Cost(4, 1)/4 + misa.Cost(4, 2)/8) / 2
	if !near(s.CostRatio, want) {
		t.Errorf("cost ratio %v, want %v", s.CostRatio, want)
	}
}

func TestAccumulatorRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(o *indexer.Output)
		want   string
	}{
		{"rows", func(o *indexer.Output) { o.Methods[1].Sets = o.Methods[1].Sets[:2] }, "2 rows"},
		{"unsorted", func(o *indexer.Output) { o.Methods[1].Sets[2] = []int32{7, 5} }, "ascending"},
		{"duplicate token", func(o *indexer.Output) { o.Reference[1] = []int32{2, 2} }, "ascending"},
		{"invisible", func(o *indexer.Output) { o.Methods[1].Sets[1] = []int32{1, 5} }, "outside the 5 visible"},
		{"nan mass", func(o *indexer.Output) { o.Methods[1].Mass[2] = math.NaN() }, "not finite"},
		{"mass rows", func(o *indexer.Output) { o.Methods[1].Mass = o.Methods[1].Mass[:1] }, "mass has 1 rows"},
		{"head range", func(o *indexer.Output) { o.Methods[1].Heads[1] = []int{1, 4} }, "outside [0, 4)"},
		{"head count", func(o *indexer.Output) { o.Methods[1].Heads[1] = []int{1} }, "want h = 2"},
		{"same method", func(o *indexer.Output) { o.Methods[0] = o.Methods[1] }, "added twice"},
	}
	for _, tc := range tests {
		in, l0, _ := fixture()
		tc.mutate(l0)
		a := NewAccumulator()
		err := a.Add("src", "", 0, in, l0)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "src layer 0") {
			t.Errorf("%s: err = %v, want one naming the source and containing %q", tc.name, err, tc.want)
		}
		if len(a.Layers()) != 0 {
			t.Errorf("%s: a rejected Add recorded rows", tc.name)
		}
	}

	in, l0, _ := fixture()
	a := NewAccumulator()
	if err := a.Add("src", "", 0, in, l0); err != nil {
		t.Fatal(err)
	}
	if err := a.Add("src", "", 0, in, l0); err == nil || !strings.Contains(err.Error(), "added twice") {
		t.Errorf("second Add of the same source and layer: err = %v", err)
	}
	if s := a.Layers()[0]; s.Rows != 3 {
		t.Errorf("rows after rejected duplicate = %d, want 3", s.Rows)
	}
}
