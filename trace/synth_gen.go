package trace

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// synthRole is what an indexer head of a synthetic layer is for.
type synthRole uint8

const (
	roleTopic   synthRole = iota // reads the topic the query asks about
	roleFeature                  // reads a rare feature the query asks about
	roleLocal                    // prefers recent tokens (RoPE relative position)
	roleSink                     // reads the sink token
	roleDiffuse                  // broad, uninformative
	numRoles
)

var synthRoleNames = [numRoles]string{"topic", "feature", "local", "sink", "diffuse"}

func (r synthRole) String() string { return synthRoleNames[r] }

// Work units of Layer: keys in chunks of synthKeyChunk tokens, query rows in
// chunks of synthRowChunk rows. Each chunk has its own random stream, so the
// bits never depend on how many workers run them.
const (
	synthKeyChunk = 2048
	synthRowChunk = 8
)

// synthParams is the per-layer part of the model: directions in key space,
// head roles and tunings, and the layer's jittered amplitudes.
type synthParams struct {
	d, p, cdim int // head dim; RoPE dims [0, p); content dims [p, d), cdim of them

	pairs    []([2]int) // RoPE dim pairs, highest frequency first
	omega    []float64  // their angular frequencies
	bands    [][2]int   // per local band: its pairs [start, end)
	bandNorm []float64  // per band: norm of pos restricted to the band

	keyNoise, queryNoise, topicA, featA, posA, sinkA, keyBias float64
	needleA                                                   float64 // the needle's feature amplitude (NeedleSpec.Scale)

	pos     []float64 // [p] unit positional vector (rotated by RoPE)
	bias    []float64 // [cdim] unit mean-key direction
	sink    []float64 // [cdim] unit sink direction, orthogonal to bias
	topics  []float64 // [(Topics+1) * cdim] unit topic directions (last: the needle's)
	feats   []float64 // [(Features+1) * cdim] unit feature directions (last: the needle's)
	diffuse []float64 // [heads * cdim] unit directions of diffuse heads (zero for others)

	roles      []synthRole
	headOffset []float64 // per head: ReLU offset tau (see SynthConfig.OffsetSpread)
	headGain   []float64 // per head: weight gain
	cover      [][]int32 // per head: topics or features it is tuned to (local heads: their band)
	topicHeads [][]int32 // per topic: the topic heads tuned to it (ascending)
	featHeads  [][]int32 // per feature: the feature heads tuned to it (ascending)
	bandHeads  [][]int32 // per band: the local heads that read it (ascending)
}

func (pr *synthParams) topic(t int32) []float64 {
	return pr.topics[int(t)*pr.cdim : int(t+1)*pr.cdim]
}

func (pr *synthParams) feat(f int32) []float64 {
	return pr.feats[int(f)*pr.cdim : int(f+1)*pr.cdim]
}

// synthUnitVec fills v with a random unit vector orthogonal to the (orthonormal)
// vectors in orth.
func synthUnitVec(r *rand.Rand, v []float64, orth ...[]float64) {
	for {
		for i := range v {
			v[i] = r.NormFloat64()
		}
		for _, o := range orth {
			d := synthDot(v, o)
			for i := range v {
				v[i] -= d * o[i]
			}
		}
		n := math.Sqrt(synthDot(v, v))
		if n > 1e-6 {
			for i := range v {
				v[i] /= n
			}
			return
		}
	}
}

func synthDot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func synthAxpy(y []float64, a float64, x []float64) {
	for i := range y {
		y[i] += a * x[i]
	}
}

