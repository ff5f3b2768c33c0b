package indexer

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
)

// CPU is the reference backend. It computes ReLU(q·k) for every head and
// visible key of a row once, and derives every method's scores from that
// one matrix, so that the identities of DESIGN.md §7 hold bit for bit:
// all score sums run over heads in ascending order, whatever subset is used.
type CPU struct {
	workers int
}

// NewCPU returns the CPU backend running on workers goroutines
// (runtime.NumCPU() when workers <= 0).
func NewCPU(workers int) *CPU {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	return &CPU{workers: workers}
}

// Name implements Backend.
func (c *CPU) Name() string { return fmt.Sprintf("cpu(%d workers)", c.workers) }

// layerPrep is per-layer data shared read-only by all workers.
type layerPrep struct {
	in      *Input
	methods []Method
	panels  []float32 // packed keys
	hpad    int
	// pooled[B] holds the means of the full blocks of size B, [nblocks][D].
	pooled map[int][]float32
}

// Run implements Backend.
func (c *CPU) Run(ctx context.Context, in *Input, methods []Method) (*Output, error) {
	if err := in.Check(); err != nil {
		return nil, err
	}
	for _, m := range methods {
		if err := m.Validate(in.H); err != nil {
			return nil, err
		}
	}
	p := &layerPrep{
		in:      in,
		methods: methods,
		panels:  packPanels(in.K, in.N, in.D),
		hpad:    (in.H + tileHeads - 1) / tileHeads * tileHeads,
		pooled:  map[int][]float32{},
	}
	for _, m := range methods {
		if m.Routed() && m.Router == RouterPooled {
			p.pool(m.Block)
		}
		if m.Kind == HISA {
			p.pool(m.HisaBlock)
		}
	}

	nq := in.Rows()
	out := &Output{
		Reference: make([][]int32, nq),
		HeadRank:  make([][]int, nq),
		Methods:   make([]MethodOutput, len(methods)),
	}
	for i, m := range methods {
		out.Methods[i] = MethodOutput{Method: m, Sets: make([][]int32, nq), Mass: make([]float64, nq)}
		if m.Routed() {
			out.Methods[i].Heads = make([][]int, nq)
		}
	}

	// Rows are handed out one at a time, longest first: row cost grows with
	// its position, and a static split would leave one worker the tail.
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < c.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wk := newWorker(p)
			for t := range next {
				wk.row(t, out)
			}
		}()
	}
	var err error
