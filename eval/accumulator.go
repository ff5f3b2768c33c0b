package eval

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/misabench/misabench/indexer"
)

// Stats summarises one method on one layer, on all layers (Layer = -1), or
// on one group of sources.
type Stats struct {
	// Method is indexer.Method.Name(); it identifies the method in tables
	// and in baseline comparisons.
	Method string `json:"method"`
	// Params are the method's parameters, normalised (unused fields zero).
	Params indexer.Method `json:"params"`
	// Layer is the layer index, or -1 for a summary over all layers.
	Layer int `json:"layer"`
	// Group is the group label (e.g. the data set for `--by dataset`), or
	// "" when rows were not grouped.
	Group string `json:"group,omitempty"`
	// Rows counts every query row; Trivial counts the rows that see at most
	// k keys. Those are exact by definition and left out of the summaries,
	// so Recall.N = Rows − Trivial.
	Rows    int `json:"rows"`
	Trivial int `json:"trivial"`

	Recall Summary `json:"recall"`
	IoU    Summary `json:"iou"`
	// Mass is the fraction of DSA's own score mass the method keeps; its N
	// is smaller than Recall.N where a backend did not report mass.
	Mass Summary `json:"mass"`
	// RouterPrecision is |R(t) ∩ oracle heads| / h, for routed methods whose
	// backend reported the routed heads and the head ranking; nil otherwise.
	RouterPrecision *Summary `json:"router_precision,omitempty"`
	// CostRatio is the mean of Method.Cost(H, L) / (H·L) over non-trivial
	// rows, or over all rows when every row is trivial: the fraction of DSA's
	// dot products the method spends.
	CostRatio float64 `json:"cost_ratio"`
}

// cellKey identifies the finest unit the accumulator keeps.
type cellKey struct {
	method string
	layer  int
	group  string
}

// cell holds the per-row values of one (method, layer, group). Values are
// kept, not running sums, because P5 and Min need the whole distribution.
type cell struct {
	rows, trivial int
	recall        []float64
	iou           []float64
	mass          []float64
	router        []float64
	hasRouter     bool
	cost          []float64 // non-trivial rows
	costTrivial   []float64 // trivial rows, used only if no row is non-trivial
}

func (c *cell) merge(o *cell) {
	c.rows += o.rows
	c.trivial += o.trivial
	c.recall = append(c.recall, o.recall...)
	c.iou = append(c.iou, o.iou...)
	c.mass = append(c.mass, o.mass...)
	c.router = append(c.router, o.router...)
	c.hasRouter = c.hasRouter || o.hasRouter
	c.cost = append(c.cost, o.cost...)
	c.costTrivial = append(c.costTrivial, o.costTrivial...)
}

// addKey guards against adding the same source, layer and method twice,
// which would silently double its weight in every pooled number.
type addKey struct {
	source string
	layer  int
	method string
}

// Accumulator collects per-row metrics across layers and sources and pools
// them into Stats. It is not safe for concurrent use: call Add from one
// goroutine. The order of Add calls does not change any number.
type Accumulator struct {
	methods []string                  // names in order of first appearance
	params  map[string]indexer.Method // normalised parameters per name
	groups  []string                  // in order of first appearance
	cells   map[cellKey]*cell
	added   map[addKey]bool
}

// NewAccumulator returns an empty accumulator.
func NewAccumulator() *Accumulator {
	return &Accumulator{
		params: make(map[string]indexer.Method),
		cells:  make(map[cellKey]*cell),
		added:  make(map[addKey]bool),
	}
}

// Add records one layer of one source: the metrics of every method in out
// against out.Reference, row by row. in supplies the visible key counts,
// k and H.
//
// Add checks what it relies on — row counts, sets strictly ascending and
// within the visible range, heads in range, finite mass — and records
// nothing if a check fails, so that a backend bug surfaces as an error rather
// than as a plausible number. Adding the same (source, layer, method) twice
// is an error.
func (a *Accumulator) Add(source, group string, layer int, in *indexer.Input, out *indexer.Output) error {
	if in == nil || out == nil {
		return fmt.Errorf("eval: %s layer %d: nil input or output", source, layer)
	}
	if err := check(in, out); err != nil {
		return fmt.Errorf("eval: %s layer %d: %w", source, layer, err)
	}
	names := make(map[string]bool, len(out.Methods))
	for _, mo := range out.Methods {
		k := addKey{source, layer, mo.Method.Name()}
		if a.added[k] || names[k.method] {
			return fmt.Errorf("eval: %s layer %d: method %s added twice", source, layer, k.method)
		}
		names[k.method] = true
	}

	if len(out.Methods) > 0 && !slices.Contains(a.groups, group) {
		a.groups = append(a.groups, group)
	}
	for i := range out.Methods {
		mo := &out.Methods[i]
		name := mo.Method.Name()
		a.added[addKey{source, layer, name}] = true
		if _, ok := a.params[name]; !ok {
			a.methods = append(a.methods, name)
			a.params[name] = mo.Method.Normalize()
		}
		key := cellKey{name, layer, group}
		c := a.cells[key]
		if c == nil {
			c = &cell{}
			a.cells[key] = c
		}
		addRows(c, in, out, mo)
	}
	return nil
}

