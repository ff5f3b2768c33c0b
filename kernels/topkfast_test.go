//go:build cuda

package kernels

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// topkFast must return exactly what topk (topk_rows) returns: the same
// count and the same ascending index sequence in every row. Each case
// draws fresh inputs (the seed is logged), poisons the outputs before each
// kernel runs, and checks that every slot below the count was written and
// none above it; cases small enough are also checked against a CPU
// reference (stable sort by score key, descending).

// tkProblem is one batch of rows.
type tkProblem struct {
	rows, ld, k int
	scores      []float32 // rows × ld
	lens        []int32
	cand        []int32 // rows × candLd, ascending positions per row; nil: dense rows
	candLd      int
}

func (p *tkProblem) outLd() int { return p.k + 3 } // odd, and room to catch stray writes

// tkScoreKey is score_key (common.cuh).
func tkScoreKey(f float32) uint32 {
	b := math.Float32bits(f)
	if b<<1 == 0 {
		b = 0
	}
	if b&0x80000000 != 0 {
		return ^b
	}
	return b | 0x80000000
}

// tkCPU is the reference for row r.
func tkCPU(p *tkProblem, r int) []int32 {
	n := int(p.lens[r])
	if n <= 0 {
		return nil
	}
	val := func(i int) int32 {
		if p.cand != nil {
			return p.cand[r*p.candLd+i]
		}
		return int32(i)
	}
	keys := make([]uint32, n)
	pos := make([]int, n)
	for i := range pos {
		pos[i] = i
		keys[i] = tkScoreKey(p.scores[r*p.ld+int(val(i))])
	}
	slices.SortStableFunc(pos, func(a, b int) int { return cmp.Compare(keys[b], keys[a]) })
	sel := pos[:min(p.k, n)]
	slices.Sort(sel)
	out := make([]int32, len(sel))
	for i, s := range sel {
		out[i] = val(s)
	}
	return out
}

type tkOut struct{ idx, cnt []int32 }

