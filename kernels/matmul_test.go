//go:build cuda

package kernels

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/misabench/misabench/convert"
	"github.com/misabench/misabench/indexer"
)

// GPU.MatMulT against float64 references on the CPU. The kernel sums in
// convert.matVec's order (four partial sums by j mod 4, the tail into the
// first), so against that order it must agree bit for bit; against a plain
// ascending float64 sum, rounded once to fp32, it may differ in the last
// bit where the float64 sum lies next to a rounding boundary of fp32: the
// test counts those and reports them.

var _ convert.Multiplier = (*GPU)(nil)

// matVecRef are the two references of Y = X·Aᵀ: vec in convert.matVec's
// order (what the kernel promises to reproduce), seq as one ascending
// float64 sum, and abs = Σ|products| (what bounds the float64 rounding of
// either sum). Rows run in parallel.
func matVecRef(x, a []float32, n, m, k int) (vec, seq []float32, abs []float64) {
	vec, seq, abs = make([]float32, n*m), make([]float32, n*m), make([]float64, n*m)
	var wg sync.WaitGroup
	workers := runtime.NumCPU()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				xr := x[i*k : (i+1)*k]
				for j := 0; j < m; j++ {
					ar := a[j*k : (j+1)*k]
					var s0, s1, s2, s3, s, sa float64
					l := 0
					for ; l+4 <= k; l += 4 {
						p0, p1 := float64(xr[l])*float64(ar[l]), float64(xr[l+1])*float64(ar[l+1])
						p2, p3 := float64(xr[l+2])*float64(ar[l+2]), float64(xr[l+3])*float64(ar[l+3])
						s0, s1, s2, s3 = s0+p0, s1+p1, s2+p2, s3+p3
						s = s + p0 + p1 + p2 + p3
						sa += math.Abs(p0) + math.Abs(p1) + math.Abs(p2) + math.Abs(p3)
					}
					for ; l < k; l++ {
						p := float64(xr[l]) * float64(ar[l])
						s0 += p
						s += p
						sa += math.Abs(p)
					}
					vec[i*m+j] = float32(s0 + s1 + s2 + s3)
					seq[i*m+j] = float32(s)
					abs[i*m+j] = sa
				}
			}
		}(w)
	}
	wg.Wait()
	return vec, seq, abs
}

// poisoned returns n floats of NaN bytes (0xFF), which no kernel output of
// finite inputs can be.
func poisoned(n int) []float32 {
	y := make([]float32, n)
	for i := range y {
		y[i] = math.Float32frombits(0xFFFFFFFF)
	}
	return y
}

func randFloats(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * scale)
	}
	return v
}

// ulpDiff is the distance of two finite fp32 values in units in the last
// place (ordered bit patterns).
func ulpDiff(a, b float32) int64 {
	key := func(f float32) int64 {
		u := int64(math.Float32bits(f))
		if u&0x80000000 != 0 {
			return -(u & 0x7FFFFFFF)
		}
		return u
	}
	d := key(a) - key(b)
	if d < 0 {
		d = -d
	}
	return d
}

// checkMatMul compares y (GPU) with both references: bit-equal to vec;
// equal to seq after rounding to fp32 except for differences that the
// float64 rounding of two summation orders explains (counted: one ulp, or
// more where cancellation leaves a result far below Σ|products|). It
// returns the count of outputs that differ from seq.
func checkMatMul(t *testing.T, what string, y, vec, seq []float32, abs []float64, m int) int {
	t.Helper()
	lastBit := 0
	for i, v := range y {
		if math.IsNaN(float64(v)) {
			t.Fatalf("%s: y[%d][%d] is NaN: not written", what, i/m, i%m)
		}
		if math.Float32bits(v) != math.Float32bits(vec[i]) {
			t.Fatalf("%s: y[%d][%d] = %v (%#08x), matVec order gives %v (%#08x)", what, i/m, i%m,
				v, math.Float32bits(v), vec[i], math.Float32bits(vec[i]))
		}
		switch d := ulpDiff(v, seq[i]); {
		case d == 0:
		case d == 1 || math.Abs(float64(v)-float64(seq[i])) <= 1e-13*abs[i]:
			lastBit++
		default:
			t.Fatalf("%s: y[%d][%d] = %v, the ascending float64 sum gives %v (%d ulp, Σ|products| %g)", what, i/m, i%m, v, seq[i], d, abs[i])
		}
	}
	return lastBit
}

