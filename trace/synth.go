package trace

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// SynthGeneratorVersion names the synthetic generator's model. It is part of
// Synthetic.Hash and of Meta().Extra["generator"], and changes whenever the
// same configuration would produce different numbers.
const SynthGeneratorVersion = "misabench synthetic v1"

// Placement modes of the query rows of a synthetic trace.
const (
	// PlacementSpread spaces the rows evenly over [TopK, NCtx-1], always
	// including NCtx-1 (rows that see at most TopK keys are trivially exact).
	PlacementSpread = "spread"
	// PlacementTail puts the rows on the last Queries positions.
	PlacementTail = "tail"
)

// DefaultNeedleLen is the needle length used when NeedleSpec.Len is 0.
const DefaultNeedleLen = 24

// ErrSynthConfig is wrapped by every error of SynthConfig.Validate, so that a
// caller can tell bad input (exit code 2) with errors.Is.
var ErrSynthConfig = errors.New("invalid synthetic config")

// NeedleSpec asks the generator to plant a needle (DESIGN.md §8).
type NeedleSpec struct {
	// Depth is where the needle starts, as a fraction (0..1) of the
	// haystack [1, NCtx-Queries-Len]: 0 right after the sink token, 1 just
	// before the question rows.
	Depth float64 `json:"depth" yaml:"depth" mapstructure:"depth"`
	// Len is the needle's length in tokens (0: DefaultNeedleLen).
	Len int `json:"len" yaml:"len" mapstructure:"len"`
	// Focus, when positive, makes the question a focused one: every
	// question row's feature intent (the needle's feature) gets the
	// strength Focus × the largest of the row's drawn intent strengths
	// (topic, feature, local, sink), so the needle's feature heads carry
	// Focus times the weight of any other intent's heads (before the
	// per-head gain and weight jitter). 0 (the default): off, the strengths
	// are drawn like any other row's. Only the question rows' weights
	// change; every random draw stays the same.
	Focus float64 `json:"focus,omitempty" yaml:"focus" mapstructure:"focus"`
	// Scale, when positive, is the amplitude of the needle tokens' feature
	// direction (0, the default: FeatureScale, like any feature token).
	// Only the needle's keys change; every random draw stays the same.
	//
	// Focus and Scale together make the needle unmissable for DSA (see
	// docs/synthetic.md, "Focused needles"); the niah command sets them.
	// Both are omitted from the canonical JSON when zero, so configurations
	// without them keep their hash.
	Scale float64 `json:"scale,omitempty" yaml:"scale" mapstructure:"scale"`
}

