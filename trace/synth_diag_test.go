package trace

import (
	"math"
	"os"
	"slices"
	"sort"
	"testing"
)

// TestSynthDiagnostics prints what DSA's own top-k is made of on the
// deepseek-v3.2 preset (32K keys): the share of the selected score mass each
// head role holds, how much the 8 heads with the most mass hold, and how many
// selected keys share the row's topic, carry its feature, are recent, or are
// the needle. It measures the generator's structure, never a method's recall,
// and runs only with MISABENCH_SYNTH_DIAG=1 (set MISABENCH_SYNTH_NEEDLE=1 for
// a needle at depth 0.3). It takes a few seconds per layer.
func TestSynthDiagnostics(t *testing.T) {
	if os.Getenv("MISABENCH_SYNTH_DIAG") == "" {
		t.Skip("set MISABENCH_SYNTH_DIAG=1 to print the generator's structure")
	}
	c, err := SynthPreset("deepseek-v3.2")
	if err != nil {
		t.Fatal(err)
	}
	c.Queries = 12
	if os.Getenv("MISABENCH_SYNTH_NEEDLE") != "" {
		c.Needle = &NeedleSpec{Depth: 0.3, Len: 24}
	}
	s := synthMust(t, c)
	cf := s.Config()
	d, h := c.HeadDim, c.Heads
	for _, l := range c.Layers {
		ly := synthMustLayer(t, s, l)
		pr := newSynthParams(&cf, l)
		var roleCount [numRoles]int
		for _, r := range pr.roles {
			roleCount[r]++
		}
		t.Logf("layer %d: heads per role (topic feature local sink diffuse) %v, key noise %.2f, query noise %.2f, pos %.2f",
			l, roleCount, pr.keyNoise, pr.queryNoise, pr.posA)
		for row, p64 := range s.QPos() {
			p := int(p64)
			in := s.layout.intents[row]
			contrib := make([][]float64, h)
			score := make([]float64, p+1)
			for hd := range h {
				q := ly.Q[(row*h+hd)*d : (row*h+hd+1)*d]
				w := float64(ly.W[row*h+hd])
				contrib[hd] = make([]float64, p+1)
				for k := 0; k <= p; k++ {
					if x := synthDot32(q, ly.K[k*d:(k+1)*d]); x > 0 {
						contrib[hd][k] = w * x
						score[k] += w * x
					}
				}
			}
			idx := make([]int, p+1)
			for i := range idx {
				idx[i] = i
			}
			sort.SliceStable(idx, func(a, b int) bool { return score[idx[a]] > score[idx[b]] })
			top := idx[:min(c.TopK, len(idx))]
			var byRole [numRoles]float64
			headMass := make([]float64, h)
			total := 0.0
			var sameTopic, feat, recent, needle int
			for _, k := range top {
				for hd := range h {
					byRole[pr.roles[hd]] += contrib[hd][k]
					headMass[hd] += contrib[hd][k]
				}
				total += score[k]
				if s.layout.topic[k] == in.topic {
					sameTopic++
				}
				if in.feature >= 0 && s.layout.feat[k] == in.feature {
					feat++
				}
				if k > p-c.TopK {
					recent++
				}
				if k >= s.layout.needle.Start && k < s.layout.needle.End {
					needle++
				}
			}
			featAll := 0
			for k := 0; k <= p; k++ {
				if in.feature >= 0 && s.layout.feat[k] == in.feature {
					featAll++
				}
			}
			slices.SortFunc(headMass, func(a, b float64) int { return synthCmp(math.Abs(b), math.Abs(a)) })
			top8 := 0.0
			for _, m := range headMass[:min(8, h)] {
				top8 += m
			}
			t.Logf("  p=%d asks topic %d feature %d band %d, strengths topic %.2f feature %.2f local %.2f sink %.2f | mass: topic %.2f feature %.2f local %.2f sink %.2f diffuse %.2f, top-8 heads %.2f | top-k: same topic %d, its feature %d/%d, last k %d, needle %d",
				p, in.topic, in.feature, in.band, in.sTopic, in.sFeat, in.sLocal, in.sSink,
				byRole[roleTopic]/total, byRole[roleFeature]/total, byRole[roleLocal]/total, byRole[roleSink]/total, byRole[roleDiffuse]/total,
				top8/total, sameTopic, feat, featAll, recent, needle)
		}
	}
}