// tkRunBoth runs topk then topkFast on the same device inputs.
func tkRunBoth(t *testing.T, g *GPU, p *tkProblem) (ref, fast tkOut) {
	t.Helper()
	ol := p.outLd()
	err := g.d.do(func() error {
		d := g.d
		a := &arena{d: d}
		defer a.free()
		sc, err := a.alloc(int64(len(p.scores))*4, "scores")
		if err != nil {
			return err
		}
		ln, err := a.alloc(int64(p.rows)*4, "lens")
		if err != nil {
			return err
		}
		var cb buffer
		if p.cand != nil {
			if cb, err = a.alloc(int64(len(p.cand))*4, "cand"); err != nil {
				return err
			}
			if err := upload(cb, p.cand); err != nil {
				return err
			}
		}
		out, err := a.alloc(int64(p.rows)*int64(ol)*4, "out")
		if err != nil {
			return err
		}
		cnt, err := a.alloc(int64(p.rows)*4, "count")
		if err != nil {
			return err
		}
		if err := upload(sc, p.scores); err != nil {
			return err
		}
		if err := upload(ln, p.lens); err != nil {
			return err
		}
		for i, f := range []func() error{
			func() error { return d.topk(sc, p.ld, cb, p.candLd, ln, p.rows, p.k, out, ol, cnt) },
			func() error { return d.topkFast(sc, p.ld, cb, p.candLd, ln, p.rows, p.k, out, ol, cnt) },
		} {
			if err := poison(out, 0xFFFFFFFF); err != nil {
				return err
			}
			if err := poison(cnt, 0xFFFFFFFF); err != nil {
				return err
			}
			if err := f(); err != nil {
				return err
			}
			o := tkOut{make([]int32, p.rows*ol), make([]int32, p.rows)}
			if err := download(o.idx, out); err != nil {
				return err
			}
			if err := download(o.cnt, cnt); err != nil {
				return err
			}
			if i == 0 {
				ref = o
			} else {
				fast = o
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ref, fast
}

// tkCheck compares topkFast with topk row by row (and with the CPU for
// rows where cpuRow says so).
func tkCheck(t *testing.T, g *GPU, p *tkProblem, cpuRow func(r int) bool) {
	t.Helper()
	ref, fast := tkRunBoth(t, g, p)
	ol := p.outLd()
	cpuRows := 0
	for r := 0; r < p.rows; r++ {
		want := min(p.k, max(int(p.lens[r]), 0))
		if int(ref.cnt[r]) != want || int(fast.cnt[r]) != want {
			t.Fatalf("row %d (len %d, k %d): count topk %d, topkFast %d, want %d", r, p.lens[r], p.k, ref.cnt[r], fast.cnt[r], want)
		}
		rr, fr := ref.idx[r*ol:(r+1)*ol], fast.idx[r*ol:(r+1)*ol]
		for i := 0; i < want; i++ {
			if fr[i] == -1 {
				t.Fatalf("row %d (len %d): topkFast slot %d of %d not written", r, p.lens[r], i, want)
			}
		}
		for i := want; i < ol; i++ {
			if fr[i] != -1 || rr[i] != -1 {
				t.Fatalf("row %d (len %d): slot %d beyond the count %d written (topk %d, topkFast %d)", r, p.lens[r], i, want, rr[i], fr[i])
			}
		}
		if !slices.Equal(rr[:want], fr[:want]) {
			diff := 0
			first := -1
			for i := 0; i < want; i++ {
				if rr[i] != fr[i] {
					diff++
					if first < 0 {
						first = i
					}
				}
			}
			t.Fatalf("row %d (len %d, k %d): topkFast differs from topk in %d slots, first at %d: topk %v…, topkFast %v…",
				r, p.lens[r], p.k, diff, first, rr[first:min(first+8, want)], fr[first:min(first+8, want)])
		}
		if cpuRow != nil && cpuRow(r) {
			cpuRows++
			if c := tkCPU(p, r); !slices.Equal(c, fr[:want]) {
				t.Fatalf("row %d (len %d, k %d): topk and topkFast agree but differ from the CPU reference", r, p.lens[r], p.k)
			}
		}
	}
	t.Logf("%d rows × ld %d, k %d, cand %v: topkFast = topk in every row; %d rows also = CPU", p.rows, p.ld, p.k, p.cand != nil, cpuRows)
}

// tkFill draws one row of values of the given kind.
func tkFill(rng *rand.Rand, row []float32, kind string) {
	switch kind {
	case "normal":
		for i := range row {
			row[i] = float32(rng.NormFloat64())
		}
	case "relu", "relu99": // many exact zeros (±0): ties at the threshold
		zero := 0.8
		if kind == "relu99" {
			zero = 0.99
		}
		for i := range row {
			if rng.Float64() < zero {
				row[i] = 0
				if rng.IntN(2) == 0 {
					row[i] = float32(math.Copysign(0, -1))
				}
			} else {
				row[i] = float32(math.Abs(rng.NormFloat64()))
			}
		}
	case "equal":
		for i := range row {
			row[i] = 1.25
		}
	case "zeros":
		for i := range row {
			row[i] = float32(math.Copysign(0, float64(rng.IntN(2)*2-1)))
		}
	case "few":
		vals := []float32{-3, -1, 0, 0.5, 2}
		for i := range row {
			row[i] = vals[rng.IntN(len(vals))]
		}
	case "asc":
		for i := range row {
			row[i] = float32(i)
		}
	case "desc":
		for i := range row {
			row[i] = -float32(i)
		}
	case "saw": // ascending runs: the filter threshold is beaten again and again
		for i := range row {
			row[i] = float32(i%5000) + float32(i)/1e6
		}
	case "sinks": // every 16th element large: the sampled guess lets < k through
		for i := range row {
			row[i] = float32(rng.NormFloat64())
			if i%16 == 0 {
				row[i] += 10
			}
		}
	case "special":
		specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(1), -math.Float32frombits(7),
			math.Float32frombits(0xFFFFFFFF), math.Float32frombits(0x7F800001), 0, float32(math.Copysign(0, -1))}
		for i := range row {
			if rng.IntN(100) == 0 {
				row[i] = specials[rng.IntN(len(specials))]
			} else {
				row[i] = float32(rng.NormFloat64())
			}
		}
	default:
		panic("tkFill: " + kind)
	}
}

// tkMake builds a problem; lenOf gives row r's length.
func tkMake(rng *rand.Rand, rows, ld, k int, kind string, lenOf func(r int) int) *tkProblem {
	p := &tkProblem{rows: rows, ld: ld, k: k, scores: make([]float32, rows*ld), lens: make([]int32, rows)}
	for r := 0; r < rows; r++ {
		tkFill(rng, p.scores[r*ld:(r+1)*ld], kind)
		p.lens[r] = int32(lenOf(r))
	}
	return p
}

// mixedLens: the special lengths first, then random ones.
func mixedLens(rng *rand.Rand, ld, k int) func(r int) int {
	special := []int{0, 1, k - 1, k, k + 1, k + 3, 4097, ld - 1, ld, ld - 2, 2 * k, 2*k + 1}
	return func(r int) int {
		if r < len(special) {
			return max(0, min(special[r], ld))
		}
		return rng.IntN(ld + 1)
	}
}

func tkSeed(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, 0x70bfa57))
}

func tkAll(int) bool { return true }

func TestTopKFastRows(t *testing.T) {
	g := testGPU(t)
	cases := []struct {
		name        string
		rows, ld, k int
		kind        string
		lens        string // "mixed", "full"
		cpu         bool
	}{
		{"normal_oddld", 97, 20011, 2048, "normal", "mixed", true},
		{"relu", 64, 65537, 2048, "relu", "mixed", true},
		{"relu99", 32, 40003, 2048, "relu99", "mixed", true},
		{"equal", 16, 70001, 2048, "equal", "mixed", true},
		{"equal_k1", 16, 70001, 1, "equal", "mixed", true},
		{"zeros", 12, 9001, 100, "zeros", "mixed", true},
		{"few", 64, 30001, 2048, "few", "mixed", true},
		{"k1", 50, 12345, 1, "normal", "mixed", true},
		{"k7", 30, 5003, 7, "few", "mixed", true},
		{"k64", 30, 5003, 64, "normal", "mixed", true},
		{"k8192", 40, 65536, 8192, "normal", "mixed", true},
		{"k8192_relu", 20, 65536, 8192, "relu", "full", true},
		{"asc", 8, 65536, 2048, "asc", "full", true},
		{"desc", 8, 65536, 2048, "desc", "full", true},
		{"saw", 8, 65539, 2048, "saw", "full", true},
		{"special", 16, 33333, 2048, "special", "mixed", true},
		{"k30000_fallback", 4, 70001, 30000, "normal", "mixed", true},
		{"sinks_guess_fails", 16, 65536, 2048, "sinks", "full", true},
		{"sinks_guess_fails_oddld", 16, 65539, 2048, "sinks", "mixed", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := tkSeed(t)
			lenOf := mixedLens(rng, c.ld, c.k)
			if c.lens == "full" {
				lenOf = func(int) int { return c.ld }
			}
			tkCheck(t, g, tkMake(rng, c.rows, c.ld, c.k, c.kind, lenOf), tkAll)
		})
	}
}