// SynthConfig configures the structured synthetic trace generator. The
// geometry (Heads, HeadDim, TopK, NCtx, Layers, Queries) must be set; every
// structure knob left at zero takes the default documented on it (and in
// docs/synthetic.md). Float knobs marked "negative: off" treat any negative
// value as zero (WithDefaults writes it as -1), because zero itself means
// "default".
//
// Units: keys carry unit directions with the given amplitudes plus Gaussian
// noise of KeyNoise per dimension, so an amplitude A stands A/KeyNoise noise
// standard deviations out along its direction.
type SynthConfig struct {
	// Model names the modelled model ("deepseek-v3.2", "glm-5" or free
	// text; default "custom"). It only labels the trace.
	Model   string `json:"model" yaml:"model" mapstructure:"model"`
	Heads   int    `json:"heads" yaml:"heads" mapstructure:"heads"`
	HeadDim int    `json:"head_dim" yaml:"head_dim" mapstructure:"head_dim"`
	TopK    int    `json:"topk" yaml:"topk" mapstructure:"topk"`
	// NCtx is the number of keys (tokens) of the sequence.
	NCtx   int   `json:"n_ctx" yaml:"n_ctx" mapstructure:"n_ctx"`
	Layers []int `json:"layers" yaml:"layers" mapstructure:"layers"`
	// Queries is the number of query rows.
	Queries int `json:"queries" yaml:"queries" mapstructure:"queries"`
	// Placement is PlacementSpread (default) or PlacementTail. With a
	// Needle the query rows are the question rows at the tail, whatever
	// was asked (WithDefaults sets "tail").
	Placement string `json:"placement" yaml:"placement" mapstructure:"placement"`
	Seed      uint64 `json:"seed" yaml:"seed" mapstructure:"seed"`
	// Needle, if set, plants a needle span and makes the query rows a
	// question about it (Meta.Needle, Meta.Question, Meta.DepthPercent).
	Needle *NeedleSpec `json:"needle" yaml:"needle" mapstructure:"needle"`

	// --- Sequence layout (shared by all layers) ---

	// SegmentMin and SegmentMax bound the length of a topical segment in
	// tokens; lengths are log-uniform in between (defaults 256, 4096).
	SegmentMin int `json:"segment_min" yaml:"segment_min" mapstructure:"segment_min"`
	SegmentMax int `json:"segment_max" yaml:"segment_max" mapstructure:"segment_max"`
	// Topics is the number of topic directions (default 32); a segment
	// draws one, never the same as the segment before it.
	Topics int `json:"topics" yaml:"topics" mapstructure:"topics"`
	// Features is the number of rare feature directions (default 1024).
	Features int `json:"features" yaml:"features" mapstructure:"features"`
	// FeatureRate is the fraction of tokens that carry a feature (default
	// 0.02; negative: off).
	FeatureRate float64 `json:"feature_rate" yaml:"feature_rate" mapstructure:"feature_rate"`
	// FeatureZipf is the Zipf exponent of feature frequencies: feature i
	// is drawn with weight 1/(i+1)^FeatureZipf (default 1; negative: off,
	// i.e. uniform).
	FeatureZipf float64 `json:"feature_zipf" yaml:"feature_zipf" mapstructure:"feature_zipf"`
	// TopicSwitch is the probability that a query row asks about the topic
	// of a random earlier token instead of its own segment's (default 0.25;
	// negative: off).
	TopicSwitch float64 `json:"topic_switch" yaml:"topic_switch" mapstructure:"topic_switch"`
	// FeatureQuery is the probability that a query row asks about a feature
	// that occurred before it (default 0.5; negative: off). Needle question
	// rows always ask about the needle's feature.
	FeatureQuery float64 `json:"feature_query" yaml:"feature_query" mapstructure:"feature_query"`

	// --- Keys (per layer; LayerJitter scales KeyNoise and PosScale) ---

	// KeyNoise is the per-dimension standard deviation of key noise
	// (default 1; negative: off).
	KeyNoise float64 `json:"key_noise" yaml:"key_noise" mapstructure:"key_noise"`
	// KeyBias is the amplitude of the mean-key direction every key carries
	// (default 4, a mean cosine of about 0.1 between keys; negative: off).
	// It survives block pooling intact, and carries the heads' ReLU
	// offsets (OffsetSpread).
	KeyBias float64 `json:"key_bias" yaml:"key_bias" mapstructure:"key_bias"`
	// TopicScale is the amplitude of a token's topic direction (default 2;
	// negative: off).
	TopicScale float64 `json:"topic_scale" yaml:"topic_scale" mapstructure:"topic_scale"`
	// TopicJitter spreads the per-token topic amplitude: TopicScale *
	// max(0, 1 + TopicJitter*N(0,1)) (default 0.5; negative: off).
	TopicJitter float64 `json:"topic_jitter" yaml:"topic_jitter" mapstructure:"topic_jitter"`
	// FeatureScale is the amplitude of a feature (and needle) token's
	// feature direction (default 6; negative: off).
	FeatureScale float64 `json:"feature_scale" yaml:"feature_scale" mapstructure:"feature_scale"`
	// PosScale is the amplitude of the positional component: a fixed unit
	// vector in the RoPE dims, rotated by RoPE at the token's position
	// (default 4; negative: off).
	PosScale float64 `json:"pos_scale" yaml:"pos_scale" mapstructure:"pos_scale"`
	// SinkScale is the extra amplitude of the sink token (position 0)
	// along its own direction (default 32; negative: off).
	SinkScale float64 `json:"sink_scale" yaml:"sink_scale" mapstructure:"sink_scale"`
	// RopeDims is the number of leading head dims that carry RoPE (default
	// HeadDim/2 rounded down to even, 0 if that leaves fewer than 4 other
	// dims; negative: off). Content directions live in the other dims.
	RopeDims int `json:"rope_dims" yaml:"rope_dims" mapstructure:"rope_dims"`
	// RopeTheta is the RoPE base (default 10000).
	RopeTheta float64 `json:"rope_theta" yaml:"rope_theta" mapstructure:"rope_theta"`
	// RopeInterleaved pairs dims (2i, 2i+1) (GPT-J, GLM-5) instead of
	// (i, i+RopeDims/2) (NeoX, DeepSeek-V3.2). It changes where the numbers
	// sit, not any dot product.
	RopeInterleaved bool `json:"rope_interleaved" yaml:"rope_interleaved" mapstructure:"rope_interleaved"`

	// --- Heads (per layer) ---

	// Role fractions of the heads, normalised to sum 1 after the layer
	// jitter (defaults 0.25, 0.25, 0.125, 0.0625, 0.3125; negative: off).
	TopicHeads   float64 `json:"topic_heads" yaml:"topic_heads" mapstructure:"topic_heads"`
	FeatureHeads float64 `json:"feature_heads" yaml:"feature_heads" mapstructure:"feature_heads"`
	LocalHeads   float64 `json:"local_heads" yaml:"local_heads" mapstructure:"local_heads"`
	SinkHeads    float64 `json:"sink_heads" yaml:"sink_heads" mapstructure:"sink_heads"`
	DiffuseHeads float64 `json:"diffuse_heads" yaml:"diffuse_heads" mapstructure:"diffuse_heads"`
	// HeadsPerTopic and HeadsPerFeature are how many heads of the role are
	// tuned to each topic or feature (default 2 each).
	HeadsPerTopic   int `json:"heads_per_topic" yaml:"heads_per_topic" mapstructure:"heads_per_topic"`
	HeadsPerFeature int `json:"heads_per_feature" yaml:"heads_per_feature" mapstructure:"heads_per_feature"`
	// LocalBands splits the RoPE frequency pairs into this many contiguous
	// bands (highest frequencies first, i.e. shortest reach first); each
	// local head reads one band, and each query row asks for one band, so
	// that only the local heads of the reach it needs carry it (default 4,
	// or RopeDims/2 if smaller; at most RopeDims/2).
	LocalBands int `json:"local_bands" yaml:"local_bands" mapstructure:"local_bands"`
	// A head's ReLU offset tau is added to its q·k, in the units of the
	// amplitudes (times sqrt(HeadDim)): positive fires on more keys,
	// negative on fewer. It is carried by the query's component tau/KeyBias
	// along the mean-key direction (so KeyBias off means no offsets).
	// OffsetSpread is the standard deviation of tau across heads (default
	// 0.5; negative: off).
	OffsetSpread float64 `json:"offset_spread" yaml:"offset_spread" mapstructure:"offset_spread"`
	// OffsetJitter is the per-query standard deviation added to tau
	// (default 0.25; negative: off).
	OffsetJitter float64 `json:"offset_jitter" yaml:"offset_jitter" mapstructure:"offset_jitter"`
	// DiffuseOffset is added to diffuse heads' tau, so that they fire on
	// most keys (default 1; negative: off).
	DiffuseOffset float64 `json:"diffuse_offset" yaml:"diffuse_offset" mapstructure:"diffuse_offset"`
	// SinkOffset is subtracted from sink heads' tau, so that they fire on
	// the sink and few other keys (default 2; negative: off).
	SinkOffset float64 `json:"sink_offset" yaml:"sink_offset" mapstructure:"sink_offset"`

	// --- Queries and weights ---

	// QueryNoise is the per-dimension standard deviation of query noise,
	// against an intent direction of norm sqrt(HeadDim) (default 0.5;
	// negative: off).
	QueryNoise float64 `json:"query_noise" yaml:"query_noise" mapstructure:"query_noise"`
	// IntentSpread is the log-normal spread of a query's per-kind intent
	// strengths (topic, feature, local, sink) (default 0.75; negative: off).
	IntentSpread float64 `json:"intent_spread" yaml:"intent_spread" mapstructure:"intent_spread"`
	// WeightNoise is the standard deviation of the weights of heads that
	// do not match the query's intent, relative to about 1 for those that
	// do; either sign (default 0.1; negative: off).
	WeightNoise float64 `json:"weight_noise" yaml:"weight_noise" mapstructure:"weight_noise"`
	// WeightJitter is the log-normal per-(query, head) spread of matching
	// heads' weights (default 0.25; negative: off).
	WeightJitter float64 `json:"weight_jitter" yaml:"weight_jitter" mapstructure:"weight_jitter"`
	// HeadGainSpread is the log-normal spread of a per-head weight gain
	// (default 0.3; negative: off).
	HeadGainSpread float64 `json:"head_gain_spread" yaml:"head_gain_spread" mapstructure:"head_gain_spread"`

	// LayerJitter is the log-normal spread, drawn per layer, applied to the
	// role fractions, KeyNoise, QueryNoise and PosScale, so that layers
	// differ (default 0.3; negative: off). The topic and feature amplitudes
	// are not jittered: the noise jitter already moves their signal-to-noise.
	LayerJitter float64 `json:"layer_jitter" yaml:"layer_jitter" mapstructure:"layer_jitter"`
}