feed:
	for t := nq - 1; t >= 0; t-- {
		select {
		case next <- t:
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	return out, nil
}

// pool computes the means of all full blocks of size b (once per size).
func (p *layerPrep) pool(b int) {
	if _, ok := p.pooled[b]; ok {
		return
	}
	in := p.in
	nb := in.N / b
	out := make([]float32, nb*in.D)
	acc := make([]float64, in.D)
	for blk := 0; blk < nb; blk++ {
		blockMean(acc, in.K, in.D, blk*b, (blk+1)*b)
		for x, v := range acc {
			out[blk*in.D+x] = float32(v)
		}
	}
	p.pooled[b] = out
}

// blockMean sets acc to the mean of keys [lo, hi), accumulated in float64 so
// that the mean of a long block does not depend on summation order in any
// way that matters at fp32.
func blockMean(acc []float64, k []float32, d, lo, hi int) {
	clear(acc)
	for s := lo; s < hi; s++ {
		for x, v := range k[s*d : s*d+d] {
			acc[x] += float64(v)
		}
	}
	inv := 1 / float64(hi-lo)
	for x := range acc {
		acc[x] *= inv
	}
}

// worker holds the scratch space of one goroutine.
type worker struct {
	p        *layerPrep
	q        []float32 // [hpad][D], heads past H are zero
	rel      []float32 // [hpad][ldc] ReLU(q·k)
	ldc      int
	scoreAll []float32
	scoreSub []float32
	sel      selector
	acc      []float64
	mean     []float32
	cand     []int32
	blocks   []float32
}

func newWorker(p *layerPrep) *worker {
	in := p.in
	np := (in.N + panelWidth - 1) / panelWidth
	ldc := np * panelWidth
	return &worker{
		p:        p,
		q:        make([]float32, p.hpad*in.D),
		rel:      make([]float32, p.hpad*ldc),
		ldc:      ldc,
		scoreAll: make([]float32, in.N),
		scoreSub: make([]float32, in.N),
		acc:      make([]float64, in.D),
		mean:     make([]float32, in.D),
	}
}

// weighted sets dst[s] = Σ_{h ∈ heads, ascending} w[h]·rel[h][s] for s < L.
// heads nil means all heads.
func (wk *worker) weighted(dst []float32, w []float32, heads []int, L int) {
	dst = dst[:L]
	clear(dst)
	add := func(h int) {
		wh := w[h]
		r := wk.rel[h*wk.ldc : h*wk.ldc+L]
		for s, v := range r {
			dst[s] += wh * v
		}
	}
	if heads == nil {
		for h := range w {
			add(h)
		}
		return
	}
	for _, h := range heads {
		add(h)
	}
}

func (wk *worker) row(t int, out *Output) {
	p := wk.p
	in := p.in
	H, D := in.H, in.D
	L := in.Visible(t)
	copy(wk.q, in.Q[t*H*D:(t+1)*H*D])
	w := in.W[t*H : (t+1)*H]

	np := (L + panelWidth - 1) / panelWidth
	reluDots(wk.q, p.hpad, D, p.panels, np, wk.rel, wk.ldc)

	wk.weighted(wk.scoreAll, w, nil, L)
	ref := wk.sel.topK(nil, wk.scoreAll, L, in.TopK)
	out.Reference[t] = ref
	refMass := massOf(wk.scoreAll, ref)
	out.HeadRank[t] = wk.headRank(w, ref)

	for i, m := range p.methods {
		mo := &out.Methods[i]
		var set []int32
		switch m.Kind {
		case DSA:
			set = ref
		case MISA, MISADagger:
			heads := wk.route(m, t, w, out.HeadRank[t])
			mo.Heads[t] = heads
			wk.weighted(wk.scoreSub, w, heads, L)
			if m.Kind == MISA {
				set = wk.sel.topK(nil, wk.scoreSub, L, in.TopK)
			} else {
				wk.cand = wk.sel.topK(wk.cand[:0], wk.scoreSub, L, m.Stage1)
				set = wk.sel.topKOf(nil, wk.scoreAll, wk.cand, in.TopK)
			}
		case HISA:
			set = wk.hisa(m, t, w, L)
		}
		mo.Sets[t] = set
		mo.Mass[t] = MassRatio(massOf(wk.scoreAll, set), refMass)
	}
}

func massOf(score []float32, set []int32) float64 {
	var s float64
	for _, i := range set {
		s += float64(score[i])
	}
	return s
}

// MassRatio is the score-mass ratio of DESIGN.md §2, a/b with a the
// method's Σ score_all over its set and b DSA's: 1 when both are zero, ±Inf
// when only b is. Every backend reports Mass with it.
func MassRatio(a, b float64) float64 {
	if b == 0 {
		if a == 0 {
			return 1
		}
		return math.Inf(int(math.Copysign(1, a)))
	}
	return a / b
}

// headRank orders heads by their contribution to the reference selection.
func (wk *worker) headRank(w []float32, ref []int32) []int {
	H := len(w)
	contrib := make([]float64, H)
	for h := 0; h < H; h++ {
		r := wk.rel[h*wk.ldc:]
		var s float64
		for _, i := range ref {
			s += float64(r[i])
		}
		contrib[h] = float64(w[h]) * s
	}
	return rankHeads(contrib, H)
}

// rankHeads returns the first n heads by descending score, ties to the
// lower head index.
func rankHeads(score []float64, n int) []int {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case score[a] > score[b]:
			return -1
		case score[a] < score[b]:
			return 1
		}
		return 0
	})
	return idx[:n]
}

