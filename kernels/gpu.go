//go:build cuda

package kernels

import (
	"context"
	"fmt"
	"math"
	"sync"

	"gorgonia.org/cu"

	"github.com/misabench/misabench/indexer"
)

// GPU is the CUDA backend. It implements indexer.Backend and reproduces
// indexer.CPU: the same selections, routed heads, HeadRank and Mass, with
// the CPU's arithmetic order wherever that order decides a result.
//
// A GPU owns one CUDA context on one device; all its driver calls run on
// one OS thread. Run may be called from any goroutine, one layer at a
// time; calls are serialized. Device memory is allocated per Run and freed
// before it returns, so memory grows with one layer at a time; query rows
// are processed in chunks whose fp32 logits fit a budget.
type GPU struct {
	d         *device
	closeOnce sync.Once

	// logitBudget bounds the device bytes of one row chunk's buffers
	// (0: half the free memory, at most 8 GiB).
	logitBudget int64
	// maxChunkRows caps the rows of one chunk (0: no cap beyond the budget).
	maxChunkRows int
}

var _ indexer.Backend = (*GPU)(nil)

// NewGPU opens CUDA device number device, compiles the kernels for its
// architecture with NVRTC (or loads them from the disk cache) and returns
// the backend. Close releases it.
func NewGPU(device int) (*GPU, error) {
	d, err := openDevice(device)
	if err != nil {
		return nil, err
	}
	return &GPU{d: d}, nil
}

// Name implements indexer.Backend.
func (g *GPU) Name() string {
	return fmt.Sprintf("gpu(%d: %s, %s)", g.d.info.Index, g.d.info.Name, g.d.info.Arch)
}

// Device describes the device the backend runs on (Driver and NVRTC filled).
func (g *GPU) Device() DeviceInfo {
	info := g.d.info
	info.Driver = versionString(cu.Version())
	info.NVRTC, _ = loadNVRTC()
	return info
}

// KernelsFromCache reports whether the compiled kernels came from the disk
// cache rather than a fresh NVRTC compile.
func (g *GPU) KernelsFromCache() bool { return g.d.cached }

// Close releases the device. The GPU must not be used afterwards.
func (g *GPU) Close() error {
	g.closeOnce.Do(g.d.close)
	return nil
}