// synthDefaults are the documented defaults of the structure knobs.
var synthDefaults = SynthConfig{
	SegmentMin:      256,
	SegmentMax:      4096,
	Topics:          32,
	Features:        1024,
	FeatureRate:     0.02,
	FeatureZipf:     1,
	TopicSwitch:     0.25,
	FeatureQuery:    0.5,
	KeyNoise:        1,
	KeyBias:         4,
	TopicScale:      2,
	TopicJitter:     0.5,
	FeatureScale:    6,
	PosScale:        4,
	SinkScale:       32,
	RopeTheta:       10000,
	TopicHeads:      0.25,
	FeatureHeads:    0.25,
	LocalHeads:      0.125,
	SinkHeads:       0.0625,
	DiffuseHeads:    0.3125,
	HeadsPerTopic:   2,
	HeadsPerFeature: 2,
	LocalBands:      4,
	OffsetSpread:    0.5,
	OffsetJitter:    0.25,
	DiffuseOffset:   1,
	SinkOffset:      2,
	QueryNoise:      0.5,
	IntentSpread:    0.75,
	WeightNoise:     0.1,
	WeightJitter:    0.25,
	HeadGainSpread:  0.3,
	LayerJitter:     0.3,
}

// floatKnobs lists the float knobs with their defaults (zero: default,
// negative: off), except RopeTheta, which has no "off".
func (c *SynthConfig) floatKnobs() []struct {
	p   *float64
	def float64
} {
	d := synthDefaults
	return []struct {
		p   *float64
		def float64
	}{
		{&c.FeatureRate, d.FeatureRate}, {&c.FeatureZipf, d.FeatureZipf},
		{&c.TopicSwitch, d.TopicSwitch}, {&c.FeatureQuery, d.FeatureQuery},
		{&c.KeyNoise, d.KeyNoise}, {&c.KeyBias, d.KeyBias},
		{&c.TopicScale, d.TopicScale}, {&c.TopicJitter, d.TopicJitter},
		{&c.FeatureScale, d.FeatureScale}, {&c.PosScale, d.PosScale},
		{&c.SinkScale, d.SinkScale},
		{&c.TopicHeads, d.TopicHeads}, {&c.FeatureHeads, d.FeatureHeads},
		{&c.LocalHeads, d.LocalHeads}, {&c.SinkHeads, d.SinkHeads},
		{&c.DiffuseHeads, d.DiffuseHeads},
		{&c.OffsetSpread, d.OffsetSpread}, {&c.OffsetJitter, d.OffsetJitter},
		{&c.DiffuseOffset, d.DiffuseOffset}, {&c.SinkOffset, d.SinkOffset},
		{&c.QueryNoise, d.QueryNoise}, {&c.IntentSpread, d.IntentSpread},
		{&c.WeightNoise, d.WeightNoise}, {&c.WeightJitter, d.WeightJitter},
		{&c.HeadGainSpread, d.HeadGainSpread},
		{&c.LayerJitter, d.LayerJitter},
	}
}

