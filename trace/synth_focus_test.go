package trace

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// Zero Focus and Scale are today's generator: the canonical JSON (and so
// the hash) does not mention them, and the output is the same bits.
func TestSynthFocusZeroIsUnchanged(t *testing.T) {
	c := synthSmall()
	c.Needle = &NeedleSpec{Depth: 0.3, Len: 16}
	s := synthMust(t, c)
	if canon := s.Meta().Extra["synthetic_config"]; !strings.Contains(canon, `"needle":{"depth":0.3,"len":16},`) {
		t.Errorf("canonical JSON mentions the new knobs at zero: %s", canon)
	}
	var back struct {
		Config SynthConfig `json:"config"`
	}
	if err := json.Unmarshal([]byte(s.Meta().Extra["synthetic_config"]), &back); err != nil || back.Config.Needle.Focus != 0 {
		t.Fatalf("canonical JSON does not read back: %v", err)
	}
	c.Needle = &NeedleSpec{Depth: 0.3, Len: 16, Focus: 4, Scale: 24}
	f := synthMust(t, c)
	if f.Hash() == s.Hash() {
		t.Error("a focused needle hashes like an unfocused one")
	}
	if !strings.Contains(f.Meta().Extra["synthetic_config"], `"focus":4,"scale":24`) {
		t.Errorf("canonical JSON of a focused needle: %s", f.Meta().Extra["synthetic_config"])
	}
}

// Focus changes only the question rows' weights of the needle's feature
// heads, and Scale only the needle's keys; every other number is the same
// bits, because every random draw stays in place.
func TestSynthFocusScaleChangeOneThing(t *testing.T) {
	c := synthSmall()
	c.Needle = &NeedleSpec{Depth: 0.6, Len: 16}
	base := synthMust(t, c)
	c.Needle = &NeedleSpec{Depth: 0.6, Len: 16, Focus: 4, Scale: 24}
	foc := synthMust(t, c)
	nd := base.Meta().Needle[0]
	cf := foc.Config()
	d, h := c.HeadDim, c.Heads
	for _, l := range c.Layers {
		lb, lf := synthMustLayer(t, base, l), synthMustLayer(t, foc, l)
		if !synthSameBits(lb.Q, lf.Q) {
			t.Errorf("layer %d: q changed", l)
		}
		pr := newSynthParams(&cf, l)
		needleHeads := pr.featHeads[cf.Features]
		for s := 0; s < c.NCtx; s++ {
			same := synthSameBits(lb.K[s*d:(s+1)*d], lf.K[s*d:(s+1)*d])
			if in := s >= nd.Start && s < nd.End; in == same {
				t.Fatalf("layer %d: key %d (needle %v) changed %v", l, s, in, !same)
			}
		}
		// The needle's keys: the same key plus (24 - 6) along the needle's
		// feature direction.
		f := pr.feat(int32(cf.Features))
		for s := nd.Start; s < nd.End; s++ {
			delta := 0.0
			for j := range f {
				delta += (float64(lf.K[s*d+pr.p+j]) - float64(lb.K[s*d+pr.p+j])) * f[j]
			}
			if math.Abs(delta-18) > 1e-3 {
				t.Errorf("layer %d: needle key %d moved %v along its feature, want 18", l, s, delta)
			}
		}
		// The weights: the needle's feature heads grow, every other head's
		// weight is the same bits; a needle head ends up above every head
		// matching another intent, up to the per-head gain and jitter.
		for row := range base.QPos() {
			maxOther, minNeedle := 0.0, math.Inf(1)
			for hd := range h {
				wb, wf := lb.W[row*h+hd], lf.W[row*h+hd]
				isNeedle := false
				for _, x := range needleHeads {
					isNeedle = isNeedle || int(x) == hd
				}
				if !isNeedle {
					if math.Float32bits(wb) != math.Float32bits(wf) {
						t.Fatalf("layer %d row %d: weight of head %d (not a needle head) changed", l, row, hd)
					}
					maxOther = max(maxOther, float64(wf)/pr.headGain[hd])
					continue
				}
				if wf <= wb {
					t.Errorf("layer %d row %d: needle head %d weight %v did not grow from %v", l, row, hd, wf, wb)
				}
				minNeedle = min(minNeedle, float64(wf)/pr.headGain[hd])
			}
			// Weight jitter is exp(0.25·N(0,1)) on both sides: allow e^±1.
			if minNeedle < 4*maxOther/math.E/math.E {
				t.Errorf("layer %d row %d: needle heads' weight %v against %v for the strongest other intent", l, row, minNeedle, maxOther)
			}
		}
	}
}

func TestSynthFocusValidate(t *testing.T) {
	for name, n := range map[string]NeedleSpec{
		"negative focus": {Depth: 0.5, Len: 4, Focus: -1},
		"NaN focus":      {Depth: 0.5, Len: 4, Focus: math.NaN()},
		"inf scale":      {Depth: 0.5, Len: 4, Scale: math.Inf(1)},
		"negative scale": {Depth: 0.5, Len: 4, Scale: -2},
	} {
		c := synthSmall()
		c.Needle = &n
		if err := c.Validate(); !errors.Is(err, ErrSynthConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