// addRows appends the per-row values of one method to c; the input has been
// checked.
func addRows(c *cell, in *indexer.Input, out *indexer.Output, mo *indexer.MethodOutput) {
	routed := mo.Method.Routed() && len(mo.Heads) > 0 && len(out.HeadRank) > 0
	c.hasRouter = c.hasRouter || routed
	for t := range in.Rows() {
		L := in.Visible(t)
		cost := mo.Method.Cost(in.H, L) / (float64(in.H) * float64(L))
		c.rows++
		if L <= in.TopK {
			c.trivial++
			c.costTrivial = append(c.costTrivial, cost)
			continue
		}
		c.cost = append(c.cost, cost)
		ref, got := out.Reference[t], mo.Sets[t]
		c.recall = append(c.recall, RowRecall(ref, got))
		c.iou = append(c.iou, RowIoU(ref, got))
		if len(mo.Mass) > 0 {
			c.mass = append(c.mass, mo.Mass[t])
		}
		if routed {
			c.router = append(c.router, routerPrecision(mo.Heads[t], out.HeadRank[t][:mo.Method.Heads]))
		}
	}
}

// routerPrecision is |routed ∩ oracle| / |oracle|; routed is ascending,
// oracle is in rank order, both small (h ≤ H ≤ a few hundred).
func routerPrecision(routed, oracle []int) float64 {
	if len(oracle) == 0 {
		return 1
	}
	n := 0
	for _, h := range oracle {
		if _, ok := slices.BinarySearch(routed, h); ok {
			n++
		}
	}
	return float64(n) / float64(len(oracle))
}

// check validates the shapes and invariants Add relies on.
func check(in *indexer.Input, out *indexer.Output) error {
	rows := in.Rows()
	if in.H < 1 || in.TopK < 1 {
		return fmt.Errorf("input: heads %d and top-k %d must be positive", in.H, in.TopK)
	}
	for t, p := range in.QPos {
		if p < 0 {
			return fmt.Errorf("input: q_pos[%d] = %d is negative", t, p)
		}
	}
	if len(out.Reference) != rows {
		return fmt.Errorf("reference has %d rows, input has %d", len(out.Reference), rows)
	}
	if len(out.HeadRank) != 0 && len(out.HeadRank) != rows {
		return fmt.Errorf("head rank has %d rows, input has %d", len(out.HeadRank), rows)
	}
	for t := range rows {
		if err := checkSet(out.Reference[t], in.Visible(t)); err != nil {
			return fmt.Errorf("reference row %d: %w", t, err)
		}
		if len(out.HeadRank) > 0 {
			if err := checkHeads(out.HeadRank[t], in.H, false); err != nil {
				return fmt.Errorf("head rank row %d: %w", t, err)
			}
		}
	}
	for _, mo := range out.Methods {
		name := mo.Method.Name()
		if len(mo.Sets) != rows {
			return fmt.Errorf("%s: %d rows, input has %d", name, len(mo.Sets), rows)
		}
		if len(mo.Mass) != 0 && len(mo.Mass) != rows {
			return fmt.Errorf("%s: mass has %d rows, input has %d", name, len(mo.Mass), rows)
		}
		routed := mo.Method.Routed() && len(mo.Heads) > 0 && len(out.HeadRank) > 0
		if mo.Method.Routed() && len(mo.Heads) > 0 {
			if len(mo.Heads) != rows {
				return fmt.Errorf("%s: heads have %d rows, input has %d", name, len(mo.Heads), rows)
			}
			if h := mo.Method.Heads; h < 1 || h > in.H {
				return fmt.Errorf("%s: h = %d outside [1, %d]", name, h, in.H)
			}
		}
		for t := range rows {
			if err := checkSet(mo.Sets[t], in.Visible(t)); err != nil {
				return fmt.Errorf("%s row %d: %w", name, t, err)
			}
			if len(mo.Mass) > 0 {
				if x := mo.Mass[t]; math.IsNaN(x) || math.IsInf(x, 0) {
					return fmt.Errorf("%s row %d: mass %v is not finite", name, t, x)
				}
			}
			if routed {
				if len(mo.Heads[t]) != mo.Method.Heads {
					return fmt.Errorf("%s row %d: %d routed heads, want h = %d", name, t, len(mo.Heads[t]), mo.Method.Heads)
				}
				if err := checkHeads(mo.Heads[t], in.H, true); err != nil {
					return fmt.Errorf("%s row %d: routed heads: %w", name, t, err)
				}
				if len(out.HeadRank[t]) < mo.Method.Heads {
					return fmt.Errorf("head rank row %d: %d heads, fewer than h = %d", t, len(out.HeadRank[t]), mo.Method.Heads)
				}
			}
		}
	}
	return nil
}