// WithDefaults returns a copy of c with every zero structure knob set to its
// documented default, every negative ("off") float knob written as -1, Model
// "custom" if empty, Placement "spread" if empty ("tail" whenever a Needle is
// set) and a needle length of DefaultNeedleLen if zero. It never touches the
// geometry (Heads, HeadDim, TopK, NCtx, Layers, Queries) or Seed, and never
// aliases c's slices or needle.
func (c SynthConfig) WithDefaults() SynthConfig {
	c.Layers = slices.Clone(c.Layers)
	if c.Needle != nil {
		n := *c.Needle
		if n.Len == 0 {
			n.Len = DefaultNeedleLen
		}
		c.Needle = &n
		c.Placement = PlacementTail
	}
	if c.Model == "" {
		c.Model = "custom"
	}
	if c.Placement == "" {
		c.Placement = PlacementSpread
	}
	d := synthDefaults
	for _, p := range []struct {
		p   *int
		def int
	}{
		{&c.SegmentMin, d.SegmentMin}, {&c.SegmentMax, d.SegmentMax},
		{&c.Topics, d.Topics}, {&c.Features, d.Features},
		{&c.HeadsPerTopic, d.HeadsPerTopic}, {&c.HeadsPerFeature, d.HeadsPerFeature},
	} {
		if *p.p == 0 {
			*p.p = p.def
		}
	}
	if c.RopeDims == 0 {
		r := (c.HeadDim / 2) &^ 1
		if c.HeadDim-r < 4 {
			r = -1
		}
		c.RopeDims = r
	} else if c.RopeDims < 0 {
		c.RopeDims = -1
	}
	if c.LocalBands == 0 {
		c.LocalBands = d.LocalBands
		if r := c.ropeDims(); r > 0 {
			c.LocalBands = min(c.LocalBands, r/2)
		}
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = d.RopeTheta
	}
	for _, k := range c.floatKnobs() {
		switch {
		case *k.p == 0:
			*k.p = k.def
		case *k.p < 0:
			*k.p = -1
		}
	}
	return c
}