// Run implements indexer.Backend.
func (g *GPU) Run(ctx context.Context, in *indexer.Input, methods []indexer.Method) (*indexer.Output, error) {
	if err := in.Check(); err != nil {
		return nil, err
	}
	for _, m := range methods {
		if err := m.Validate(in.H); err != nil {
			return nil, err
		}
	}
	if int64(in.N)*int64(in.D) >= math.MaxInt32 || in.N >= math.MaxInt32 {
		return nil, fmt.Errorf("kernels: %d keys × %d dims is too large for 32-bit token indices", in.N, in.D)
	}
	var out *indexer.Output
	err := g.d.do(func() error {
		var err error
		out, err = g.run(ctx, in, methods)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// layerShape holds the sizes that fix one Run's buffers.
type layerShape struct {
	H, D, N, K  int
	nq          int
	maxVis      int // keys the last row sees
	ld          int // logits row stride (floats)
	kRef        int // reference set width
	routed      bool
	hmax        int // widest routed head set
	candW       int // MISA† stage-1 / HISA candidate width
	nbW, chW    int // HISA block-score and chosen-block widths
	pooledSizes []int
}

func shapeOf(in *indexer.Input, methods []indexer.Method) layerShape {
	s := layerShape{H: in.H, D: in.D, N: in.N, K: in.TopK, nq: in.Rows()}
	s.maxVis = int(in.QPos[s.nq-1]) + 1
	s.ld = (s.maxVis + 63) / 64 * 64
	s.kRef = min(s.K, s.maxVis)
	seen := map[int]bool{}
	addPool := func(b int) {
		if !seen[b] {
			seen[b] = true
			s.pooledSizes = append(s.pooledSizes, b)
		}
	}
	for _, m := range methods {
		switch m.Kind {
		case indexer.MISA, indexer.MISADagger:
			s.routed = true
			s.hmax = max(s.hmax, m.Heads)
			if m.Router == indexer.RouterPooled {
				addPool(m.Block)
			}
			if m.Kind == indexer.MISADagger {
				s.candW = max(s.candW, min(m.Stage1, s.maxVis))
			}
		case indexer.HISA:
			addPool(m.HisaBlock)
			nb := (s.maxVis-1)/m.HisaBlock + 1
			s.nbW = max(s.nbW, nb)
			s.chW = max(s.chW, min(m.HisaBlocks, nb))
			s.candW = max(s.candW, min(m.HisaBlocks*m.HisaBlock, s.maxVis))
		}
	}
	return s
}

// rowBytes is the device memory one query row of a chunk needs.
func (s layerShape) rowBytes() int64 {
	logits := int64(s.ld) * 4
	if s.routed {
		logits *= 2
	}
	ints := int64(1 + s.kRef + 1 + s.H + s.hmax + s.kRef + 1 + s.candW + 1 + s.nbW + 1 + s.chW + 1)
	doubles := int64(3*s.H + 2)
	return logits + 4*ints + 8*doubles + int64(s.nbW)*4 + int64(s.D)*4
}

// chunkBufs are the per-chunk device buffers, sized for rc rows.
type chunkBufs struct {
	lens, all, sub                   buffer
	ref, refCnt, contrib, rank       buffer
	refMass, score, heads, own       buffer
	set, setCnt, cand, candCnt, mass buffer
	bs, nbLens, chosen, chCnt        buffer
}

const maxChunkRows = 32768 // grid y/x limits of the per-row launches stay far away

func (g *GPU) run(ctx context.Context, in *indexer.Input, methods []indexer.Method) (*indexer.Output, error) {
	d := g.d
	nq := in.Rows()
	out := &indexer.Output{
		Reference: make([][]int32, nq),
		HeadRank:  make([][]int, nq),
		Methods:   make([]indexer.MethodOutput, len(methods)),
	}
	for i, m := range methods {
		out.Methods[i] = indexer.MethodOutput{Method: m, Sets: make([][]int32, nq), Mass: make([]float64, nq)}
		if m.Routed() {
			out.Methods[i].Heads = make([][]int, nq)
		}
	}
	if nq == 0 {
		return out, nil
	}
	s := shapeOf(in, methods)
	H, D, N := s.H, s.D, s.N

	var a arena
	defer a.free()
	alloc := func(n int64, what string, err *error) buffer {
		if *err != nil {
			return buffer{}
		}
		b, e := a.alloc(n, what)
		*err = e
		return b
	}
	var err error
	qB := alloc(int64(len(in.Q))*4, "q", &err)
	kB := alloc(int64(len(in.K))*4, "k", &err)
	wB := alloc(int64(len(in.W))*4, "w", &err)
	posB := alloc(int64(nq)*8, "q_pos", &err)
	if err != nil {
		return nil, err
	}
	for _, e := range []error{upload(qB, in.Q), upload(kB, in.K), upload(wB, in.W), upload(posB, in.QPos)} {
		if e != nil {
			return nil, e
		}
	}
	pooled := map[int]buffer{}
	for _, B := range s.pooledSizes {
		nb := N / B
		b := alloc(int64(max(nb, 1)*D)*4, fmt.Sprintf("block means (B=%d)", B), &err)
		if err != nil {
			return nil, err
		}
		if err := d.poolFull(kB, N, D, B, b); err != nil {
			return nil, err
		}
		pooled[B] = b
	}

	// Rows per chunk: the budget over what a row needs.
	budget := g.logitBudget
	if budget <= 0 {
		free, _, e := cu.MemInfo()
		if e != nil {
			return nil, fmt.Errorf("kernels: reading free GPU memory: %v", e)
		}
		budget = min(free/2, 8<<30)
	}
	rc := int(min(int64(nq), max(1, budget/s.rowBytes()), maxChunkRows))
	if g.maxChunkRows > 0 {
		rc = min(rc, g.maxChunkRows)
	}
	r64 := int64(rc)
	var c chunkBufs
	c.lens = alloc(r64*4, "row lengths", &err)
	c.all = alloc(r64*int64(s.ld)*4, "all-heads logits", &err)
	if s.routed {
		c.sub = alloc(r64*int64(s.ld)*4, "routed-heads logits", &err)
		c.score = alloc(r64*int64(H)*8, "router scores", &err)
		c.heads = alloc(r64*int64(s.hmax)*4, "routed heads", &err)
	}
	c.ref = alloc(r64*int64(s.kRef)*4, "reference sets", &err)
	c.refCnt = alloc(r64*4, "reference counts", &err)
	c.contrib = alloc(r64*int64(H)*8, "head contributions", &err)
	c.rank = alloc(r64*int64(H)*4, "head ranks", &err)
	c.refMass = alloc(r64*8, "reference mass", &err)
	c.own = alloc(r64*int64(D)*4, "own-block means", &err)
	c.set = alloc(r64*int64(s.kRef)*4, "selections", &err)
	c.setCnt = alloc(r64*4, "selection counts", &err)
	c.mass = alloc(r64*8, "mass", &err)
	if s.candW > 0 {
		c.cand = alloc(r64*int64(s.candW)*4, "candidates", &err)
		c.candCnt = alloc(r64*4, "candidate counts", &err)
	}
	if s.nbW > 0 {
		c.bs = alloc(r64*int64(s.nbW)*4, "block scores", &err)
		c.nbLens = alloc(r64*4, "block counts", &err)
		c.chosen = alloc(r64*int64(s.chW)*4, "chosen blocks", &err)
		c.chCnt = alloc(r64*4, "chosen-block counts", &err)
	}
	if err != nil {
		return nil, err
	}

	lens := make([]int32, rc)
	for r0 := 0; r0 < nq; r0 += rc {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(rc, nq-r0)
		if err := g.chunk(ctx, in, methods, s, &c, pooled, qB, kB, wB, posB, r0, n, lens, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// chunk runs every method on query rows [r0, r0+n).
func (g *GPU) chunk(ctx context.Context, in *indexer.Input, methods []indexer.Method, s layerShape, c *chunkBufs,
	pooled map[int]buffer, qB, kB, wB, posB buffer, r0, n int, lens []int32, out *indexer.Output) error {
	d := g.d
	H, D, N, K := s.H, s.D, s.N, s.K
	chunkVis := int(in.QPos[r0+n-1]) + 1
	for i := 0; i < n; i++ {
		lens[i] = int32(in.Visible(r0 + i))
	}
	if err := upload(c.lens, lens[:n]); err != nil {
		return err
	}
	steps := func(fs ...func() error) error {
		for _, f := range fs {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	}
	const poisonIdx, poisonScore = 0xFFFFFFFF, 0x7FFFFFFF

	// DSA: all-heads logits, the reference selection, head contributions
	// and ranks, the reference mass.
	err := steps(
		func() error { return poison(c.all, poisonScore) },
		func() error {
			return d.logits(qB, kB, wB, posB, buffer{}, H, H, D, N, r0, n, chunkVis, s.ld, c.all)
		},
		func() error { return poison(c.ref, poisonIdx) },
		func() error { return poison(c.refCnt, poisonIdx) },
		func() error { return d.topk(c.all, s.ld, buffer{}, 0, c.lens, n, K, c.ref, s.kRef, c.refCnt) },
		func() error { return poison(c.contrib, poisonIdx) },
		func() error { return d.headContrib(qB, kB, wB, r0, n, H, D, c.ref, s.kRef, c.refCnt, c.contrib) },
		func() error { return poison(c.rank, poisonIdx) },
		func() error { return d.rankHeads(c.contrib, n, H, 0, buffer{}, c.rank) },
		func() error { return poison(c.refMass, poisonIdx) },
		func() error { return d.mass(c.all, s.ld, c.ref, s.kRef, c.refCnt, n, c.refMass) },
	)
	if err != nil {
		return err
	}
	refIdx := make([]int32, n*s.kRef)
	refCnt := make([]int32, n)
	rank := make([]int32, n*H)
	refMass := make([]float64, n)
	if err := steps(
		func() error { return download(refIdx, c.ref) },
		func() error { return download(refCnt, c.refCnt) },
		func() error { return download(rank, c.rank) },
		func() error { return download(refMass, c.refMass) },
	); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		t := r0 + i
		L := in.Visible(t)
		set, err := rowSet(refIdx, refCnt, i, s.kRef, L, min(K, L), "dsa (reference)", t)
		if err != nil {
			return err
		}
		out.Reference[t] = set
		hr := make([]int, H)
		seen := make([]bool, H)
		for j := range hr {
			h := int(rank[i*H+j])
			if h < 0 || h >= H || seen[h] {
				return fmt.Errorf("kernels: internal error: row %d: head rank %v is not a permutation", t, rank[i*H:(i+1)*H])
			}
			seen[h] = true
			hr[j] = h
		}
		out.HeadRank[t] = hr
		if math.IsNaN(refMass[i]) {
			return fmt.Errorf("kernels: internal error: row %d: reference mass is NaN", t)
		}
	}

	for mi, m := range methods {
		if err := ctx.Err(); err != nil {
			return err
		}
		mo := &out.Methods[mi]
		if m.Kind == indexer.DSA {
			for i := 0; i < n; i++ {
				mo.Sets[r0+i] = out.Reference[r0+i]
				mo.Mass[r0+i] = indexer.MassRatio(refMass[i], refMass[i])
			}
			continue
		}
		want := func(L int) int { return min(K, L) } // exact count, or -1: at most K
		switch m.Kind {
		case indexer.MISA, indexer.MISADagger:
			score := c.score
			var err error
			switch m.Router {
			case indexer.RouterOracle:
				score = c.contrib
			case indexer.RouterSelfKey:
				err = steps(
					func() error { return poison(c.score, poisonIdx) },
					func() error { return d.routerSelfKey(qB, kB, wB, posB, r0, n, H, D, c.score) },
				)
			case indexer.RouterQNorm:
				err = steps(
					func() error { return poison(c.score, poisonIdx) },
					func() error { return d.routerQNorm(qB, r0, n, H, D, c.score) },
				)
			case indexer.RouterPooled:
				err = steps(
					func() error { return poison(c.own, poisonIdx) },
					func() error {
						return d.poolOwn(kB, posB, r0, n, N, D, m.Block, m.Pool == indexer.PoolReference, c.own)
					},
					func() error { return poison(c.score, poisonIdx) },
					func() error {
						return d.routerPooled(qB, wB, posB, pooled[m.Block], c.own, r0, n, H, D, m.Block, c.score)
					},
				)
			}
			if err != nil {
				return err
			}
			nh := m.Heads
			err = steps(
				func() error { return poison(c.heads, poisonIdx) },
				func() error { return d.rankHeads(score, n, H, nh, c.heads, buffer{}) },
				func() error { return poison(c.sub, poisonScore) },
				func() error {
					return d.logits(qB, kB, wB, posB, c.heads, nh, H, D, N, r0, n, chunkVis, s.ld, c.sub)
				},
				func() error { return poison(c.set, poisonIdx) },
				func() error { return poison(c.setCnt, poisonIdx) },
			)
			if err != nil {
				return err
			}
			if m.Kind == indexer.MISA {
				err = d.topk(c.sub, s.ld, buffer{}, 0, c.lens, n, K, c.set, s.kRef, c.setCnt)
			} else {
				k1 := m.Stage1
				want = func(L int) int { return min(K, k1, L) }
				err = steps(
					func() error { return poison(c.cand, poisonIdx) },
					func() error { return poison(c.candCnt, poisonIdx) },
					func() error { return d.topk(c.sub, s.ld, buffer{}, 0, c.lens, n, k1, c.cand, s.candW, c.candCnt) },
					func() error { return d.topk(c.all, s.ld, c.cand, s.candW, c.candCnt, n, K, c.set, s.kRef, c.setCnt) },
				)
			}
			if err != nil {
				return err
			}
			heads := make([]int32, n*nh)
			if err := download(heads, c.heads); err != nil {
				return err
			}
			for i := 0; i < n; i++ {
				row := make([]int, nh)
				for j := range row {
					h := int(heads[i*nh+j])
					if h < 0 || h >= H || (j > 0 && h <= row[j-1]) {
						return fmt.Errorf("kernels: internal error: %s row %d: routed heads %v", m.Name(), r0+i, heads[i*nh:(i+1)*nh])
					}
					row[j] = h
				}
				mo.Heads[r0+i] = row
			}
		case indexer.HISA:
			B, mm := m.HisaBlock, m.HisaBlocks
			nbl := make([]int32, n)
			for i := range nbl {
				nbl[i] = int32(in.QPos[r0+i]/int64(B) + 1)
			}
			maxBlocks := int(nbl[n-1])
			want = func(int) int { return -1 }
			err := steps(
				func() error { return upload(c.nbLens, nbl) },
				func() error { return poison(c.own, poisonIdx) },
				func() error { return d.poolOwn(kB, posB, r0, n, N, D, B, false, c.own) },
				func() error { return poison(c.bs, poisonScore) },
				func() error {
					return d.hisaBlockScores(qB, wB, posB, pooled[B], c.own, r0, n, H, D, B, maxBlocks, s.nbW, c.bs)
				},
				func() error { return poison(c.chosen, poisonIdx) },
				func() error { return poison(c.chCnt, poisonIdx) },
				func() error { return d.topk(c.bs, s.nbW, buffer{}, 0, c.nbLens, n, mm, c.chosen, s.chW, c.chCnt) },
				func() error { return poison(c.cand, poisonIdx) },
				func() error { return poison(c.candCnt, poisonIdx) },
				func() error {
					return d.hisaExpand(c.chosen, s.chW, c.chCnt, posB, r0, n, B, c.cand, s.candW, c.candCnt)
				},
				func() error { return poison(c.set, poisonIdx) },
				func() error { return poison(c.setCnt, poisonIdx) },
				func() error { return d.topk(c.all, s.ld, c.cand, s.candW, c.candCnt, n, K, c.set, s.kRef, c.setCnt) },
			)
			if err != nil {
				return err
			}
		}
		err := steps(
			func() error { return poison(c.mass, poisonIdx) },
			func() error { return d.mass(c.all, s.ld, c.set, s.kRef, c.setCnt, n, c.mass) },
		)
		if err != nil {
			return err
		}
		idx := make([]int32, n*s.kRef)
		cnt := make([]int32, n)
		ms := make([]float64, n)
		if err := steps(
			func() error { return download(idx, c.set) },
			func() error { return download(cnt, c.setCnt) },
			func() error { return download(ms, c.mass) },
		); err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			t := r0 + i
			L := in.Visible(t)
			set, err := rowSet(idx, cnt, i, s.kRef, L, want(L), m.Name(), t)
			if err != nil {
				return err
			}
			if len(set) > K {
				return fmt.Errorf("kernels: internal error: %s row %d: %d tokens selected, k = %d", m.Name(), t, len(set), K)
			}
			if math.IsNaN(ms[i]) {
				return fmt.Errorf("kernels: internal error: %s row %d: mass is NaN", m.Name(), t)
			}
			mo.Sets[t] = set
			mo.Mass[t] = indexer.MassRatio(ms[i], refMass[i])
		}
	}
	return nil
}

// rowSet extracts row i of a downloaded selection and checks that the
// kernels wrote all of it: want entries (if want ≥ 0), strictly ascending,
// inside [0, L).
func rowSet(idx, cnt []int32, i, width, L, want int, what string, t int) ([]int32, error) {
	c := int(cnt[i])
	if c < 0 || c > width || (want >= 0 && c != want) {
		return nil, fmt.Errorf("kernels: internal error: %s row %d: %d tokens selected, want %d", what, t, c, want)
	}
	set := make([]int32, c)
	copy(set, idx[i*width:i*width+c])
	for j, v := range set {
		if v < 0 || int(v) >= L || (j > 0 && v <= set[j-1]) {
			return nil, fmt.Errorf("kernels: internal error: %s row %d: entry %d = %d (visible %d, previous %d): unwritten or out of order",
				what, t, j, v, L, set[max(j-1, 0)])
		}
	}
	return set, nil
}
