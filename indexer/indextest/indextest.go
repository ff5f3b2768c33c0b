// Package indextest generates random indexer layers for the tests of the
// CPU reference and of the GPU backend, in indexer.Input's layout (q
// [rows][H][D], k [N][D], w [rows][H], ascending positions with the last key
// always queried). It does not import indexer, so that package's own tests
// can use it.
package indextest

import (
	"math/rand/v2"
	"slices"
)

// Layer is one random layer.
type Layer struct {
	Q, K, W []float32
	QPos    []int64
}

// Random draws a layer of nq query rows over N keys. kind "int" draws
// integers in [−2, 2], which make every score exact in fp32 whatever the
// summation order, and full of ties; "normal" Gaussian values; "dup"
// Gaussian keys drawn from a pool of 5 (real-valued exact ties); "sink"
// Gaussian keys with a large-norm first key and one repeated topic direction.
func Random(rng *rand.Rand, H, D, N, nq int, kind string) Layer {
	val := func(scale float32) float32 {
		if kind == "int" {
			return float32(rng.IntN(5) - 2)
		}
		return float32(rng.NormFloat64()) * scale
	}
	var l Layer
	l.K = make([]float32, N*D)
	switch kind {
	case "dup":
		pool := make([]float32, 5*D)
		for i := range pool {
			pool[i] = val(1)
		}
		for s := 0; s < N; s++ {
			copy(l.K[s*D:(s+1)*D], pool[rng.IntN(5)*D:])
		}
	case "sink":
		topic := make([]float32, D)
		for i := range topic {
			topic[i] = val(1)
		}
		for s := 0; s < N; s++ {
			for x := 0; x < D; x++ {
				l.K[s*D+x] = 0.3*val(1) + topic[x]*float32(s%7)/7
			}
		}
		for x := 0; x < D; x++ {
			l.K[x] *= 20
		}
	default:
		for i := range l.K {
			l.K[i] = val(1)
		}
	}
	l.Q = make([]float32, nq*H*D)
	for i := range l.Q {
		l.Q[i] = val(1)
	}
	l.W = make([]float32, nq*H)
	for i := range l.W {
		l.W[i] = val(0.5)
	}
	l.QPos = make([]int64, nq)
	for i := range l.QPos {
		l.QPos[i] = int64(rng.IntN(N))
	}
	l.QPos[0] = int64(N - 1)
	slices.Sort(l.QPos)
	return l
}