// off maps an "off" (negative) knob to 0.
func synthOff(x float64) float64 { return max(x, 0) }

// ropeDims is the effective number of RoPE dims (0 when off).
func (c *SynthConfig) ropeDims() int { return max(c.RopeDims, 0) }

// Validate checks the configuration as NewSynthetic would use it, i.e. after
// WithDefaults. Every error wraps ErrSynthConfig.
func (c SynthConfig) Validate() error {
	c = c.WithDefaults()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrSynthConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Heads < 1:
		return bad("heads must be at least 1, got %d", c.Heads)
	case c.HeadDim < 4:
		return bad("head_dim must be at least 4, got %d", c.HeadDim)
	case c.TopK < 1:
		return bad("topk must be at least 1, got %d", c.TopK)
	case c.NCtx < 1:
		return bad("n_ctx must be at least 1, got %d", c.NCtx)
	case c.NCtx > 1<<30:
		return bad("n_ctx %d is too large (max 2^30)", c.NCtx)
	case c.Queries < 1:
		return bad("queries must be at least 1, got %d", c.Queries)
	case c.Queries > c.NCtx:
		return bad("queries (%d) must not exceed n_ctx (%d)", c.Queries, c.NCtx)
	case len(c.Layers) == 0:
		return bad("no layers")
	case c.Placement != PlacementSpread && c.Placement != PlacementTail:
		return bad("unknown placement %q (want %q or %q)", c.Placement, PlacementSpread, PlacementTail)
	}
	seen := map[int]bool{}
	for _, l := range c.Layers {
		if l < 0 {
			return bad("layer %d is negative", l)
		}
		if seen[l] {
			return bad("layer %d is listed twice", l)
		}
		seen[l] = true
	}
	if n := c.Needle; n != nil {
		hay := c.NCtx - c.Queries - 1 // tokens between the sink and the question
		switch {
		case math.IsNaN(n.Depth) || n.Depth < 0 || n.Depth > 1:
			return bad("needle depth %v is outside [0, 1]", n.Depth)
		case n.Len < 1:
			return bad("needle length must be at least 1, got %d", n.Len)
		case n.Len > hay:
			return bad("needle of %d tokens does not fit the %d-token haystack (n_ctx %d - %d question rows - 1 sink)", n.Len, max(hay, 0), c.NCtx, c.Queries)
		case math.IsNaN(n.Focus) || math.IsInf(n.Focus, 0) || n.Focus < 0:
			return bad("needle focus must be a finite number ≥ 0 (0: off), got %v", n.Focus)
		case math.IsNaN(n.Scale) || math.IsInf(n.Scale, 0) || n.Scale < 0:
			return bad("needle scale must be a finite number ≥ 0 (0: feature_scale), got %v", n.Scale)
		}
	}
	switch {
	case c.SegmentMin < 1:
		return bad("segment_min must be at least 1, got %d", c.SegmentMin)
	case c.SegmentMax < c.SegmentMin:
		return bad("segment_max (%d) must be at least segment_min (%d)", c.SegmentMax, c.SegmentMin)
	case c.Topics < 1:
		return bad("topics must be at least 1, got %d", c.Topics)
	case c.Features < 1:
		return bad("features must be at least 1, got %d", c.Features)
	case c.HeadsPerTopic < 1 || c.HeadsPerFeature < 1:
		return bad("heads_per_topic and heads_per_feature must be at least 1")
	case c.LocalBands < 1:
		return bad("local_bands must be at least 1, got %d", c.LocalBands)
	case c.ropeDims() > 0 && c.LocalBands > c.ropeDims()/2:
		return bad("local_bands %d exceeds the %d RoPE pairs", c.LocalBands, c.ropeDims()/2)
	case c.RopeDims%2 != 0 && c.RopeDims > 0:
		return bad("rope_dims must be even, got %d", c.RopeDims)
	case c.HeadDim-c.ropeDims() < 4:
		return bad("rope_dims %d leaves fewer than 4 content dims of head_dim %d", c.RopeDims, c.HeadDim)
	case math.IsNaN(c.RopeTheta) || math.IsInf(c.RopeTheta, 0) || c.RopeTheta <= 1:
		return bad("rope_theta must be a finite number above 1, got %v", c.RopeTheta)
	}
	for _, k := range c.floatKnobs() {
		if math.IsNaN(*k.p) || math.IsInf(*k.p, 0) {
			return bad("a structure knob is %v", *k.p)
		}
	}
	for _, k := range []struct {
		name string
		p    float64
	}{{"feature_rate", c.FeatureRate}, {"topic_switch", c.TopicSwitch}, {"feature_query", c.FeatureQuery}} {
		if k.p > 1 {
			return bad("%s is a probability, got %v", k.name, k.p)
		}
	}
	if synthOff(c.TopicHeads)+synthOff(c.FeatureHeads)+synthOff(c.LocalHeads)+synthOff(c.SinkHeads)+synthOff(c.DiffuseHeads) <= 0 {
		return bad("every head role fraction is off")
	}
	for _, k := range []struct {
		name string
		x    float64
	}{{"layer_jitter", c.LayerJitter}, {"intent_spread", c.IntentSpread}, {"weight_jitter", c.WeightJitter}, {"head_gain_spread", c.HeadGainSpread}} {
		if k.x > 5 {
			return bad("%s %v is beyond any sensible log-normal spread (max 5)", k.name, k.x)
		}
	}
	return nil
}