// checkSet requires a strictly ascending set of token indices in [0, visible).
func checkSet(s []int32, visible int) error {
	for i, x := range s {
		if x < 0 || int(x) >= visible {
			return fmt.Errorf("token %d outside the %d visible keys", x, visible)
		}
		if i > 0 && x <= s[i-1] {
			return fmt.Errorf("tokens not strictly ascending at position %d (%d after %d)", i, x, s[i-1])
		}
	}
	return nil
}

// checkHeads requires head indices in [0, H) without repeats, and ascending
// when asc is set.
func checkHeads(hs []int, H int, asc bool) error {
	seen := make([]bool, H)
	for i, h := range hs {
		if h < 0 || h >= H {
			return fmt.Errorf("head %d outside [0, %d)", h, H)
		}
		if seen[h] {
			return fmt.Errorf("head %d listed twice", h)
		}
		seen[h] = true
		if asc && i > 0 && h < hs[i-1] {
			return fmt.Errorf("heads not ascending at position %d", i)
		}
	}
	return nil
}

// Layers returns one Stats per (method, layer), pooled over sources and
// groups, ordered by method (first appearance) then layer.
func (a *Accumulator) Layers() []Stats {
	var out []Stats
	for _, m := range a.methods {
		var layers []int
		for k := range a.cells {
			if k.method == m && !slices.Contains(layers, k.layer) {
				layers = append(layers, k.layer)
			}
		}
		slices.Sort(layers)
		for _, l := range layers {
			out = append(out, a.pool(m, l, "", func(k cellKey) bool { return k.layer == l }))
		}
	}
	return out
}

// Overall returns one Stats per method over every row of every layer
// (Layer = -1), in order of first appearance.
func (a *Accumulator) Overall() []Stats {
	var out []Stats
	for _, m := range a.methods {
		out = append(out, a.pool(m, -1, "", func(cellKey) bool { return true }))
	}
	return out
}

// Groups returns one Stats per (method, group) over all layers (Layer = -1),
// ordered by method then group (first appearance), or nil when no row was
// added with a non-empty group.
func (a *Accumulator) Groups() []Stats {
	if !slices.ContainsFunc(a.groups, func(g string) bool { return g != "" }) {
		return nil
	}
	var out []Stats
	for _, m := range a.methods {
		for _, g := range a.groups {
			if !a.hasCell(m, g) {
				continue
			}
			out = append(out, a.pool(m, -1, g, func(k cellKey) bool { return k.group == g }))
		}
	}
	return out
}

func (a *Accumulator) hasCell(method, group string) bool {
	for k := range a.cells {
		if k.method == method && k.group == group {
			return true
		}
	}
	return false
}

// pool merges the cells of one method that match keep and summarises them.
// Cells are merged in a fixed key order; the summaries sort their values
// anyway, so map iteration order cannot leak into a number.
func (a *Accumulator) pool(method string, layer int, group string, keep func(cellKey) bool) Stats {
	var keys []cellKey
	for k := range a.cells {
		if k.method == method && keep(k) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(x, y cellKey) int {
		return cmp.Or(cmp.Compare(x.layer, y.layer), cmp.Compare(x.group, y.group))
	})
	var c cell
	for _, k := range keys {
		c.merge(a.cells[k])
	}
	s := Stats{
		Method:  method,
		Params:  a.params[method],
		Layer:   layer,
		Group:   group,
		Rows:    c.rows,
		Trivial: c.trivial,
		Recall:  sortedSummary(c.recall),
		IoU:     sortedSummary(c.iou),
		Mass:    sortedSummary(c.mass),
	}
	if c.hasRouter {
		r := sortedSummary(c.router)
		s.RouterPrecision = &r
	}
	switch {
	case len(c.cost) > 0:
		s.CostRatio = sortedSummary(c.cost).Mean
	case len(c.costTrivial) > 0:
		s.CostRatio = sortedSummary(c.costTrivial).Mean
	}
	return s
}

// sortedSummary sorts xs in place (it is a merged copy) and summarises it.
func sortedSummary(xs []float64) Summary {
	slices.Sort(xs)
	return summarizeSorted(xs)
}
