package convert

import (
	"math"
	"math/rand/v2"
	"testing"
)

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// The Hadamard rotation is orthonormal: it keeps dot products and is its
// own inverse.
func TestHadamard(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a, b := make([]float32, 128), make([]float32, 128)
	for i := range a {
		a[i], b[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	want := dot(a, b)
	ha, hb := append([]float32(nil), a...), append([]float32(nil), b...)
	hadamard(ha, 128)
	hadamard(hb, 128)
	if got := dot(ha, hb); math.Abs(got-want) > 1e-4*math.Abs(want)+1e-4 {
		t.Errorf("dot after rotation %v, before %v", got, want)
	}
	hadamard(ha, 128)
	for i := range a {
		if math.Abs(float64(ha[i]-a[i])) > 1e-5 {
			t.Fatalf("H·H ≠ I at %d: %v vs %v", i, ha[i], a[i])
		}
	}
	// H of a unit vector is a constant-magnitude vector.
	e := make([]float32, 8)
	e[0] = 1
	hadamard(e, 8)
	for i, v := range e {
		if math.Abs(float64(v)-1/math.Sqrt(8)) > 1e-7 {
			t.Errorf("H·e0 [%d] = %v", i, v)
		}
	}
}

// RoPE makes q·k depend on the position difference only, in both layouts,
// with and without YaRN.
func TestRoPERelative(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, inter := range []bool{false, true} {
		for _, y := range []*YaRN{nil, {Factor: 40, OriginalMaxPositionEmbeddings: 4096, BetaFast: 32, BetaSlow: 1, Mscale: 1, MscaleAllDim: 1}} {
			r, err := NewRoPE(64, 10000, inter, y)
			if err != nil {
				t.Fatal(err)
			}
			q, k := make([]float32, 64), make([]float32, 64)
			for i := range q {
				q[i], k[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			}
			at := func(pq, pk int64) float64 {
				a, b := append([]float32(nil), q...), append([]float32(nil), k...)
				r.apply(a, pq)
				r.apply(b, pk)
				return dot(a, b)
			}
			base := at(100, 60)
			for _, shift := range []int64{0, 1000, 70000} {
				if got := at(100+shift, 60+shift); math.Abs(got-base) > 2e-3*math.Abs(base)+2e-3 {
					t.Errorf("interleaved=%v yarn=%v: shift %d changes q·k: %v vs %v", inter, y != nil, shift, got, base)
				}
			}
			if at(100, 60) == at(100, 61) {
				t.Errorf("interleaved=%v: position has no effect", inter)
			}
		}
	}
	// YaRN with DeepSeek-V3's mscale = mscale_all_dim keeps cos/sin unscaled
	// and slows the low frequencies by the factor.
	r, _ := NewRoPE(64, 10000, false, &YaRN{Factor: 40, OriginalMaxPositionEmbeddings: 4096, Mscale: 1, MscaleAllDim: 1})
	if r.Scale != 1 {
		t.Errorf("scale %v, want 1", r.Scale)
	}
	plain, _ := NewRoPE(64, 10000, false, nil)
	if r.InvFreq[0] != plain.InvFreq[0] {
		t.Errorf("highest frequency changed: %v vs %v", r.InvFreq[0], plain.InvFreq[0])
	}
	if got, want := r.InvFreq[31], plain.InvFreq[31]/40; math.Abs(got-want) > 1e-12 {
		t.Errorf("lowest frequency %v, want %v", got, want)
	}
	if _, err := NewRoPE(63, 10000, false, nil); err == nil {
		t.Error("odd rotary dims accepted")
	}
}

// Project against a direct, unoptimised computation of the same formulas.
func TestProjectMatchesDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	wt := &Weights{H: 4, D: 16, Hidden: 24, QLoRA: 12}
	fill := func(n int, s float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * s)
		}
		return v
	}
	wt.WqB, wt.Wk = fill(4*16*12, 0.3), fill(16*24, 0.3)
	wt.KNormW, wt.KNormB, wt.WProj = fill(16, 1), fill(16, 0.1), fill(4*24, 0.3)
	N := 10
	hidden, qr := fill(N*24, 1), fill(3*12, 1)
	positions := []int64{5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	qRows := []int64{2, 7, 9}
	r, _ := NewRoPE(8, 10000, false, nil)
	p := Params{RoPE: r, NormEps: 1e-6, Hadamard: true}
	got, err := Project(p, wt, hidden, qr, positions, qRows)
	if err != nil {
		t.Fatal(err)
	}
	// Direct: key s.
	for s := 0; s < N; s++ {
		k := make([]float64, 16)
		for d := range k {
			for j := 0; j < 24; j++ {
				k[d] += float64(wt.Wk[d*24+j]) * float64(hidden[s*24+j])
			}
		}
		var mean, vr float64
		for _, x := range k {
			mean += x / 16
		}
		for _, x := range k {
			vr += (x - mean) * (x - mean) / 16
		}
		for d := range k {
			k[d] = (k[d]-mean)/math.Sqrt(vr+1e-6)*float64(wt.KNormW[d]) + float64(wt.KNormB[d])
		}
		// NeoX RoPE on dims 0..7: pairs (i, i+4).
		for i := 0; i < 4; i++ {
			a := float64(positions[s]) / math.Pow(10000, float64(2*i)/8)
			x, y := k[i], k[i+4]
			k[i], k[i+4] = x*math.Cos(a)-y*math.Sin(a), y*math.Cos(a)+x*math.Sin(a)
		}
		// Hadamard: H[i][j] = (−1)^popcount(i&j)/4.
		rot := make([]float64, 16)
		for i := range rot {
			for j := range k {
				sign := 1.0
				if popcount(i&j)%2 == 1 {
					sign = -1
				}
				rot[i] += sign * k[j] / 4
			}
		}
		for d := range rot {
			if math.Abs(rot[d]-float64(got.K[s*16+d])) > 1e-4 {
				t.Fatalf("k[%d][%d] = %v, direct %v", s, d, got.K[s*16+d], rot[d])
			}
		}
	}
	// Weights.
	for ti, row := range qRows {
		for h := 0; h < 4; h++ {
			var w float64
			for j := 0; j < 24; j++ {
				w += float64(wt.WProj[h*24+j]) * float64(hidden[int(row)*24+j])
			}
			w /= math.Sqrt(4) * math.Sqrt(16)
			if math.Abs(w-float64(got.W[ti*4+h])) > 1e-5 {
				t.Fatalf("w[%d][%d] = %v, direct %v", ti, h, got.W[ti*4+h], w)
			}
		}
	}
	// q·k is what the indexer scores: Hadamard leaves it unchanged, so
	// compare with un-rotated products.
	p.Hadamard = false
	plain, _ := Project(p, wt, hidden, qr, positions, qRows)
	for ti := range qRows {
		for h := 0; h < 4; h++ {
			for s := 0; s < N; s++ {
				a := dot(got.Q[(ti*4+h)*16:(ti*4+h+1)*16], got.K[s*16:(s+1)*16])
				b := dot(plain.Q[(ti*4+h)*16:(ti*4+h+1)*16], plain.K[s*16:(s+1)*16])
				if math.Abs(a-b) > 1e-4*math.Abs(b)+1e-4 {
					t.Fatalf("q·k with rotation %v, without %v", a, b)
				}
			}
		}
	}
	if _, err := Project(p, wt, hidden[:5], qr, positions, qRows); err == nil {
		t.Error("short hidden states accepted")
	}
	if _, err := Project(p, wt, hidden, qr, positions, []int64{7, 2, 9}); err == nil {
		t.Error("unordered query rows accepted")
	}
}

func popcount(x int) int {
	n := 0
	for ; x > 0; x &= x - 1 {
		n++
	}
	return n
}
