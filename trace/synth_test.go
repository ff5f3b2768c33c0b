package trace

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
)

// synthSmall is a small configuration that keeps the tests fast.
func synthSmall() SynthConfig {
	return SynthConfig{
		Model: "test", Heads: 32, HeadDim: 64, TopK: 256, NCtx: 12000,
		Layers: []int{0, 3}, Queries: 40, Seed: 42,
	}
}

func synthMust(t testing.TB, c SynthConfig) *Synthetic {
	t.Helper()
	s, err := NewSynthetic(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func synthMustLayer(t testing.TB, s *Synthetic, l int) *Layer {
	t.Helper()
	ly, err := s.Layer(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	return ly
}

func synthSameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func synthDot32(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func TestSynthDeterminism(t *testing.T) {
	c := synthSmall()
	s := synthMust(t, c)
	ref := synthMustLayer(t, s, 0)
	for _, workers := range []int{1, 2, 3, 7, 64} {
		got, err := synthMust(t, c).generate(context.Background(), 0, workers)
		if err != nil {
			t.Fatal(err)
		}
		if !synthSameBits(ref.K, got.K) || !synthSameBits(ref.Q, got.Q) || !synthSameBits(ref.W, got.W) {
			t.Fatalf("layer 0 with %d workers differs from the default run", workers)
		}
	}
	if synthMust(t, c).Hash() != s.Hash() {
		t.Fatal("hash is not stable")
	}

	c2 := c
	c2.Seed = 43
	s2 := synthMust(t, c2)
	other := synthMustLayer(t, s2, 0)
	if synthSameBits(ref.K, other.K) || synthSameBits(ref.Q, other.Q) || synthSameBits(ref.W, other.W) {
		t.Fatal("a different seed gives the same layer")
	}
	if s2.Hash() == s.Hash() {
		t.Fatal("a different seed gives the same hash")
	}
	l3 := synthMustLayer(t, s, 3)
	if synthSameBits(ref.K, l3.K) || synthSameBits(ref.Q, l3.Q) {
		t.Fatal("layers 0 and 3 are identical")
	}
	if l3.Index != 3 {
		t.Fatalf("Index = %d, want 3", l3.Index)
	}
}

func TestSynthHashCanonical(t *testing.T) {
	c := synthSmall()
	filled := c.WithDefaults()
	if synthMust(t, c).Hash() != synthMust(t, filled).Hash() {
		t.Fatal("filling the defaults by hand changes the hash")
	}
	a, b := c, c
	a.TopicSwitch, b.TopicSwitch = -1, -7 // both "off"
	if synthMust(t, a).Hash() != synthMust(t, b).Hash() {
		t.Fatal("two spellings of 'off' hash differently")
	}
	if synthMust(t, a).Hash() == synthMust(t, c).Hash() {
		t.Fatal("turning a knob off does not change the hash")
	}
	if len(synthMust(t, c).Hash()) != 64 {
		t.Fatal("hash is not sha256 hex")
	}
	// WithDefaults must not alias the caller's slices or needle.
	c.Needle = &NeedleSpec{Depth: 0.5}
	d := c.WithDefaults()
	d.Layers[0] = 99
	d.Needle.Depth = 0.9
	if c.Layers[0] == 99 || c.Needle.Depth != 0.5 || c.Needle.Len != 0 {
		t.Fatal("WithDefaults aliases its input")
	}
}

func TestSynthShapesAndMeta(t *testing.T) {
	c := synthSmall()
	s := synthMust(t, c)
	var src Source = s
	m := src.Meta()
	if m.Format != FormatV1 || m.Model != "test" || m.NCtx != c.NCtx || m.Heads != c.Heads ||
		m.HeadDim != c.HeadDim || m.TopK != c.TopK || !slices.Equal(m.Layers, c.Layers) {
		t.Fatalf("meta %+v does not match config", m)
	}
	if m.Extra["generator"] != SynthGeneratorVersion || m.Extra["seed"] != "42" || m.Extra["synthetic_config"] == "" {
		t.Fatalf("extra = %v", m.Extra)
	}
	if m.Needle != nil || m.Question != nil || m.DepthPercent != nil {
		t.Fatal("needle metadata without a needle")
	}
	if src.Name() != "synthetic:test" || src.NKeys() != c.NCtx {
		t.Fatalf("Name %q NKeys %d", src.Name(), src.NKeys())
	}
	qp := src.QPos()
	if len(qp) != c.Queries {
		t.Fatalf("%d query rows, want %d", len(qp), c.Queries)
	}
	for _, l := range m.Layers {
		ly := synthMustLayer(t, s, l)
		if len(ly.K) != m.NCtx*m.HeadDim || len(ly.Q) != len(qp)*m.Heads*m.HeadDim || len(ly.W) != len(qp)*m.Heads {
			t.Fatalf("layer %d: shapes K %d Q %d W %d", l, len(ly.K), len(ly.Q), len(ly.W))
		}
		for name, xs := range map[string][]float32{"K": ly.K, "Q": ly.Q, "W": ly.W} {
			for i, x := range xs {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					t.Fatalf("layer %d: %s[%d] = %v", l, name, i, x)
				}
			}
		}
	}
	// QPos is a copy.
	qp[0] = -5
	if s.QPos()[0] == -5 {
		t.Fatal("QPos exposes internal state")
	}
}

func TestSynthPlacement(t *testing.T) {
	check := func(t *testing.T, c SynthConfig) []int64 {
		t.Helper()
		qp := synthMust(t, c).QPos()
		if len(qp) != c.Queries {
			t.Fatalf("%d rows, want %d", len(qp), c.Queries)
		}
		for i, p := range qp {
			if p < 0 || p >= int64(c.NCtx) {
				t.Fatalf("row %d at %d outside [0,%d)", i, p, c.NCtx)
			}
			if i > 0 && p <= qp[i-1] {
				t.Fatalf("positions not strictly ascending: %v", qp)
			}
		}
		return qp
	}
	c := synthSmall()
	c.Placement = PlacementSpread
	qp := check(t, c)
	if qp[0] != int64(c.TopK) || qp[len(qp)-1] != int64(c.NCtx-1) {
		t.Fatalf("spread: first %d last %d, want %d and %d", qp[0], qp[len(qp)-1], c.TopK, c.NCtx-1)
	}
	gaps := map[int64]bool{}
	for i := 1; i < len(qp); i++ {
		gaps[qp[i]-qp[i-1]] = true
	}
	if len(gaps) > 2 {
		t.Fatalf("spread rows are not evenly spaced: gaps %v", gaps)
	}

	c.Placement = PlacementTail
	qp = check(t, c)
	if qp[0] != int64(c.NCtx-c.Queries) || qp[len(qp)-1] != int64(c.NCtx-1) {
		t.Fatalf("tail: %v", qp)
	}

	// Degenerate cases: TopK beyond the context, every position a row, one row.
	c = synthSmall()
	c.NCtx, c.TopK, c.Queries = 100, 2048, 100
	check(t, c)
	c.Queries = 30
	qp = check(t, c)
	if qp[len(qp)-1] != 99 {
		t.Fatalf("last row %d, want 99", qp[len(qp)-1])
	}
	c.Queries = 1
	if qp = check(t, c); qp[0] != 99 {
		t.Fatalf("one row at %d, want 99", qp[0])
	}
}

func TestSynthNeedleMeta(t *testing.T) {
	for _, depth := range []float64{0, 0.25, 0.5, 1} {
		c := synthSmall()
		c.Placement = PlacementSpread // overridden: question rows sit at the tail
		c.Needle = &NeedleSpec{Depth: depth, Len: 16}
		s := synthMust(t, c)
		m := s.Meta()
		if len(m.Needle) != 1 || m.Question == nil || m.DepthPercent == nil {
			t.Fatalf("depth %v: needle metadata missing: %+v", depth, m)
		}
		nd, q := m.Needle[0], *m.Question
		if *m.DepthPercent != depth*100 {
			t.Fatalf("depth_percent %v, want %v", *m.DepthPercent, depth*100)
		}
		if q != (Span{c.NCtx - c.Queries, c.NCtx}) {
			t.Fatalf("question %v", q)
		}
		if nd.Len() != 16 || nd.Start < 1 || nd.End > q.Start {
			t.Fatalf("depth %v: needle %v not inside the haystack [1,%d)", depth, nd, q.Start)
		}
		hay := c.NCtx - c.Queries - 1
		if want := 1 + int(math.Round(depth*float64(hay-16))); nd.Start != want {
			t.Fatalf("depth %v: needle starts at %d, want %d", depth, nd.Start, want)
		}
		qp := s.QPos()
		for i, p := range qp {
			if p != int64(q.Start+i) || p < int64(nd.End) {
				t.Fatalf("question row %d at %d, question span %v, needle %v", i, p, q, nd)
			}
		}
		if s.Config().Placement != PlacementTail {
			t.Fatal("a needle must force tail placement")
		}
	}
	// Default needle length.
	c := synthSmall()
	c.Needle = &NeedleSpec{Depth: 0.5}
	if m := synthMust(t, c).Meta(); m.Needle[0].Len() != DefaultNeedleLen {
		t.Fatalf("default needle length %d", m.Needle[0].Len())
	}
}

// The haystack outside the needle and question spans does not depend on
// where the needle is, so a depth sweep changes one thing at a time.
func TestSynthNeedleHaystackStable(t *testing.T) {
	c := synthSmall()
	c.Needle = &NeedleSpec{Depth: 0.2, Len: 16}
	a := synthMust(t, c)
	c.Needle = &NeedleSpec{Depth: 0.7, Len: 16}
	b := synthMust(t, c)
	ka, kb := synthMustLayer(t, a, 0).K, synthMustLayer(t, b, 0).K
	na, nb, q := a.Meta().Needle[0], b.Meta().Needle[0], *a.Meta().Question
	d := c.HeadDim
	for s := 0; s < q.Start; s++ {
		if (s >= na.Start && s < na.End) || (s >= nb.Start && s < nb.End) {
			continue
		}
		if !synthSameBits(ka[s*d:(s+1)*d], kb[s*d:(s+1)*d]) {
			t.Fatalf("key %d differs between needle depths", s)
		}
	}
}

// The question rows' feature heads see the needle far above the haystack:
// at the nominal amplitudes (no layer jitter) by several standard deviations,
// and still clearly in every layer of the default, jittered model.
func TestSynthNeedleStructure(t *testing.T) {
	t.Run("nominal", func(t *testing.T) { testSynthNeedleStructure(t, -1, 3) })
	t.Run("jittered", func(t *testing.T) { testSynthNeedleStructure(t, 0, 1.5) })
}

func testSynthNeedleStructure(t *testing.T, layerJitter, sds float64) {
	c := synthSmall()
	c.Needle = &NeedleSpec{Depth: 0.4, Len: 16}
	c.LayerJitter = layerJitter
	c.Layers = []int{0, 1, 2, 3, 4, 5}
	s := synthMust(t, c)
	nd := s.Meta().Needle[0]
	cf := s.Config()
	for _, l := range c.Layers {
		ly := synthMustLayer(t, s, l)
		pr := newSynthParams(&cf, l)
		heads := pr.featHeads[cf.Features]
		if len(heads) == 0 {
			t.Fatalf("layer %d: no feature head is tuned to the needle", l)
		}
		d, h := c.HeadDim, c.Heads
		// Along the needle's own feature direction the needle keys stand
		// far out of the haystack.
		{
			f := pr.feat(int32(cf.Features))
			var sum, sum2, needle float64
			for k := 0; k < c.NCtx; k++ {
				x := 0.0
				for j, v := range f {
					x += v * float64(ly.K[k*d+pr.p+j])
				}
				sum += x
				sum2 += x * x
				if k >= nd.Start && k < nd.End {
					needle += x
				}
			}
			mean := sum / float64(c.NCtx)
			sd := math.Sqrt(sum2/float64(c.NCtx) - mean*mean)
			needle /= float64(nd.Len())
			if needle < mean+sds*sd {
				t.Fatalf("layer %d: needle keys project %.2f on the needle feature, all keys %.2f ± %.2f", l, needle, mean, sd)
			}
		}
		// Per (question row, needle head): how many standard deviations
		// the needle keys' mean score stands above the mean key's.
		var zsum float64
		var zn int
		for row := range s.QPos() {
			for _, hd := range heads {
				if pr.roles[hd] != roleFeature {
					t.Fatalf("head %d tuned to a feature has role %v", hd, pr.roles[hd])
				}
				if w := ly.W[row*h+int(hd)]; w <= 0 {
					t.Fatalf("layer %d row %d: needle head %d has weight %v", l, row, hd, w)
				}
				q := ly.Q[(row*h+int(hd))*d : (row*h+int(hd)+1)*d]
				var sum, sum2, needle float64
				for k := 0; k < c.NCtx; k++ {
					x := synthDot32(q, ly.K[k*d:(k+1)*d])
					sum += x
					sum2 += x * x
					if k >= nd.Start && k < nd.End {
						needle += x
					}
				}
				mean := sum / float64(c.NCtx)
				sd := math.Sqrt(sum2/float64(c.NCtx) - mean*mean)
				needle /= float64(nd.Len())
				z := (needle - mean) / sd
				if z < 0.5 {
					t.Errorf("layer %d row %d head %d: needle mean %.1f vs keys %.1f ± %.1f", l, row, hd, needle, mean, sd)
				}
				zsum += z
				zn++
			}
		}
		if z := zsum / float64(zn); z < sds {
			t.Errorf("layer %d: needle keys stand %.2f sd above the mean key for the needle heads, want ≥ %v", l, z, sds)
		}
		// On average over the question rows, the needle heads' weights
		// stand far above those of the other feature heads (a single row
		// may care little about the feature: IntentSpread).
		var wNeedle, wOther float64
		var nNeedle, nOther int
		for row := range s.QPos() {
			for hd := 0; hd < h; hd++ {
				w := float64(ly.W[row*h+hd])
				switch {
				case slices.Contains(heads, int32(hd)):
					wNeedle += w
					nNeedle++
				case pr.roles[hd] == roleFeature:
					wOther += math.Abs(w)
					nOther++
				}
			}
		}
		if nOther > 0 && wNeedle/float64(nNeedle) < 4*wOther/float64(nOther) {
			t.Errorf("layer %d: needle heads' mean weight %.4g, other feature heads' mean |w| %.4g", l, wNeedle/float64(nNeedle), wOther/float64(nOther))
		}
	}
}

func TestSynthNominalAmplitudes(t *testing.T) {
	c := synthSmall()
	c.LayerJitter = -1
	c.Needle = &NeedleSpec{Depth: 0.6, Len: 64}
	s := synthMust(t, c)
	cf := s.Config()
	ly := synthMustLayer(t, s, 3)
	pr := newSynthParams(&cf, 3)
	d := c.HeadDim
	proj := func(k int, dir []float64) float64 {
		x := 0.0
		for j, v := range dir {
			x += v * float64(ly.K[k*d+pr.p+j])
		}
		return x
	}
	nd := s.Meta().Needle[0]
	var needle, bias, sink float64
	for k := nd.Start; k < nd.End; k++ {
		needle += proj(k, pr.feat(int32(cf.Features)))
	}
	needle /= float64(nd.Len())
	for k := 0; k < c.NCtx; k++ {
		bias += proj(k, pr.bias)
	}
	bias /= float64(c.NCtx)
	sink = proj(0, pr.sink)
	// Noise along a direction no key carries: the sink direction, past key 0.
	var sum2 float64
	for k := 1; k < c.NCtx; k++ {
		x := proj(k, pr.sink)
		sum2 += x * x
	}
	noise := math.Sqrt(sum2 / float64(c.NCtx-1))
	for _, x := range []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"needle feature", needle, cf.FeatureScale, 0.5},
		{"key bias", bias, cf.KeyBias, 0.05},
		{"sink", sink, cf.SinkScale, 4},
		{"noise", noise, cf.KeyNoise, 0.05},
	} {
		if math.Abs(x.got-x.want) > x.tol {
			t.Errorf("%s amplitude %.3f, want %.3f ± %.2f", x.name, x.got, x.want, x.tol)
		}
	}
}

func TestSynthSinkAndWeights(t *testing.T) {
	c := synthSmall()
	s := synthMust(t, c)
	for _, l := range c.Layers {
		ly := synthMustLayer(t, s, l)
		d := c.HeadDim
		sink := synthDot32(ly.K[:d], ly.K[:d])
		for k := 1; k < c.NCtx; k++ {
			if n := synthDot32(ly.K[k*d:(k+1)*d], ly.K[k*d:(k+1)*d]); n >= sink {
				t.Fatalf("layer %d: key %d norm² %.1f ≥ sink's %.1f", l, k, n, sink)
			}
		}
		neg, pos := 0, 0
		for _, w := range ly.W {
			if w < 0 {
				neg++
			} else if w > 0 {
				pos++
			}
		}
		if neg == 0 || pos == 0 {
			t.Fatalf("layer %d: %d negative and %d positive weights", l, neg, pos)
		}
		// Which heads carry a row depends on the row.
		sets := map[string]bool{}
		for row := range c.Queries {
			w := ly.W[row*c.Heads : (row+1)*c.Heads]
			idx := make([]int, c.Heads)
			for i := range idx {
				idx[i] = i
			}
			slices.SortFunc(idx, func(a, b int) int {
				return -synthCmp(math.Abs(float64(w[a])), math.Abs(float64(w[b])))
			})
			top := idx[:4]
			slices.Sort(top)
			sets[string(rune(top[0]))+string(rune(top[1]))+string(rune(top[2]))+string(rune(top[3]))] = true
		}
		if len(sets) < c.Queries/4 {
			t.Fatalf("layer %d: only %d distinct top-4 head sets over %d rows", l, len(sets), c.Queries)
		}
	}
}

func synthCmp(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Local heads prefer recent keys; topic heads prefer keys of their topic.
func TestSynthHeadRoles(t *testing.T) {
	c := synthSmall()
	c.Placement = PlacementTail
	s := synthMust(t, c)
	cf := s.Config()
	ly := synthMustLayer(t, s, 0)
	pr := newSynthParams(&cf, 0)
	d, h := c.HeadDim, c.Heads
	row := c.Queries - 1
	p := int(s.QPos()[row])
	in := s.layout.intents[row]
	meanScore := func(hd int, keep func(k int) bool) float64 {
		q := ly.Q[(row*h+hd)*d : (row*h+hd+1)*d]
		sum, n := 0.0, 0
		for k := 1; k <= p; k++ {
			if keep(k) {
				sum += synthDot32(q, ly.K[k*d:(k+1)*d])
				n++
			}
		}
		return sum / float64(n)
	}
	var sawLocal, sawTopic bool
	for hd := range h {
		switch pr.roles[hd] {
		case roleLocal:
			// Every band scores the query's own position highest: over
			// the tail rows, key p stands above the far keys.
			sawLocal = true
			var gap float64
			for row, p := range s.QPos() {
				q := ly.Q[(row*h+hd)*d : (row*h+hd+1)*d]
				far := 0.0
				for k := 1; k < 2000; k++ {
					far += synthDot32(q, ly.K[k*d:(k+1)*d])
				}
				gap += synthDot32(q, ly.K[int(p)*d:(int(p)+1)*d]) - far/1999
			}
			gap /= float64(c.Queries)
			if want := 0.5 * math.Sqrt(float64(d)) * pr.posA * pr.bandNorm[pr.cover[hd][0]]; gap < want {
				t.Fatalf("local head %d: own key above far keys by %.2f, want ≥ %.2f", hd, gap, want)
			}
		case roleTopic:
			if !slices.Contains(pr.topicHeads[in.topic], int32(hd)) {
				continue
			}
			sawTopic = true
			on := meanScore(hd, func(k int) bool { return s.layout.topic[k] == in.topic })
			offt := meanScore(hd, func(k int) bool { return s.layout.topic[k] != in.topic })
			if on <= offt+5 {
				t.Fatalf("topic head %d: on-topic keys %.2f, others %.2f", hd, on, offt)
			}
		}
	}
	if !sawLocal || !sawTopic {
		t.Fatalf("no local (%v) or matching topic (%v) head in layer 0", sawLocal, sawTopic)
	}
}

func TestSynthLayersDiffer(t *testing.T) {
	c := synthSmall()
	c.Heads = 64
	c.Layers = []int{0, 1, 2, 3, 4, 5}
	cf := c.WithDefaults()
	mixes := map[[numRoles]int]bool{}
	noise := map[float64]bool{}
	for _, l := range c.Layers {
		pr := newSynthParams(&cf, l)
		var mix [numRoles]int
		for _, r := range pr.roles {
			mix[r]++
		}
		mixes[mix] = true
		noise[pr.keyNoise] = true
	}
	if len(mixes) < 2 || len(noise) < len(c.Layers) {
		t.Fatalf("layers do not differ: %d role mixes, %d noise levels", len(mixes), len(noise))
	}
}

func TestSynthLayerErrors(t *testing.T) {
	s := synthMust(t, synthSmall())
	if _, err := s.Layer(context.Background(), 1); err == nil {
		t.Fatal("a layer that is not listed was generated")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Layer(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled context: %v", err)
	}
}

func TestSynthValidate(t *testing.T) {
	cases := map[string]func(c *SynthConfig){
		"heads 0":             func(c *SynthConfig) { c.Heads = 0 },
		"heads -1":            func(c *SynthConfig) { c.Heads = -1 },
		"head dim 2":          func(c *SynthConfig) { c.HeadDim = 2 },
		"topk 0":              func(c *SynthConfig) { c.TopK = 0 },
		"nctx 0":              func(c *SynthConfig) { c.NCtx = 0 },
		"queries 0":           func(c *SynthConfig) { c.Queries = 0 },
		"queries > nctx":      func(c *SynthConfig) { c.Queries = c.NCtx + 1 },
		"no layers":           func(c *SynthConfig) { c.Layers = nil },
		"negative layer":      func(c *SynthConfig) { c.Layers = []int{-1} },
		"duplicate layer":     func(c *SynthConfig) { c.Layers = []int{2, 2} },
		"unknown placement":   func(c *SynthConfig) { c.Placement = "middle" },
		"needle depth < 0":    func(c *SynthConfig) { c.Needle = &NeedleSpec{Depth: -0.1, Len: 4} },
		"needle depth > 1":    func(c *SynthConfig) { c.Needle = &NeedleSpec{Depth: 1.5, Len: 4} },
		"needle depth NaN":    func(c *SynthConfig) { c.Needle = &NeedleSpec{Depth: math.NaN(), Len: 4} },
		"needle len < 0":      func(c *SynthConfig) { c.Needle = &NeedleSpec{Depth: 0.5, Len: -3} },
		"needle too long":     func(c *SynthConfig) { c.Needle = &NeedleSpec{Depth: 0.5, Len: c.NCtx} },
		"needle + question":   func(c *SynthConfig) { c.Needle = &NeedleSpec{Depth: 0.5, Len: c.NCtx - c.Queries} },
		"segment max < min":   func(c *SynthConfig) { c.SegmentMin, c.SegmentMax = 500, 100 },
		"negative topics":     func(c *SynthConfig) { c.Topics = -2 },
		"odd rope dims":       func(c *SynthConfig) { c.RopeDims = 7 },
		"rope fills the head": func(c *SynthConfig) { c.RopeDims = c.HeadDim },
		"rope theta 0.5":      func(c *SynthConfig) { c.RopeTheta = 0.5 },
		"feature rate > 1":    func(c *SynthConfig) { c.FeatureRate = 1.5 },
		"NaN knob":            func(c *SynthConfig) { c.KeyNoise = math.NaN() },
		"Inf knob":            func(c *SynthConfig) { c.PosScale = math.Inf(1) },
		"no head roles": func(c *SynthConfig) {
			c.TopicHeads, c.FeatureHeads, c.LocalHeads, c.SinkHeads, c.DiffuseHeads = -1, -1, -1, -1, -1
		},
	}
	for name, mut := range cases {
		c := synthSmall()
		mut(&c)
		err := c.Validate()
		if err == nil || !errors.Is(err, ErrSynthConfig) {
			t.Errorf("%s: Validate = %v", name, err)
		}
		if _, err := NewSynthetic(c); err == nil {
			t.Errorf("%s: NewSynthetic accepted it", name)
		}
	}
	if err := synthSmall().Validate(); err != nil {
		t.Fatal(err)
	}
	// The largest needle that fits is accepted, and knobs turned off work.
	c := synthSmall()
	c.Needle = &NeedleSpec{Depth: 1, Len: c.NCtx - c.Queries - 1}
	c.FeatureRate, c.PosScale, c.RopeDims, c.SinkHeads = -1, -1, -1, -1
	s := synthMust(t, c)
	synthMustLayer(t, s, 0)
}

// Tiny and odd geometries generate without trouble.
func TestSynthTiny(t *testing.T) {
	for _, c := range []SynthConfig{
		{Heads: 1, HeadDim: 4, TopK: 1, NCtx: 1, Layers: []int{0}, Queries: 1},
		{Heads: 1, HeadDim: 6, TopK: 1, NCtx: 3, Layers: []int{7}, Queries: 3, Placement: PlacementTail},
		{Heads: 3, HeadDim: 10, TopK: 50, NCtx: 40, Layers: []int{0, 1}, Queries: 5,
			Needle: &NeedleSpec{Depth: 1, Len: 2}, SegmentMin: 1, SegmentMax: 1, Topics: 1, Features: 1, FeatureRate: 1},
		{Heads: 5, HeadDim: 8, TopK: 4, NCtx: 5000, Layers: []int{2}, Queries: 17, HeadsPerTopic: 9, HeadsPerFeature: 9},
	} {
		s := synthMust(t, c)
		for _, l := range c.Layers {
			ly := synthMustLayer(t, s, l)
			if len(ly.K) != c.NCtx*c.HeadDim || len(ly.W) != c.Queries*c.Heads {
				t.Fatalf("%+v: shapes K %d W %d", c, len(ly.K), len(ly.W))
			}
		}
	}
}

func TestSynthPreset(t *testing.T) {
	for _, tc := range []struct {
		model string
		heads int
		inter bool
	}{{"deepseek-v3.2", 64, false}, {"glm-5", 32, true}} {
		c, err := SynthPreset(tc.model)
		if err != nil {
			t.Fatal(err)
		}
		if c.Model != tc.model || c.Heads != tc.heads || c.HeadDim != 128 || c.TopK != 2048 || c.NCtx != 32768 ||
			!slices.Equal(c.Layers, []int{0, 1, 2}) || c.Queries != 256 || c.Placement != PlacementSpread ||
			c.Seed != 1 || c.RopeDims != 64 || c.RopeInterleaved != tc.inter || c.Topics != synthDefaults.Topics {
			t.Fatalf("%s preset: %+v", tc.model, c)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := SynthPreset("llama"); !errors.Is(err, ErrSynthConfig) {
		t.Fatalf("unknown preset: %v", err)
	}
}

// BenchmarkSynthLayer128K generates one DeepSeek-V3.2-shaped layer: 128K keys
// x 128 dims, 256 query rows x 64 heads.
func BenchmarkSynthLayer128K(b *testing.B) {
	c, err := SynthPreset("deepseek-v3.2")
	if err != nil {
		b.Fatal(err)
	}
	c.NCtx = 128 * 1024
	s := synthMust(b, c)
	b.SetBytes(int64(c.NCtx*c.HeadDim*4 + c.Queries*c.Heads*(c.HeadDim+1)*4))
	b.ResetTimer()
	for b.Loop() {
		synthMustLayer(b, s, 0)
	}
}
