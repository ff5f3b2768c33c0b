package trace

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Random streams of the generator. Each (seed, stream, ...) tuple seeds its
// own PCG generator, so that one part of the model can change without
// reshuffling the others, and so that parallel chunks never share state.
const (
	streamSegments uint64 = iota + 1
	streamFeatures
	streamIntents
	streamParams
	streamKeys
	streamQueries
)

// synthMix is the SplitMix64 finaliser, used to derive seeds.
func synthMix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// synthRNG returns a PCG generator seeded from the seed and the given parts
// (a stream id, a layer, a chunk index...).
func synthRNG(seed uint64, parts ...uint64) *rand.Rand {
	a := synthMix(seed)
	for _, p := range parts {
		a = synthMix(a ^ p)
	}
	return rand.New(rand.NewPCG(a, synthMix(a^0x5851f42d4c957f2d)))
}

// synthIntent is what one query row asks for; it is the same in every layer.
type synthIntent struct {
	topic   int32 // topic asked about (Topics is the needle's topic)
	feature int32 // feature asked about (Features is the needle's), -1: none
	band    int32 // RoPE band (reach) the row's local intent reads
	// Strengths of the intent kinds; the weights of matching heads scale
	// with them. sFeat is 0 when the row asks for no feature.
	sTopic, sFeat, sLocal, sSink float64
}

// synthLayout is the layer-independent part of a synthetic sequence: what
// every token is about, and what every query row asks.
type synthLayout struct {
	topic     []int32 // per token: its topic
	feat      []int32 // per token: its feature, or -1
	featPos   []int32 // positions of feature tokens, ascending
	segStarts []int32 // first token of each segment
	qpos      []int64
	intents   []synthIntent
	// The needle and the question span (zero without a needle). The needle
	// uses the reserved topic index Topics and feature index Features, which
	// the haystack never carries.
	needle, question Span
}

func newSynthLayout(c *SynthConfig) *synthLayout {
	n := c.NCtx
	l := &synthLayout{topic: make([]int32, n), feat: make([]int32, n)}

	// Topical segments, log-uniform lengths, never the same topic twice in a row.
	r := synthRNG(c.Seed, streamSegments)
	lo, hi := math.Log(float64(c.SegmentMin)), math.Log(float64(c.SegmentMax))
	prev := int32(-1)
	for s := 0; s < n; {
		ln := int(math.Round(math.Exp(lo + (hi-lo)*r.Float64())))
		ln = min(max(ln, c.SegmentMin), c.SegmentMax, n-s)
		var t int32
		if prev >= 0 && c.Topics > 1 {
			t = int32(r.IntN(c.Topics - 1))
			if t >= prev {
				t++
			}
		} else {
			t = int32(r.IntN(c.Topics))
		}
		l.segStarts = append(l.segStarts, int32(s))
		for i := s; i < s+ln; i++ {
			l.topic[i] = t
		}
		prev = t
		s += ln
	}

	// Rare features, Zipf-distributed, never on the sink token.
	for i := range l.feat {
		l.feat[i] = -1
	}
	rate := synthOff(c.FeatureRate)
	if rate > 0 {
		r := synthRNG(c.Seed, streamFeatures)
		cdf := make([]float64, c.Features)
		z, acc := synthOff(c.FeatureZipf), 0.0
		for i := range cdf {
			acc += math.Pow(float64(i+1), -z)
			cdf[i] = acc
		}
		for s := 1; s < n; s++ {
			if r.Float64() < rate {
				f := sort.SearchFloat64s(cdf, r.Float64()*acc)
				l.feat[s] = int32(min(f, c.Features-1))
			}
		}
	}

	// The needle and the question span replace haystack tokens.
	if nd := c.Needle; nd != nil {
		hay := n - c.Queries - 1
		start := 1 + int(math.Round(nd.Depth*float64(hay-nd.Len)))
		l.needle = Span{start, start + nd.Len}
		l.question = Span{n - c.Queries, n}
		for s := l.needle.Start; s < l.needle.End; s++ {
			l.topic[s], l.feat[s] = int32(c.Topics), int32(c.Features)
		}
		for s := l.question.Start; s < l.question.End; s++ {
			l.topic[s], l.feat[s] = int32(c.Topics), -1
		}
	}
	for s, f := range l.feat {
		if f >= 0 {
			l.featPos = append(l.featPos, int32(s))
		}
	}

	l.qpos = synthQPos(c)

	// What each query row asks for.
	r = synthRNG(c.Seed, streamIntents)
	spread := synthOff(c.IntentSpread)
	strength := func() float64 { return math.Exp(spread * r.NormFloat64()) }
	l.intents = make([]synthIntent, len(l.qpos))
	for i, p64 := range l.qpos {
		p := int(p64)
		in := synthIntent{topic: l.topic[p], feature: -1}
		if c.Needle != nil {
			in.topic, in.feature = int32(c.Topics), int32(c.Features)
		} else {
			if r.Float64() < synthOff(c.TopicSwitch) && p >= 1 {
				in.topic = l.topic[1+r.IntN(p)]
			}
			if r.Float64() < synthOff(c.FeatureQuery) {
				// A feature that occurred at or before p, by occurrence.
				k := sort.Search(len(l.featPos), func(j int) bool { return int(l.featPos[j]) > p })
				if k > 0 {
					in.feature = l.feat[l.featPos[r.IntN(k)]]
				}
			}
		}
		in.band = int32(r.IntN(c.LocalBands))
		in.sTopic, in.sLocal, in.sSink = strength(), strength(), strength()
		if f := strength(); in.feature >= 0 {
			in.sFeat = f
		}
		if c.Needle != nil && c.Needle.Focus > 0 {
			// A focused question (NeedleSpec.Focus): the needle's feature
			// outweighs every other intent of the row, whatever was drawn.
			in.sFeat = c.Needle.Focus * max(in.sFeat, in.sTopic, in.sLocal, in.sSink)
		}
		l.intents[i] = in
	}
	return l
}

// synthQPos places the query rows (see PlacementSpread, PlacementTail).
func synthQPos(c *SynthConfig) []int64 {
	n, q := c.NCtx, c.Queries
	pos := make([]int64, q)
	if c.Placement == PlacementTail {
		for i := range pos {
			pos[i] = int64(n - q + i)
		}
		return pos
	}
	hi := n - 1
	lo := min(c.TopK, hi)
	if hi-lo+1 < q {
		lo = hi - q + 1
	}
	if q == 1 {
		pos[0] = int64(hi)
		return pos
	}
	span := int64(hi - lo)
	for i := range pos {
		pos[i] = int64(lo) + int64(i)*span/int64(q-1)
	}
	return pos
}