// route picks the h heads of a routed method for row t, ascending.
func (wk *worker) route(m Method, t int, w []float32, headRank []int) []int {
	in := wk.p.in
	H, D := in.H, in.D
	var heads []int
	switch m.Router {
	case RouterOracle:
		heads = slices.Clone(headRank[:m.Heads])
	case RouterSelfKey:
		pt := int(in.QPos[t])
		r := make([]float64, H)
		for h := 0; h < H; h++ {
			r[h] = float64(w[h]) * float64(wk.rel[h*wk.ldc+pt])
		}
		heads = rankHeads(r, m.Heads)
	case RouterQNorm:
		r := make([]float64, H)
		for h := 0; h < H; h++ {
			var s float64
			for _, v := range wk.q[h*D : h*D+D] {
				s += float64(v) * float64(v)
			}
			r[h] = math.Sqrt(s)
		}
		heads = rankHeads(r, m.Heads)
	case RouterPooled:
		r := wk.blockScores(m.Block, m.Pool, t, func(h int, v float64) float64 {
			return math.Abs(float64(w[h])) * v
		})
		heads = rankHeads(r, m.Heads)
	}
	slices.Sort(heads)
	return heads
}

// blockScores returns, per head, Σ_{visible blocks b} ReLU(q_h·kbar_b)
// scaled by f(h, ·). Full blocks before the query's block use the shared
// means; the query's own block is averaged causally or over the whole
// block (reference pooling, which sees future keys).
func (wk *worker) blockScores(B int, pool Pool, t int, f func(h int, v float64) float64) []float64 {
	in := wk.p.in
	H, D := in.H, in.D
	pt := int(in.QPos[t])
	own := pt / B
	full := wk.p.pooled[B]
	sums := make([]float64, H)
	for b := 0; b < own; b++ {
		kb := full[b*D : b*D+D]
		for h := 0; h < H; h++ {
			sums[h] += float64(reluDot(wk.q[h*D:h*D+D], kb))
		}
	}
	hi := pt + 1
	if pool == PoolReference {
		hi = min((own+1)*B, in.N)
	}
	kb := wk.ownMean(own*B, hi)
	for h := 0; h < H; h++ {
		sums[h] = f(h, sums[h]+float64(reluDot(wk.q[h*D:h*D+D], kb)))
	}
	return sums
}

// ownMean returns the mean of keys [lo, hi) in the worker's scratch buffer.
func (wk *worker) ownMean(lo, hi int) []float32 {
	in := wk.p.in
	blockMean(wk.acc, in.K, in.D, lo, hi)
	for x, v := range wk.acc {
		wk.mean[x] = float32(v)
	}
	return wk.mean
}

func reluDot(a, b []float32) float32 {
	var s float32
	for i, v := range a {
		s += v * b[i]
	}
	return max(s, 0)
}

// hisa selects by blocks first: top-m blocks of size B_h by the all-head
// score of their causal means (first and last visible block always kept),
// then top-k of the all-head token score inside them.
func (wk *worker) hisa(m Method, t int, w []float32, L int) []int32 {
	in := wk.p.in
	H, D := in.H, in.D
	B := m.HisaBlock
	pt := int(in.QPos[t])
	own := pt / B
	nb := own + 1
	if cap(wk.blocks) < nb {
		wk.blocks = make([]float32, nb)
	}
	bs := wk.blocks[:nb]
	full := wk.p.pooled[B]
	score := func(kb []float32) float32 {
		var s float32
		for h := 0; h < H; h++ {
			s += w[h] * reluDot(wk.q[h*D:h*D+D], kb)
		}
		return s
	}
	for b := 0; b < own; b++ {
		bs[b] = score(full[b*D : b*D+D])
	}
	bs[own] = score(wk.ownMean(own*B, pt+1))
	bs[0] = float32(math.Inf(1))
	bs[own] = float32(math.Inf(1))
	chosen := wk.sel.topK(nil, bs, nb, m.HisaBlocks)
	wk.cand = wk.cand[:0]
	for _, b := range chosen {
		lo := int(b) * B
		hi := min(lo+B, L)
		for s := lo; s < hi; s++ {
			wk.cand = append(wk.cand, int32(s))
		}
	}
	return wk.sel.topKOf(nil, wk.scoreAll, wk.cand, in.TopK)
}
