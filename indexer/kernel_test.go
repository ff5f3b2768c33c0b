package indexer

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestDotTileMatchesPortable(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, d := range []int{1, 3, 8, 128} {
		a := make([]float32, 4*d)
		b := make([]float32, d*panelWidth)
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		for i := range b {
			b[i] = float32(rng.NormFloat64())
		}
		ldc := panelWidth + 5
		got := make([]float32, 4*ldc)
		want := make([]float32, 4*ldc)
		for i := range got {
			got[i], want[i] = -7, -7 // poison: every tile entry must be written
		}
		dotTile(a, d, b, d, got, ldc)
		dotTileGo(a, d, b, d, want, ldc)
		for i := range got {
			if math.Abs(float64(got[i]-want[i])) > 1e-4*math.Sqrt(float64(d)) {
				t.Fatalf("d=%d: entry %d = %v, portable %v", d, i, got[i], want[i])
			}
		}
	}
	t.Logf("AVX2 kernel in use: %v", haveAVX2)
}

func TestTopKMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	var sel selector
	for trial := 0; trial < 200; trial++ {
		n := 1 + rng.IntN(3000)
		k := 1 + rng.IntN(n+10)
		scores := make([]float32, n)
		levels := 1 + rng.IntN(20) // few levels: many ties
		for i := range scores {
			scores[i] = float32(rng.IntN(levels) - levels/2)
			if rng.IntN(10) == 0 {
				scores[i] = float32(math.Copysign(0, -1))
			}
		}
		got := sel.topK(nil, scores, n, k)
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		want := bruteTopK(func(s int) float64 { return float64(scores[s]) }, idx, k)
		if !slices.Equal(got, want) {
			t.Fatalf("n=%d k=%d: got %v, want %v", n, k, got, want)
		}
	}
}