func TestMatMulT(t *testing.T) {
	g := testGPU(t)
	rng := rand.New(rand.NewPCG(31, 32))
	shapes := [][3]int{ // n, m, k
		{1, 1, 1}, {1, 1, 2}, {1, 1, 3}, {1, 1, 4}, {1, 1, 5}, {2, 3, 7},
		{1, 128, 7168}, {5, 1, 7168}, {64, 64, 32}, {65, 63, 33}, {63, 65, 31},
		{130, 200, 1}, {129, 7, 35}, {200, 129, 130}, {37, 1024, 1536},
		{5000, 128 + 8, 7168}, {5000, 128, 7171}, {1000, 8, 7168}, {3000, 8, 512},
	}
	total, lastBits := 0, 0
	for _, sh := range shapes {
		n, m, k := sh[0], sh[1], sh[2]
		x := randFloats(rng, n*k, 1)
		a := randFloats(rng, m*k, 1/math.Sqrt(float64(k)))
		y := poisoned(n * m)
		if err := g.MatMulT(y, x, a, n, m, k); err != nil {
			t.Fatalf("%v: %v", sh, err)
		}
		vec, seq, abs := matVecRef(x, a, n, m, k)
		lb := checkMatMul(t, "random "+shapeName(sh), y, vec, seq, abs, m)
		t.Logf("%5d×%5d×%5d: bit-equal to matVec's order; %d of %d outputs differ from the ascending sum (last bit)", n, m, k, lb, n*m)
		total += n * m
		lastBits += lb
	}
	t.Logf("all shapes: %d outputs, %d last-bit differences from the ascending float64 sum (%.2g%%)", total, lastBits, 100*float64(lastBits)/float64(total))
	if lastBits*1000 > total {
		t.Errorf("%d of %d outputs differ from the ascending sum: more than float64 reordering explains", lastBits, total)
	}
}

func shapeName(sh [3]int) string { return fmt.Sprintf("%d×%d×%d", sh[0], sh[1], sh[2]) }

// Integer inputs make every sum exact in float64: small integers give an
// exact fp32 result; large ones (sums beyond 2^24) give the exact sum
// rounded once to fp32 (ties to even), whatever the order.
func TestMatMulTIntegers(t *testing.T) {
	g := testGPU(t)
	rng := rand.New(rand.NewPCG(33, 34))
	for _, c := range []struct {
		n, m, k int
		lim     int64
	}{
		{70, 67, 7168, 8},        // |sum| ≤ 7168·64: exact in fp32
		{33, 130, 7171, 1 << 12}, // products up to 2^24, sums up to 2^37: rounded once
		{1, 1, 1, 1 << 12},
		{3, 2, 5, 1 << 12},
	} {
		x, a := make([]float32, c.n*c.k), make([]float32, c.m*c.k)
		for i := range x {
			x[i] = float32(rng.Int64N(2*c.lim+1) - c.lim)
		}
		for i := range a {
			a[i] = float32(rng.Int64N(2*c.lim+1) - c.lim)
		}
		y := poisoned(c.n * c.m)
		if err := g.MatMulT(y, x, a, c.n, c.m, c.k); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < c.n; i++ {
			for j := 0; j < c.m; j++ {
				var s int64
				for l := 0; l < c.k; l++ {
					s += int64(x[i*c.k+l]) * int64(a[j*c.k+l])
				}
				if want := float32(float64(s)); math.Float32bits(y[i*c.m+j]) != math.Float32bits(want) {
					t.Fatalf("%d×%d×%d (|v| ≤ %d): y[%d][%d] = %v, exact sum %d rounds to %v", c.n, c.m, c.k, c.lim, i, j, y[i*c.m+j], s, want)
				}
			}
		}
	}
}