// canonicalJSON is the configuration after WithDefaults together with the
// generator version, as JSON (struct fields in declaration order).
func (c SynthConfig) canonicalJSON() []byte {
	b, err := json.Marshal(struct {
		Generator string      `json:"generator"`
		Config    SynthConfig `json:"config"`
	}{SynthGeneratorVersion, c.WithDefaults()})
	if err != nil { // only NaN/Inf can fail, and Validate refuses them
		panic(err)
	}
	return b
}

// SynthPreset returns the synthetic configuration of a model preset:
// "deepseek-v3.2" (64 heads, NeoX RoPE) or "glm-5" (32 heads, interleaved
// RoPE), both with HeadDim 128, TopK 2048, NCtx 32768, Layers {0,1,2}, 256
// query rows placed "spread", Seed 1, and every structure knob at its
// default (filled in).
func SynthPreset(model string) (SynthConfig, error) {
	c := SynthConfig{
		Model: model, HeadDim: 128, TopK: 2048, NCtx: 32768,
		Layers: []int{0, 1, 2}, Queries: 256, Placement: PlacementSpread, Seed: 1,
		RopeDims: 64,
	}
	switch model {
	case "deepseek-v3.2":
		c.Heads = 64
	case "glm-5":
		c.Heads = 32
		c.RopeInterleaved = true
	default:
		return SynthConfig{}, fmt.Errorf("%w: no synthetic preset %q (have deepseek-v3.2, glm-5)", ErrSynthConfig, model)
	}
	return c.WithDefaults(), nil
}

