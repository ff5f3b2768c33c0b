package convert

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Weights are one layer's indexer weights, dequantised to float32,
// row-major as the checkpoint stores them ([out][in]).
type Weights struct {
	H, D, Hidden, QLoRA int
	WqB                 []float32 // [H·D][QLoRA]
	Wk                  []float32 // [D][Hidden]
	KNormW, KNormB      []float32 // [D]
	WProj               []float32 // [H][Hidden]
}

// Check validates the shapes.
func (w *Weights) Check() error {
	for _, c := range []struct {
		name string
		got  int
		want int
	}{
		{"wq_b", len(w.WqB), w.H * w.D * w.QLoRA},
		{"wk", len(w.Wk), w.D * w.Hidden},
		{"k_norm.weight", len(w.KNormW), w.D},
		{"k_norm.bias", len(w.KNormB), w.D},
		{"weights_proj", len(w.WProj), w.H * w.Hidden},
	} {
		if c.got != c.want {
			return fmt.Errorf("indexer weights: %s has %d values, want %d", c.name, c.got, c.want)
		}
	}
	return nil
}

// Params are the model-level choices of the projection.
type Params struct {
	RoPE     *RoPE
	NormEps  float64
	Hadamard bool // rotate q and k (DeepSeek's rotate_activation)
	// Mul computes the three matrix products (wk·x, wq_b·qr,
	// weights_proj·x) when set (kernels.GPU does, on the GPU); nil computes
	// them on the CPU (matVec). LayerNorm, RoPE, the Hadamard rotation and
	// the weight scale run on the CPU either way.
	Mul Multiplier
}

// Multiplier computes the projections' matrix products. MatMulT sets
// y[i·m+j] = Σ_l x[i·k+l]·a[j·k+l] for x [n][k], a [m][k] and y [n][m],
// row-major (a holds one output per row, as a checkpoint stores a linear
// layer). It must sum in float64 at least, as matVec does; kernels.GPU
// reproduces matVec's order, so that its y is matVec's, bit for bit.
type Multiplier interface {
	MatMulT(y, x, a []float32, n, m, k int) error
}

// Layer is one projected layer: q [Q][H][D], k [N][D], w [Q][H].
type Layer struct {
	Q, K, W []float32
}

// Project computes a layer's indexer inputs from its activations: hidden
// [N][Hidden] (the states that feed wk and weights_proj, every key row),
// qr [len(qRows)][QLoRA] (the q-LoRA latents of the query rows), the
// positions of the N rows, and the query rows (indices into 0..N-1).
//
// k = RoPE(LayerNorm(wk·x)) on the first rope dims, then the Hadamard
// rotation; q = RoPE(wq_b·qr) per head, rotated alike; w =
// weights_proj(x)·H^-1/2·D^-1/2 (DeepSeek's softmax scale), q's FP8 scale
// being folded in only when the trace is written with FP8 q. The matrix
// products run through p.Mul when it is set, on the CPU otherwise.
func Project(p Params, wt *Weights, hidden, qr []float32, positions, qRows []int64) (*Layer, error) {
	if err := wt.Check(); err != nil {
		return nil, err
	}
	N, Q := len(positions), len(qRows)
	if len(hidden) != N*wt.Hidden {
		return nil, fmt.Errorf("activations: hidden has %d values, want %d rows × %d", len(hidden), N, wt.Hidden)
	}
	if len(qr) != Q*wt.QLoRA {
		return nil, fmt.Errorf("activations: qr has %d values, want %d query rows × %d", len(qr), Q, wt.QLoRA)
	}
	for i, r := range qRows {
		if r < 0 || r >= int64(N) || (i > 0 && r < qRows[i-1]) {
			return nil, fmt.Errorf("activations: query row %d = %d is out of order or outside [0, %d)", i, r, N)
		}
	}
	if p.RoPE != nil && p.RoPE.Dims > wt.D {
		return nil, fmt.Errorf("rope: %d rotary dims but head dim %d", p.RoPE.Dims, wt.D)
	}
	H, D := wt.H, wt.D
	out := &Layer{K: make([]float32, N*D), Q: make([]float32, Q*H*D), W: make([]float32, Q*H)}
	if p.Mul != nil {
		if err := products(p.Mul, wt, hidden, qr, qRows, out); err != nil {
			return nil, err
		}
	}
	parallel(N, func(s int) {
		k := out.K[s*D : (s+1)*D]
		if p.Mul == nil {
			matVec(k, wt.Wk, hidden[s*wt.Hidden:(s+1)*wt.Hidden])
		}
		layerNorm(k, wt.KNormW, wt.KNormB, p.NormEps)
		if p.RoPE != nil {
			p.RoPE.apply(k, positions[s])
		}
		if p.Hadamard {
			hadamard(k, D)
		}
	})
	scale := float32(1 / math.Sqrt(float64(H)) / math.Sqrt(float64(D)))
	parallel(Q, func(t int) {
		q := out.Q[t*H*D : (t+1)*H*D]
		if p.Mul == nil {
			matVec(q, wt.WqB, qr[t*wt.QLoRA:(t+1)*wt.QLoRA])
		}
		pos := positions[qRows[t]]
		for h := 0; h < H; h++ {
			v := q[h*D : (h+1)*D]
			if p.RoPE != nil {
				p.RoPE.apply(v, pos)
			}
			if p.Hadamard {
				hadamard(v, D)
			}
		}
		w := out.W[t*H : (t+1)*H]
		if p.Mul == nil {
			matVec(w, wt.WProj, hidden[qRows[t]*int64(wt.Hidden):(qRows[t]+1)*int64(wt.Hidden)])
		}
		for h := range w {
			w[h] *= scale
		}
	})
	return out, nil
}