func newSynthParams(c *SynthConfig, layer int) *synthParams {
	r := synthRNG(c.Seed, streamParams, uint64(layer))
	lj := synthOff(c.LayerJitter)
	jit := func() float64 { return math.Exp(lj * r.NormFloat64()) }

	d, p := c.HeadDim, c.ropeDims()
	pr := &synthParams{d: d, p: p, cdim: d - p}
	frac := [numRoles]float64{
		synthOff(c.TopicHeads) * jit(), synthOff(c.FeatureHeads) * jit(), synthOff(c.LocalHeads) * jit(),
		synthOff(c.SinkHeads) * jit(), synthOff(c.DiffuseHeads) * jit(),
	}
	pr.keyNoise = synthOff(c.KeyNoise) * jit()
	pr.queryNoise = synthOff(c.QueryNoise) * jit()
	pr.posA = synthOff(c.PosScale) * jit()
	pr.topicA = synthOff(c.TopicScale)
	pr.featA = synthOff(c.FeatureScale)
	pr.needleA = pr.featA
	if c.Needle != nil && c.Needle.Scale > 0 {
		pr.needleA = c.Needle.Scale
	}
	pr.sinkA = synthOff(c.SinkScale)
	pr.keyBias = synthOff(c.KeyBias)

	// RoPE pairs and frequencies, as the real indexer lays them out.
	for i := 0; i < p/2; i++ {
		if c.RopeInterleaved {
			pr.pairs = append(pr.pairs, [2]int{2 * i, 2*i + 1})
		} else {
			pr.pairs = append(pr.pairs, [2]int{i, i + p/2})
		}
		pr.omega = append(pr.omega, math.Pow(c.RopeTheta, -2*float64(i)/float64(p)))
	}

	// Head roles: largest-remainder counts of the jittered fractions, then a
	// random order, so that roles are not sorted by head index.
	h := c.Heads
	total := 0.0
	for _, f := range frac {
		total += f
	}
	var count [numRoles]int
	var rem [numRoles]float64
	left := h
	for k, f := range frac {
		x := f / total * float64(h)
		count[k] = int(x)
		rem[k] = x - float64(count[k])
		left -= count[k]
	}
	for ; left > 0; left-- {
		best := 0
		for k := range rem {
			if rem[k] > rem[best] {
				best = k
			}
		}
		count[best]++
		rem[best] = -1
	}
	for k, n := range count {
		for range n {
			pr.roles = append(pr.roles, synthRole(k))
		}
	}
	r.Shuffle(len(pr.roles), func(i, j int) { pr.roles[i], pr.roles[j] = pr.roles[j], pr.roles[i] })

	// Directions.
	cd := pr.cdim
	pr.pos = make([]float64, p)
	if p > 0 {
		synthUnitVec(r, pr.pos)
	}
	pr.bias = make([]float64, cd)
	pr.sink = make([]float64, cd)
	synthUnitVec(r, pr.bias)
	synthUnitVec(r, pr.sink, pr.bias)
	pr.topics = make([]float64, (c.Topics+1)*cd)
	for t := 0; t <= c.Topics; t++ {
		synthUnitVec(r, pr.topic(int32(t)), pr.bias, pr.sink)
	}
	pr.feats = make([]float64, (c.Features+1)*cd)
	for f := 0; f < c.Features; f++ {
		synthUnitVec(r, pr.feat(int32(f)), pr.bias, pr.sink)
	}
	// The needle's feature is also orthogonal to the needle's topic, so that
	// a chance overlap of the two (random directions in a few dozen dims
	// reach cosines of ±0.5) cannot cancel what the needle carries. Topics
	// are unit and orthogonal to bias and sink, so the three are orthonormal.
	synthUnitVec(r, pr.feat(int32(c.Features)), pr.bias, pr.sink, pr.topic(int32(c.Topics)))
	pr.diffuse = make([]float64, h*cd)
	for i, role := range pr.roles {
		if role == roleDiffuse {
			synthUnitVec(r, pr.diffuse[i*cd:(i+1)*cd], pr.bias, pr.sink)
		}
	}

	// Tunings: each topic (feature) goes to HeadsPerTopic (HeadsPerFeature)
	// distinct heads of the role.
	pr.cover = make([][]int32, h)
	assign := func(items int, role synthRole, per int) [][]int32 {
		var heads []int32
		for i, hr := range pr.roles {
			if hr == role {
				heads = append(heads, int32(i))
			}
		}
		out := make([][]int32, items)
		for it := range out {
			k := min(per, len(heads))
			for j := 0; j < k; j++ {
				m := j + r.IntN(len(heads)-j)
				heads[j], heads[m] = heads[m], heads[j]
			}
			sel := slices.Clone(heads[:k])
			slices.Sort(sel)
			out[it] = sel
			for _, hd := range sel {
				pr.cover[hd] = append(pr.cover[hd], int32(it))
			}
		}
		return out
	}
	pr.topicHeads = assign(c.Topics+1, roleTopic, c.HeadsPerTopic)
	pr.featHeads = assign(c.Features+1, roleFeature, c.HeadsPerFeature)

	// Local bands: contiguous groups of RoPE pairs; local heads are dealt
	// to them in a random order, so every band has the same number of
	// heads, give or take one (a band may have none when there are fewer
	// local heads than bands).
	nb := c.LocalBands
	pr.bandHeads = make([][]int32, nb)
	for b := range nb {
		lo, hi := b*len(pr.pairs)/nb, (b+1)*len(pr.pairs)/nb
		pr.bands = append(pr.bands, [2]int{lo, hi})
		n2 := 0.0
		for _, pp := range pr.pairs[lo:hi] {
			n2 += pr.pos[pp[0]]*pr.pos[pp[0]] + pr.pos[pp[1]]*pr.pos[pp[1]]
		}
		pr.bandNorm = append(pr.bandNorm, math.Sqrt(n2))
	}
	var locals []int32
	for i, role := range pr.roles {
		if role == roleLocal {
			locals = append(locals, int32(i))
		}
	}
	r.Shuffle(len(locals), func(i, j int) { locals[i], locals[j] = locals[j], locals[i] })
	for i, hd := range locals {
		b := i % nb
		pr.bandHeads[b] = append(pr.bandHeads[b], hd)
		pr.cover[hd] = []int32{int32(b)}
	}
	for _, hs := range pr.bandHeads {
		slices.Sort(hs)
	}

	pr.headOffset = make([]float64, h)
	pr.headGain = make([]float64, h)
	osd, do, so, hg := synthOff(c.OffsetSpread), synthOff(c.DiffuseOffset), synthOff(c.SinkOffset), synthOff(c.HeadGainSpread)
	for i, role := range pr.roles {
		pr.headOffset[i] = osd * r.NormFloat64()
		switch role {
		case roleDiffuse:
			pr.headOffset[i] += do
		case roleSink:
			pr.headOffset[i] -= so
		}
		pr.headGain[i] = math.Exp(hg * r.NormFloat64())
	}
	return pr
}