// Synthetic is a deterministic, structured synthetic trace (DESIGN.md §8).
// It implements Source; Layer generates a layer on demand, in parallel, and
// the same configuration (seed included) and layer give identical bits
// whatever the number of workers.
type Synthetic struct {
	cfg    SynthConfig
	hash   string
	canon  string
	layout *synthLayout
}

var _ Source = (*Synthetic)(nil)

// NewSynthetic validates cfg (after WithDefaults) and lays out the sequence:
// segments, feature tokens, the needle and the query rows' intents. Layers
// are generated by Layer.
func NewSynthetic(cfg SynthConfig) (*Synthetic, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.WithDefaults()
	canon := c.canonicalJSON()
	sum := sha256.Sum256(canon)
	return &Synthetic{cfg: c, hash: hex.EncodeToString(sum[:]), canon: string(canon), layout: newSynthLayout(&c)}, nil
}

// Config returns the effective configuration (defaults filled in).
func (s *Synthetic) Config() SynthConfig {
	c := s.cfg
	c.Layers = slices.Clone(c.Layers)
	if c.Needle != nil {
		n := *c.Needle
		c.Needle = &n
	}
	return c
}

// Name is "synthetic:<model>".
func (s *Synthetic) Name() string { return "synthetic:" + s.cfg.Model }

// Meta describes the trace. Extra records the generator version, the seed
// and the canonical configuration JSON, so that a written trace says how to
// make it again.
func (s *Synthetic) Meta() Meta {
	c := &s.cfg
	m := Meta{
		Format:  FormatV1,
		Model:   c.Model,
		NCtx:    c.NCtx,
		Heads:   c.Heads,
		HeadDim: c.HeadDim,
		TopK:    c.TopK,
		Layers:  slices.Clone(c.Layers),
		Dataset: "synthetic",
		Extra: map[string]string{
			"generator":        SynthGeneratorVersion,
			"seed":             strconv.FormatUint(c.Seed, 10),
			"synthetic_config": s.canon,
		},
	}
	if c.Needle != nil {
		l := s.layout
		m.Needle = []Span{l.needle}
		q := l.question
		m.Question = &q
		d := c.Needle.Depth * 100
		m.DepthPercent = &d
		m.SampleID = fmt.Sprintf("seed%d-depth%s", c.Seed, strconv.FormatFloat(d, 'g', -1, 64))
	} else {
		m.SampleID = fmt.Sprintf("seed%d", c.Seed)
	}
	return m
}

// QPos returns the positions of the query rows, ascending (a copy).
func (s *Synthetic) QPos() []int64 { return slices.Clone(s.layout.qpos) }

// NKeys is NCtx.
func (s *Synthetic) NKeys() int { return s.cfg.NCtx }

// Hash is the sha256 hex of the canonical JSON of the configuration
// (defaults filled in) and SynthGeneratorVersion.
func (s *Synthetic) Hash() string { return s.hash }

// Layer generates layer l (one of the configured layers).
func (s *Synthetic) Layer(ctx context.Context, l int) (*Layer, error) {
	if !slices.Contains(s.cfg.Layers, l) {
		return nil, fmt.Errorf("%s: layer %d is not one of the layers %s", s.Name(), l, synthJoinInts(s.cfg.Layers))
	}
	return s.generate(ctx, l, 0)
}

func synthJoinInts(xs []int) string {
	p := make([]string, len(xs))
	for i, x := range xs {
		p[i] = strconv.Itoa(x)
	}
	return strings.Join(p, ",")
}