// Chunked runs (rows of X, and rows of A when A is large) give the same
// bits as one chunk; empty shapes and bad lengths are handled.
func TestMatMulTChunks(t *testing.T) {
	g := testGPU(t)
	rng := rand.New(rand.NewPCG(35, 36))
	n, m, k := 300, 200, 101
	x, a := randFloats(rng, n*k, 1), randFloats(rng, m*k, 0.1)
	want := poisoned(n * m)
	if err := g.MatMulT(want, x, a, n, m, k); err != nil {
		t.Fatal(err)
	}
	vec, _, _ := matVecRef(x, a, n, m, k)
	if !slices.Equal(f32bits(want), f32bits(vec)) {
		t.Fatal("one chunk differs from matVec's order")
	}
	for _, budget := range []int64{64 << 10, 200 << 10} {
		y := poisoned(n * m)
		if err := g.matMulT(y, x, a, n, m, k, budget); err != nil {
			t.Fatalf("budget %d: %v", budget, err)
		}
		if !slices.Equal(f32bits(y), f32bits(want)) {
			t.Fatalf("budget %d B: chunked result differs", budget)
		}
	}
	// A budget of a few rows: chunks of 2 rows of X × 3 rows of A.
	n2, m2 := 11, 10
	y := poisoned(n2 * m2)
	if err := g.matMulT(y, x[:n2*k], a[:m2*k], n2, m2, k, int64(6*k*4)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n2; i++ {
		if !slices.Equal(f32bits(y[i*m2:(i+1)*m2]), f32bits(want[i*m:i*m+m2])) {
			t.Fatalf("tiny budget: row %d differs", i)
		}
	}
	if err := g.matMulT(make([]float32, 4), make([]float32, 2*1000), make([]float32, 2*1000), 2, 2, 1000, 1000); err == nil {
		t.Error("a row larger than the budget was accepted")
	}
	// Empty shapes: nothing to do; K = 0: zeros.
	for _, sh := range [][3]int{{0, 5, 5}, {5, 0, 5}} {
		if err := g.MatMulT(nil, make([]float32, sh[0]*sh[2]), make([]float32, sh[1]*sh[2]), sh[0], sh[1], sh[2]); err != nil {
			t.Errorf("%v: %v", sh, err)
		}
	}
	y = poisoned(6)
	if err := g.MatMulT(y, nil, nil, 2, 3, 0); err != nil || slices.ContainsFunc(y, func(v float32) bool { return v != 0 }) {
		t.Errorf("k = 0: %v, y %v", err, y)
	}
	if err := g.MatMulT(make([]float32, 5), make([]float32, 6), make([]float32, 6), 2, 3, 3); err == nil {
		t.Error("wrong y length accepted")
	}
	if err := g.MatMulT(nil, nil, nil, -1, 3, 3); err == nil {
		t.Error("negative shape accepted")
	}
}

func f32bits(v []float32) []uint32 {
	out := make([]uint32, len(v))
	for i, f := range v {
		out[i] = math.Float32bits(f)
	}
	return out
}

// TestMatMulTSpeed logs the kernel's time (CUDA events, median of 10 after
// warm-up) and a whole call's wall time, transfers included, at a shape of
// DeepSeek-V3.2's k = wk·x (stacked with weights_proj as convert does).
func TestMatMulTSpeed(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	g := testGPU(t)
	rng := rand.New(rand.NewPCG(37, 38))
	n, m, k := 16384, 128+64, 7168
	x, a := randFloats(rng, n*k, 1), randFloats(rng, m*k, 0.01)
	y := poisoned(n * m)
	start := time.Now()
	if err := g.MatMulT(y, x, a, n, m, k); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	var ms []float64
	err := g.d.do(func() error {
		var ar arena
		defer ar.free()
		xB, err := ar.alloc(int64(n*k)*4, "x")
		if err != nil {
			return err
		}
		aB, err := ar.alloc(int64(m*k)*4, "a")
		if err != nil {
			return err
		}
		yB, err := ar.alloc(int64(n*m)*4, "y")
		if err != nil {
			return err
		}
		if err := upload(xB, x); err != nil {
			return err
		}
		if err := upload(aB, a); err != nil {
			return err
		}
		ms, err = g.d.timeEvents(3, 10, func() error { return g.d.matMulT(xB, aB, n, m, k, yB) })
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sorted := slices.Sorted(slices.Values(ms))
	med := sorted[len(sorted)/2]
	fma := float64(n) * float64(m) * float64(k)
	t.Logf("%s: matmul_t %d×%d×%d: kernel %.3f ms median (min %.3f, max %.3f) = %.1f TFLOP/s fp64 (2 per DFMA); whole call %.1f ms (%.0f MB of X copied)",
		g.Name(), n, m, k, med, sorted[0], sorted[len(sorted)-1], 2*fma/(med*1e-3)/1e12, float64(wall.Microseconds())/1e3, float64(n*k*4)/1e6)
}

// convert.Project with the GPU's products against the CPU's on a random
// layer: q, k and w are expected bit-equal (the kernel reproduces matVec);
// DSA's top-k sets computed from both must match, or differ only at
// tokens whose score ties the k-th within 1e-5 (counted).
func TestProjectGPU(t *testing.T) {
	g := testGPU(t)
	rng := rand.New(rand.NewPCG(39, 40))
	const H, D, hidden, qlora, N, topk = 8, 128, 512, 256, 3000, 256
	wt := &convert.Weights{H: H, D: D, Hidden: hidden, QLoRA: qlora,
		WqB: randFloats(rng, H*D*qlora, 1/math.Sqrt(qlora)), Wk: randFloats(rng, D*hidden, 1/math.Sqrt(hidden)),
		KNormW: randFloats(rng, D, 1), KNormB: randFloats(rng, D, 0.1), WProj: randFloats(rng, H*hidden, 1/math.Sqrt(hidden))}
	x := randFloats(rng, N*hidden, 1)
	pos := make([]int64, N)
	for i := range pos {
		pos[i] = int64(i)
	}
	var qRows []int64
	for r := int64(7); r < N; r += 47 {
		qRows = append(qRows, r)
	}
	qr := randFloats(rng, len(qRows)*qlora, 1)
	rope, err := convert.NewRoPE(64, 10000, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := convert.Params{RoPE: rope, NormEps: 1e-6, Hadamard: true}
	cpu, err := convert.Project(p, wt, x, qr, pos, qRows)
	if err != nil {
		t.Fatal(err)
	}
	p.Mul = g
	gl, err := convert.Project(p, wt, x, qr, pos, qRows)
	if err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2][]float32{"q": {gl.Q, cpu.Q}, "k": {gl.K, cpu.K}, "w": {gl.W, cpu.W}} {
		diff := 0
		for i, v := range pair[0] {
			if math.IsNaN(float64(v)) {
				t.Fatalf("%s[%d] is NaN", name, i)
			}
			if math.Float32bits(v) != math.Float32bits(pair[1][i]) {
				diff++
				if !near(float64(v), float64(pair[1][i]), 1e-5) {
					t.Fatalf("%s[%d] = %v on the GPU, %v on the CPU", name, i, v, pair[1][i])
				}
			}
		}
		t.Logf("%s: %d of %d values differ from the CPU path in any bit", name, diff, len(pair[0]))
		if diff > 0 {
			t.Errorf("%s: the GPU's products are not matVec's bits (%d values)", name, diff)
		}
	}

	inOf := func(l *convert.Layer) *indexer.Input {
		return &indexer.Input{H: H, D: D, TopK: topk, N: N, QPos: qRows, Q: l.Q, K: l.K, W: l.W}
	}
	ms := []indexer.Method{{Kind: indexer.DSA}}
	cpuIn, gpuIn := inOf(cpu), inOf(gl)
	want, err := indexer.NewCPU(0).Run(context.Background(), cpuIn, ms)
	if err != nil {
		t.Fatal(err)
	}
	got, err := indexer.NewCPU(0).Run(context.Background(), gpuIn, ms)
	if err != nil {
		t.Fatal(err)
	}
	all := allHeads(H)
	ties, rowsDiff := 0, 0
	for r := range qRows {
		if slices.Equal(got.Reference[r], want.Reference[r]) {
			continue
		}
		rowsDiff++
		sc := scorer{cpuIn, r}
		f := func(s int) float64 { return sc.score(all, s) }
		kth := kthOf(f, toInts(want.Reference[r]), topk)
		for _, s := range symDiff(got.Reference[r], want.Reference[r]) {
			if !near(f(s), kth, 1e-5) {
				t.Fatalf("row %d (p %d): DSA differs at token %d (score %g, k-th %g): not a tie", r, qRows[r], s, f(s), kth)
			}
			ties++
			t.Logf("row %d (p %d): token %d at a near-tie (score %g, k-th %g)", r, qRows[r], s, f(s), kth)
		}
	}
	t.Logf("DSA top-%d on %d query rows: %d rows differ, %d tokens, all at near-ties", topk, len(qRows), rowsDiff, ties)
}