// The same kernel without the sampled first threshold.
// The plain __ldg loads (flags & 16), kept for comparison.
func TestTopKFastLdg(t *testing.T) {
	g := testGPU(t)
	topkFastDiag = 16
	defer func() { topkFastDiag = 0 }()
	for _, kind := range []string{"normal", "relu99", "sinks"} {
		t.Run(kind, func(t *testing.T) {
			rng := tkSeed(t)
			tkCheck(t, g, tkMake(rng, 40, 65537, 2048, kind, mixedLens(rng, 65537, 2048)), tkAll)
		})
	}
}

// The sample as strided single floats (flags & 32), kept for comparison.
func TestTopKFastScalarSample(t *testing.T) {
	g := testGPU(t)
	topkFastDiag = 32
	defer func() { topkFastDiag = 0 }()
	for _, kind := range []string{"normal", "relu99", "sinks"} {
		t.Run(kind, func(t *testing.T) {
			rng := tkSeed(t)
			tkCheck(t, g, tkMake(rng, 40, 65537, 2048, kind, mixedLens(rng, 65537, 2048)), tkAll)
		})
	}
}

func TestTopKFastNoGuess(t *testing.T) {
	g := testGPU(t)
	topkFastNoGuess = true
	defer func() { topkFastNoGuess = false }()
	for _, kind := range []string{"normal", "relu", "equal", "asc", "sinks"} {
		t.Run(kind, func(t *testing.T) {
			rng := tkSeed(t)
			tkCheck(t, g, tkMake(rng, 40, 65537, 2048, kind, mixedLens(rng, 65537, 2048)), tkAll)
		})
	}
}

