package convert

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/misabench/misabench/checkpoint"
	"github.com/misabench/misabench/trace"
)

// fakeMul is a Multiplier on the CPU that records its calls. It computes
// each output with matVec, as kernels.GPU reproduces it, so Project
// through it must equal the CPU path bit for bit.
type fakeMul struct {
	calls [][3]int // n, m, k
	fail  error
}

func (f *fakeMul) MatMulT(y, x, a []float32, n, m, k int) error {
	f.calls = append(f.calls, [3]int{n, m, k})
	if f.fail != nil {
		return f.fail
	}
	if len(y) != n*m || len(x) != n*k || len(a) != m*k {
		return errors.New("fakeMul: slice lengths do not match the shape")
	}
	for i := 0; i < n; i++ {
		matVec(y[i*m:(i+1)*m], a, x[i*k:(i+1)*k])
	}
	return nil
}

func randomLayer(rng *rand.Rand, H, D, hidden, qlora, N int, qRows []int64) (*Weights, []float32, []float32, []int64) {
	fill := func(n int, s float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * s)
		}
		return v
	}
	wt := &Weights{H: H, D: D, Hidden: hidden, QLoRA: qlora,
		WqB: fill(H*D*qlora, 0.3), Wk: fill(D*hidden, 0.3), KNormW: fill(D, 1), KNormB: fill(D, 0.1), WProj: fill(H*hidden, 0.3)}
	pos := make([]int64, N)
	for i := range pos {
		pos[i] = int64(3 + i)
	}
	return wt, fill(N*hidden, 1), fill(len(qRows)*qlora, 1), pos
}

// Project with a Multiplier runs the products through it (k and w in one
// call over every row, q in one over the query rows) and otherwise gives
// the CPU path's result exactly; nil keeps the CPU path; an error stops it.
func TestProjectMultiplier(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const H, D, hidden, qlora, N = 4, 16, 37, 21, 50
	qRows := []int64{0, 7, 7, 30, 49}
	wt, x, qr, pos := randomLayer(rng, H, D, hidden, qlora, N, qRows)
	for _, p := range []Params{
		{NormEps: 1e-6},
		{RoPE: mustRoPE(t, 8, false), NormEps: 1e-6, Hadamard: true},
		{RoPE: mustRoPE(t, 16, true), NormEps: 1e-6, Hadamard: true},
	} {
		want, err := Project(p, wt, x, qr, pos, qRows)
		if err != nil {
			t.Fatal(err)
		}
		f := &fakeMul{}
		p.Mul = f
		got, err := Project(p, wt, x, qr, pos, qRows)
		if err != nil {
			t.Fatal(err)
		}
		if wantCalls := [][3]int{{N, D + H, hidden}, {len(qRows), H * D, qlora}}; !slices.Equal(f.calls, wantCalls) {
			t.Errorf("calls %v, want %v", f.calls, wantCalls)
		}
		if !slices.Equal(got.K, want.K) || !slices.Equal(got.Q, want.Q) || !slices.Equal(got.W, want.W) {
			t.Errorf("rope %v hadamard %v: the multiplier path differs from the CPU path", p.RoPE != nil, p.Hadamard)
		}
	}

	// No query rows: one call, for k (and no w to keep).
	f := &fakeMul{}
	got, err := Project(Params{NormEps: 1e-6, Mul: f}, wt, x, nil, pos, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Project(Params{NormEps: 1e-6}, wt, x, nil, pos, nil)
	if len(f.calls) != 1 || !slices.Equal(got.K, want.K) || len(got.Q) != 0 || len(got.W) != 0 {
		t.Errorf("no query rows: calls %v, k equal %v", f.calls, slices.Equal(got.K, want.K))
	}

	// The multiplier's error comes back, wrapped.
	boom := errors.New("device lost")
	if _, err := Project(Params{Mul: &fakeMul{fail: boom}}, wt, x, qr, pos, qRows); !errors.Is(err, boom) {
		t.Errorf("failing multiplier: error %v, want %v", err, boom)
	}
	// Shapes are checked before the multiplier sees anything.
	f = &fakeMul{}
	if _, err := Project(Params{Mul: f}, wt, x[:10], qr, pos, qRows); err == nil || len(f.calls) != 0 {
		t.Errorf("short hidden states: error %v, %d calls", err, len(f.calls))
	}
}

func mustRoPE(t *testing.T, dims int, interleaved bool) *RoPE {
	t.Helper()
	r, err := NewRoPE(dims, 10000, interleaved, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Convert passes Options.Multiplier to Project: the trace is the same.
func TestConvertMultiplier(t *testing.T) {
	f := newFixture(t, "deepseek_v32")
	ck, err := checkpoint.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	dir := t.TempDir()
	cpu, gpu := filepath.Join(dir, "cpu.safetensors"), filepath.Join(dir, "mul.safetensors")
	if err := Convert(context.Background(), ck, f.acts, cpu, Options{}); err != nil {
		t.Fatal(err)
	}
	m := &fakeMul{}
	if err := Convert(context.Background(), ck, f.acts, gpu, Options{Multiplier: m}); err != nil {
		t.Fatal(err)
	}
	if len(m.calls) != 4 { // two layers, two calls each
		t.Errorf("%d multiplier calls, want 4", len(m.calls))
	}
	a, err := trace.Open(cpu)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := trace.Open(gpu)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, l := range []int{0, 1} {
		la, err := a.Layer(context.Background(), l)
		if err != nil {
			t.Fatal(err)
		}
		lb, err := b.Layer(context.Background(), l)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(la.Q, lb.Q) || !slices.Equal(la.K, lb.K) || !slices.Equal(la.W, lb.W) {
			t.Errorf("layer %d: the trace written through the multiplier differs", l)
		}
	}
}