// products fills out's K, Q and W with the raw products through m: k and w
// in one call over every row (x times wk and weights_proj stacked, [D+H]
// outputs per row), so that the hidden states, the largest input, are read
// once and need no gathering; q in a second call over the query rows.
// Every output is its own dot product, so stacking changes no value.
func products(m Multiplier, wt *Weights, hidden, qr []float32, qRows []int64, out *Layer) error {
	H, D, N, Q := wt.H, wt.D, len(out.K)/wt.D, len(qRows)
	if N == 0 {
		return nil
	}
	kw := D + H
	a := make([]float32, 0, kw*wt.Hidden)
	a = append(append(a, wt.Wk...), wt.WProj...)
	y := make([]float32, N*kw)
	if err := m.MatMulT(y, hidden, a, N, kw, wt.Hidden); err != nil {
		return fmt.Errorf("k = wk·x, w = weights_proj·x: %w", err)
	}
	for s := 0; s < N; s++ {
		copy(out.K[s*D:(s+1)*D], y[s*kw:s*kw+D])
	}
	for t, r := range qRows {
		copy(out.W[t*H:(t+1)*H], y[int(r)*kw+D:(int(r)+1)*kw])
	}
	if Q == 0 {
		return nil
	}
	if err := m.MatMulT(out.Q, qr, wt.WqB, Q, H*D, wt.QLoRA); err != nil {
		return fmt.Errorf("q = wq_b·qr: %w", err)
	}
	return nil
}

// matVec sets y = A·x for A [len(y)][len(x)] row-major, accumulating in
// float64 (the reference accumulates in fp32 or better; float64 keeps
// our side of the comparison the exact one).
func matVec(y, a, x []float32) {
	n := len(x)
	for i := range y {
		row := a[i*n : (i+1)*n]
		var s0, s1, s2, s3 float64
		j := 0
		for ; j+4 <= n; j += 4 {
			s0 += float64(row[j]) * float64(x[j])
			s1 += float64(row[j+1]) * float64(x[j+1])
			s2 += float64(row[j+2]) * float64(x[j+2])
			s3 += float64(row[j+3]) * float64(x[j+3])
		}
		for ; j < n; j++ {
			s0 += float64(row[j]) * float64(x[j])
		}
		y[i] = float32(s0 + s1 + s2 + s3)
	}
}

// layerNorm normalises v in place: (v − mean)/√(var + eps)·w + b.
func layerNorm(v, w, b []float32, eps float64) {
	var mean float64
	for _, x := range v {
		mean += float64(x)
	}
	mean /= float64(len(v))
	var vr float64
	for _, x := range v {
		d := float64(x) - mean
		vr += d * d
	}
	inv := 1 / math.Sqrt(vr/float64(len(v))+eps)
	for i, x := range v {
		v[i] = float32((float64(x)-mean)*inv)*w[i] + b[i]
	}
}

// parallel runs f(0..n-1) on every core.
func parallel(n int, f func(i int)) {
	workers := min(runtime.NumCPU(), max(n, 1))
	var wg sync.WaitGroup
	next := make(chan int, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}