// Candidate mode: ascending random subsets of a row, candLd odd.
func TestTopKFastCandidates(t *testing.T) {
	g := testGPU(t)
	cases := []struct {
		name                string
		rows, ld, candLd, k int
		kind                string
	}{
		{"normal", 40, 50003, 9001, 2048, "normal"},
		{"few", 40, 50003, 9001, 2048, "few"},
		{"k1", 20, 20001, 3001, 1, "equal"},
		// Few rows and long lists: split over CTAs, merged in a second launch.
		{"split_few", 16, 200000, 40001, 2048, "few"},
		{"split_normal", 16, 200000, 40001, 2048, "normal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := tkSeed(t)
			p := tkMake(rng, c.rows, c.ld, c.k, c.kind, mixedLens(rng, c.candLd, c.k))
			p.candLd = c.candLd
			p.cand = make([]int32, c.rows*c.candLd)
			for r := 0; r < c.rows; r++ {
				n := int(p.lens[r])
				if r >= 12 && rng.IntN(2) == 0 {
					n = c.candLd // long lists in the split cases
					p.lens[r] = int32(n)
				}
				pos := rng.Perm(c.ld)[:n]
				slices.Sort(pos)
				for i, v := range pos {
					p.cand[r*c.candLd+i] = int32(v)
				}
				for i := n; i < c.candLd; i++ {
					p.cand[r*c.candLd+i] = -7 // never read
				}
			}
			tkCheck(t, g, p, tkAll)
		})
	}
}

// The two benchmark shapes (decode rows are split over CTAs).
func TestTopKFastShapes(t *testing.T) {
	g := testGPU(t)
	for _, c := range []struct {
		name        string
		rows, ld, k int
		kind        string
		every       int // CPU check on every n-th row
	}{
		{"prefill_1024x65536", 1024, 65536, 2048, "normal", 128},
		{"decode_64x131072", 64, 131072, 2048, "normal", 8},
		{"decode_relu", 64, 131072, 2048, "relu", 8},
		{"decode_relu99", 64, 131072, 2048, "relu99", 8},
		{"decode_equal", 64, 131072, 2048, "equal", 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := tkSeed(t)
			lenOf := func(r int) int { // causal last chunk
				return c.ld - c.rows + r + 1
			}
			if c.rows == 64 {
				short := []int{0, 100, 2048, 2049, 5000, 20000, 40000, 70001}
				lenOf = func(r int) int {
					if r < len(short) {
						return short[r]
					}
					return c.ld - rng.IntN(4)
				}
			}
			tkCheck(t, g, tkMake(rng, c.rows, c.ld, c.k, c.kind, lenOf), func(r int) bool { return r%c.every == 0 })
		})
	}
}