// generate builds layer l with the given number of workers (0: GOMAXPROCS).
func (s *Synthetic) generate(ctx context.Context, l, workers int) (*Layer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &s.cfg
	pr := newSynthParams(c, l)
	n, d, h, nq := c.NCtx, c.HeadDim, c.Heads, len(s.layout.qpos)
	out := &Layer{
		Index: l,
		K:     make([]float32, n*d),
		Q:     make([]float32, nq*h*d),
		W:     make([]float32, nq*h),
	}
	keyChunks := (n + synthKeyChunk - 1) / synthKeyChunk
	rowChunks := (nq + synthRowChunk - 1) / synthRowChunk
	tasks := keyChunks + rowChunks
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, tasks)

	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scratch := make([]float64, d)
			var rot []float64
			for {
				t := int(next.Add(1) - 1)
				if t >= tasks || ctx.Err() != nil {
					return
				}
				if t < keyChunks {
					rot = s.genKeys(pr, l, t, out.K, scratch, rot)
					continue
				}
				t -= keyChunks
				for row := t * synthRowChunk; row < min((t+1)*synthRowChunk, nq); row++ {
					rot = s.genRow(pr, l, row, out.Q, out.W, scratch, rot)
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// genKeys writes the keys of chunk ch. rot is reusable scratch space.
func (s *Synthetic) genKeys(pr *synthParams, l, ch int, k []float32, row, rot []float64) []float64 {
	c, lay := &s.cfg, s.layout
	d := pr.d
	s0 := ch * synthKeyChunk
	s1 := min(s0+synthKeyChunk, c.NCtx)
	r := synthRNG(c.Seed, streamKeys, uint64(l), uint64(ch))

	// RoPE angles by recurrence from the exact angle at the chunk start.
	np := len(pr.omega)
	rot = slices.Grow(rot[:0], 4*np)[:4*np]
	cosv, sinv, stepC, stepS := rot[:np], rot[np:2*np], rot[2*np:3*np], rot[3*np:]
	for i, w := range pr.omega {
		sinv[i], cosv[i] = math.Sincos(w * float64(s0))
		stepS[i], stepC[i] = math.Sincos(w)
	}

	tj := synthOff(c.TopicJitter)
	for pos := s0; pos < s1; pos++ {
		for j := range row {
			row[j] = pr.keyNoise * r.NormFloat64()
		}
		for i, pp := range pr.pairs {
			a, b := pr.pos[pp[0]], pr.pos[pp[1]]
			cs, sn := cosv[i], sinv[i]
			row[pp[0]] += pr.posA * (a*cs - b*sn)
			row[pp[1]] += pr.posA * (a*sn + b*cs)
			cosv[i], sinv[i] = cs*stepC[i]-sn*stepS[i], sn*stepC[i]+cs*stepS[i]
		}
		cont := row[pr.p:]
		synthAxpy(cont, pr.keyBias, pr.bias)
		amp := pr.topicA * max(0, 1+tj*r.NormFloat64())
		synthAxpy(cont, amp, pr.topic(lay.topic[pos]))
		if f := lay.feat[pos]; f >= 0 {
			a := pr.featA
			if int(f) == c.Features { // the needle's reserved feature
				a = pr.needleA
			}
			synthAxpy(cont, a, pr.feat(f))
		}
		if pos == 0 {
			synthAxpy(cont, pr.sinkA, pr.sink)
		}
		dst := k[pos*d : (pos+1)*d]
		for j := range dst {
			dst[j] = float32(row[j])
		}
	}
	return rot
}

// genRow writes query row t's q (all heads) and weights.
func (s *Synthetic) genRow(pr *synthParams, l, t int, q, w []float32, row, rot []float64) []float64 {
	c, lay := &s.cfg, s.layout
	d, h := pr.d, c.Heads
	r := synthRNG(c.Seed, streamQueries, uint64(l), uint64(t))
	p := float64(lay.qpos[t])
	in := lay.intents[t]

	np := len(pr.omega)
	rot = slices.Grow(rot[:0], 2*np)[:2*np]
	cosv, sinv := rot[:np], rot[np:]
	for i, om := range pr.omega {
		sinv[i], cosv[i] = math.Sincos(om * p)
	}

	g := math.Sqrt(float64(d))
	wscale := 1 / math.Sqrt(float64(h*d))
	oj, wn, wj := synthOff(c.OffsetJitter), synthOff(c.WeightNoise), synthOff(c.WeightJitter)
	for hd := range h {
		clear(row)
		cont := row[pr.p:]
		tau := pr.headOffset[hd] + oj*r.NormFloat64()
		match, strength := false, 0.0
		cover := pr.cover[hd]
		switch pr.roles[hd] {
		case roleTopic:
			tgt := in.topic
			match = slices.Contains(pr.topicHeads[tgt], int32(hd))
			if !match {
				if len(cover) > 0 {
					tgt = cover[r.IntN(len(cover))]
				} else {
					tgt = int32(r.IntN(c.Topics))
				}
			}
			synthAxpy(cont, 1, pr.topic(tgt))
			strength = in.sTopic
		case roleFeature:
			tgt := in.feature
			match = tgt >= 0 && slices.Contains(pr.featHeads[tgt], int32(hd))
			if !match {
				if len(cover) > 0 {
					tgt = cover[r.IntN(len(cover))]
				} else {
					tgt = int32(r.IntN(c.Features))
				}
			}
			synthAxpy(cont, 1, pr.feat(tgt))
			strength = in.sFeat
		case roleLocal:
			// R(p)·u on the head's band, made unit: against keys carrying
			// R(s)·u this scores Σ_{i in band} |u_i|² cos(ω_i (p - s)) /
			// |u_band|, which decays with distance on the band's scale.
			b := cover[0]
			if bn := pr.bandNorm[b]; bn > 0 {
				bd := pr.bands[b]
				for i := bd[0]; i < bd[1]; i++ {
					pp := pr.pairs[i]
					x, y := pr.pos[pp[0]]/bn, pr.pos[pp[1]]/bn
					row[pp[0]] = x*cosv[i] - y*sinv[i]
					row[pp[1]] = x*sinv[i] + y*cosv[i]
				}
			}
			match, strength = b == in.band, in.sLocal
		case roleSink:
			synthAxpy(cont, 1, pr.sink)
			match, strength = true, in.sSink
		case roleDiffuse:
			synthAxpy(cont, 1, pr.diffuse[hd*pr.cdim:(hd+1)*pr.cdim])
		}
		if pr.keyBias > 0 {
			// Against keys carrying keyBias·bias this adds tau to q·k/g.
			synthAxpy(cont, tau/pr.keyBias, pr.bias)
		}

		dst := q[(t*h+hd)*d : (t*h+hd+1)*d]
		for j := range dst {
			dst[j] = float32(g*row[j] + pr.queryNoise*r.NormFloat64())
		}
		var wt float64
		if match && strength > 0 {
			wt = strength * pr.headGain[hd] * math.Exp(wj*r.NormFloat64())
		} else {
			wt = wn * r.NormFloat64()
		}
		w[t*h+hd] = float32(wt * wscale)
	}
	return rot
}
