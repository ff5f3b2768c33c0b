package convert

import (
	"fmt"
	"math"
)

// RoPE is the rotary embedding the indexer applies to the first Dims
// dimensions of q and k.
type RoPE struct {
	Dims int
	// Interleaved pairs dimensions (2i, 2i+1) (GLM-5's indexer); otherwise
	// (i, i + Dims/2), the NeoX layout DeepSeek-V3.2's indexer uses.
	Interleaved bool
	// InvFreq holds Dims/2 inverse frequencies.
	InvFreq []float64
	// Scale multiplies cos and sin (YaRN's attention factor; 1 otherwise).
	Scale float64
}

// YaRN describes rope_scaling of type "yarn" in a model config.
type YaRN struct {
	Factor                        float64
	OriginalMaxPositionEmbeddings int
	BetaFast, BetaSlow            float64
	Mscale, MscaleAllDim          float64
	// AttentionFactor overrides the factor derived from Mscale when > 0.
	AttentionFactor float64
	// NoTruncate keeps the correction range unrounded.
	NoTruncate bool
}

// NewRoPE builds the inverse frequencies for dims rotary dimensions with
// base theta, optionally YaRN-scaled, the way Hugging Face's rope
// initialisation computes them (in float64 here; the reference rounds to
// float32, well below the tolerance the reference check uses).
func NewRoPE(dims int, theta float64, interleaved bool, yarn *YaRN) (*RoPE, error) {
	if dims <= 0 || dims%2 != 0 {
		return nil, fmt.Errorf("rope: %d rotary dimensions, want a positive even number", dims)
	}
	if !(theta > 1) {
		return nil, fmt.Errorf("rope: theta %v must be above 1", theta)
	}
	half := dims / 2
	r := &RoPE{Dims: dims, Interleaved: interleaved, InvFreq: make([]float64, half), Scale: 1}
	for i := range r.InvFreq {
		r.InvFreq[i] = 1 / math.Pow(theta, float64(2*i)/float64(dims))
	}
	if yarn == nil || yarn.Factor <= 1 {
		return r, nil
	}
	y := *yarn
	if y.BetaFast == 0 {
		y.BetaFast = 32
	}
	if y.BetaSlow == 0 {
		y.BetaSlow = 1
	}
	if y.OriginalMaxPositionEmbeddings <= 0 {
		return nil, fmt.Errorf("rope: yarn needs original_max_position_embeddings")
	}
	corr := func(rot float64) float64 {
		return float64(dims) * math.Log(float64(y.OriginalMaxPositionEmbeddings)/(rot*2*math.Pi)) / (2 * math.Log(theta))
	}
	low, high := corr(y.BetaFast), corr(y.BetaSlow)
	if !y.NoTruncate {
		low, high = math.Floor(low), math.Ceil(high)
	}
	low, high = math.Max(low, 0), math.Min(high, float64(dims-1))
	if low == high {
		high += 0.001
	}
	for i := range r.InvFreq {
		ramp := math.Min(math.Max((float64(i)-low)/(high-low), 0), 1)
		extra := 1 - ramp // share of the unscaled frequency
		r.InvFreq[i] = r.InvFreq[i]/y.Factor*(1-extra) + r.InvFreq[i]*extra
	}
	mscale := func(scale, m float64) float64 {
		if scale <= 1 {
			return 1
		}
		return 0.1*m*math.Log(scale) + 1
	}
	switch {
	case y.AttentionFactor > 0:
		r.Scale = y.AttentionFactor
	case y.Mscale != 0 && y.MscaleAllDim != 0:
		r.Scale = mscale(y.Factor, y.Mscale) / mscale(y.Factor, y.MscaleAllDim)
	default:
		r.Scale = mscale(y.Factor, 1)
	}
	return r, nil
}

// apply rotates the first Dims values of v (one head's vector) for position
// pos, in place.
func (r *RoPE) apply(v []float32, pos int64) {
	half := r.Dims / 2
	for i := 0; i < half; i++ {
		a := float64(pos) * r.InvFreq[i]
		c, s := float32(math.Cos(a)*r.Scale), float32(math.Sin(a)*r.Scale)
		var x, y *float32
		if r.Interleaved {
			x, y = &v[2*i], &v[2*i+1]
		} else {
			x, y = &v[i], &v[i+half]
		}
		x0, y0 := *x, *y
		*x = x0*c - y0*s
		*y = y0*c + x0*s
	}
}