// BenchmarkTopKFast times topk (topk_rows) and topkFast at the prefill shape
// (1024 × 65536, k 2048) and the decode shape (64 × 131072, k 2048): median
// of 20 event-timed runs after 3 warm-ups, with the effective bandwidth
// (logit bytes read once / time). Decode inputs rotate over 4 copies
// (128 MB) so that the 32 MB of logits are not served from L2.
func BenchmarkTopKFast(b *testing.B) {
	g := testGPU(b)
	const k = 2048
	for _, sh := range []struct {
		name            string
		rows, n, copies int
		kind            string
	}{
		{"prefill_1024x65536", 1024, 65536, 1, "normal"},
		{"prefill_relu99_1024x65536", 1024, 65536, 1, "relu99"},
		{"decode_64x131072", 64, 131072, 4, "normal"},
	} {
		rng := rand.New(rand.NewPCG(uint64(sh.rows), uint64(sh.n)))
		host := make([]float32, sh.rows*sh.n)
		for r := 0; r < sh.rows; r++ {
			tkFill(rng, host[r*sh.n:(r+1)*sh.n], sh.kind)
		}
		lens := make([]int32, sh.rows)
		for r := range lens {
			lens[r] = int32(sh.n)
		}
		a := &arena{d: g.d}
		var scores []buffer
		var ln, out, cnt buffer
		err := g.d.do(func() error {
			for c := 0; c < sh.copies; c++ {
				s, err := a.alloc(int64(len(host))*4, "bench scores")
				if err != nil {
					return err
				}
				if err := upload(s, host); err != nil {
					return err
				}
				scores = append(scores, s)
			}
			var err error
			if ln, err = a.alloc(int64(sh.rows)*4, "lens"); err != nil {
				return err
			}
			if out, err = a.alloc(int64(sh.rows)*k*4, "out"); err != nil {
				return err
			}
			if cnt, err = a.alloc(int64(sh.rows)*4, "count"); err != nil {
				return err
			}
			return upload(ln, lens)
		})
		if err != nil {
			b.Fatal(err)
		}
		for _, kern := range []struct {
			name string
			f    func(d *device, s buffer) error
		}{
			{"topk_rows", func(d *device, s buffer) error { return d.topk(s, sh.n, buffer{}, 0, ln, sh.rows, k, out, k, cnt) }},
			{"topkFast", func(d *device, s buffer) error { return d.topkFast(s, sh.n, buffer{}, 0, ln, sh.rows, k, out, k, cnt) }},
			{"topkFast_ldg", func(d *device, s buffer) error {
				topkFastDiag = 16 // plain __ldg loads (the version before the L2 hint)
				defer func() { topkFastDiag = 0 }()
				return d.topkFast(s, sh.n, buffer{}, 0, ln, sh.rows, k, out, k, cnt)
			}},
			{"topkFast_scalarsample", func(d *device, s buffer) error {
				topkFastDiag = 32 // the sample as strided single floats (the version before)
				defer func() { topkFastDiag = 0 }()
				return d.topkFast(s, sh.n, buffer{}, 0, ln, sh.rows, k, out, k, cnt)
			}},
			{"topkFast_streamonly", func(d *device, s buffer) error {
				topkFastDiag = 2
				defer func() { topkFastDiag = 0 }()
				return d.topkFast(s, sh.n, buffer{}, 0, ln, sh.rows, k, out, k, cnt)
			}},
			{"topkFast_noguess", func(d *device, s buffer) error {
				topkFastNoGuess = true
				defer func() { topkFastNoGuess = false }()
				return d.topkFast(s, sh.n, buffer{}, 0, ln, sh.rows, k, out, k, cnt)
			}},
		} {
			b.Run(sh.name+"/"+kern.name, func(b *testing.B) {
				var ms []float64
				err := g.d.do(func() error {
					i := 0
					var err error
					ms, err = g.d.timeEvents(benchWarm, benchReps, func() error {
						s := scores[i%len(scores)]
						i++
						return kern.f(g.d, s)
					})
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				slices.Sort(ms)
				med := ms[len(ms)/2]
				bytes := float64(sh.rows) * float64(sh.n) * 4
				b.ReportMetric(med*1e6, "ns/op")
				b.ReportMetric(med*1e3, "us")
				b.ReportMetric(ms[0]*1e3, "min-us")
				b.ReportMetric(ms[len(ms)-1]*1e3, "max-us")
				b.ReportMetric(bytes/(med*1e-3)/1e9, "GB/s")
				b.Logf("%s %s: median %.1f µs (min %.1f, max %.1f), %.0f GB/s effective", sh.name, kern.name,
					med*1e3, ms[0]*1e3, ms[len(ms)-1]*1e3, bytes/(med*1e-3)/1e9)
			})
		}
		g.d.do(func() error { a.free(); return nil })
	}
}
