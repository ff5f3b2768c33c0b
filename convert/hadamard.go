package convert

import "math"

// hadamard applies the orthonormal Walsh–Hadamard transform to each row of
// x (len(x) a multiple of n, n a power of two) in place: x ← x·H/√n. The
// indexer rotates q and k with it before FP8 quantisation to spread
// outliers; q·k is unchanged in exact arithmetic.
func hadamard(x []float32, n int) {
	scale := float32(1 / math.Sqrt(float64(n)))
	for r := 0; r+n <= len(x); r += n {
		v := x[r : r+n]
		for h := 1; h < n; h <<= 1 {
			for i := 0; i < n; i += 2 * h {
				for j := i; j < i+h; j++ {
					a, b := v[j], v[j+h]
					v[j], v[j+h] = a+b, a-b
				}
			}
		}
		for i := range v {
			v[i] *= scale
		}
	}
}
