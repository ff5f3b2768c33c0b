package checkpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Config holds the fields of a checkpoint's config.json that the DSA
// indexer needs. Zero means "not in the config" for every number (Open
// refuses a config without the DSA fields; see checkConfig). Raw keeps the
// whole file.
type Config struct {
	ModelType     string   // "deepseek_v32", "glm_moe_dsa", ...
	Architectures []string // "DeepseekV32ForCausalLM", "GlmMoeDsaForCausalLM", ...

	HiddenSize            int // hidden_size: the input of wk and weights_proj
	QLoRARank             int // q_lora_rank: the input of wq_b
	NumHiddenLayers       int // num_hidden_layers (the MTP layers come after these)
	NumNextNPredictLayers int // num_nextn_predict_layers (MTP), 0 if absent
	NumAttentionHeads     int // num_attention_heads (main MLA)
	QKRopeHeadDim         int // qk_rope_head_dim: RoPE'd dims of each indexer q/k (the first ones)
	QKNopeHeadDim         int // qk_nope_head_dim (main MLA)
	IndexNHeads           int // index_n_heads: H
	IndexHeadDim          int // index_head_dim: D
	IndexTopK             int // index_topk
	MaxPositionEmbeddings int // max_position_embeddings
	RMSNormEps            float64

	// RopeTheta is rope_theta, or rope_parameters.rope_theta (the nested
	// form Transformers 5 writes and GLM-5.x uses); 0 if neither is set.
	RopeTheta float64
	// RopeScaling is rope_scaling (or rope_parameters) when its type is not
	// "default"; nil for plain RoPE. RopeScalingRaw is that object as
	// written (nil if the config has neither key).
	RopeScaling    *RopeScaling
	RopeScalingRaw map[string]any

	// IndexerRopeInterleave is the config key indexer_rope_interleave as
	// written (nil when absent). Use RopeInterleaved for the layout.
	IndexerRopeInterleave *bool

	// IndexerTypes is each layer's indexer mode, "full" (runs its indexer)
	// or "shared" (reuses the top-k of the previous full layer and has no
	// indexer weights: GLM-5.2's IndexShare), from indexer_types,
	// index_topk_pattern or index_topk_freq/index_skip_topk_offset, as
	// Transformers derives it; nil when the config has none of them (every
	// layer is full).
	IndexerTypes []string

	// Quantisation (quantization_config): QuantMethod "fp8", Fmt "e4m3",
	// ScaleFmt "ue8m0", WeightBlockSize the [out, in] block of one
	// weight_scale_inv entry ([128, 128] when absent).
	QuantMethod     string
	QuantFmt        string
	ScaleFmt        string
	WeightBlockSize [2]int

	// Raw is the whole config.json (numbers as json.Number).
	Raw map[string]any
}

// RopeScaling is a rope_scaling / rope_parameters object of a type other
// than "default" (DeepSeek-V3.2: yarn, factor 40, original 4096, beta_fast
// 32, beta_slow 1, mscale = mscale_all_dim = 1). Absent keys are zero
// (nil for Truncate).
type RopeScaling struct {
	Type                          string // "yarn", "linear", "dynamic", ... (rope_type or type)
	Factor                        float64
	OriginalMaxPositionEmbeddings int
	BetaFast, BetaSlow            float64
	MScale, MScaleAllDim          float64
	AttentionFactor               float64 // attention_factor, 0 if absent
	Truncate                      *bool   // truncate (Transformers' YaRN; absent = true)
	Raw                           map[string]any
}

// RopeInterleaved reports the indexer's RoPE layout: true for interleaved
// pairs (2i, 2i+1) (GPT-J; GLM-5), false for the NeoX half split (i, i+d/2)
// (DeepSeek-V3.2). The config key indexer_rope_interleave wins when present
// (vLLM reads it, default false); without it, glm_moe_dsa is interleaved (as
// Transformers hard-codes for that model) and every other model is not.
func (c *Config) RopeInterleaved() bool {
	if c.IndexerRopeInterleave != nil {
		return *c.IndexerRopeInterleave
	}
	return c.ModelType == "glm_moe_dsa"
}

// HasIndexer reports whether layer (0 ≤ layer < NumHiddenLayers) runs its
// own indexer by the config (see IndexerTypes).
func (c *Config) HasIndexer(layer int) bool {
	if layer < 0 || layer >= c.NumHiddenLayers {
		return false
	}
	return c.IndexerTypes == nil || layer >= len(c.IndexerTypes) || c.IndexerTypes[layer] == "full"
}

// KNormEps is the epsilon of the indexer's k_norm LayerNorm. It is not in
// config.json: Transformers (nn.LayerNorm(index_head_dim, eps=1e-6)) and
// DeepSeek's reference (LayerNorm default eps 1e-6) both hard-code it, for
// DeepSeek-V3.2 and GLM-5 alike; rms_norm_eps (1e-6 / 1e-5) is the main
// model's RMSNorm and does not apply.
const KNormEps = 1e-6

// parseConfig decodes and checks config.json. bad builds the error.
func parseConfig(data []byte, bad func(format string, args ...any) error) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil || raw == nil {
		if err == nil {
			err = fmt.Errorf("null")
		}
		return nil, bad("is not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, bad("is not a JSON object: trailing data")
	}
	r := reader{raw: raw, bad: bad}
	c := &Config{Raw: raw}
	c.ModelType = r.str(raw, "model_type")
	c.Architectures = r.strs(raw, "architectures")
	for _, f := range []struct {
		key string
		dst *int
	}{
		{"hidden_size", &c.HiddenSize}, {"q_lora_rank", &c.QLoRARank},
		{"num_hidden_layers", &c.NumHiddenLayers}, {"num_nextn_predict_layers", &c.NumNextNPredictLayers},
		{"num_attention_heads", &c.NumAttentionHeads}, {"qk_rope_head_dim", &c.QKRopeHeadDim},
		{"qk_nope_head_dim", &c.QKNopeHeadDim}, {"index_n_heads", &c.IndexNHeads},
		{"index_head_dim", &c.IndexHeadDim}, {"index_topk", &c.IndexTopK},
		{"max_position_embeddings", &c.MaxPositionEmbeddings},
	} {
		*f.dst = r.int(raw, f.key, "")
	}
	c.RMSNormEps = r.float(raw, "rms_norm_eps", "")
	if v, ok := raw["indexer_rope_interleave"]; ok && v != nil {
		b, isBool := v.(bool)
		if !isBool {
			r.fail("key %q is %s, not true or false", "indexer_rope_interleave", show(v))
		}
		c.IndexerRopeInterleave = &b
	}

	// RoPE: the flat keys of Transformers 4 (rope_theta, rope_scaling) or
	// the nested rope_parameters of Transformers 5.
	params := r.obj(raw, "rope_parameters", "")
	c.RopeTheta = r.float(raw, "rope_theta", "")
	if c.RopeTheta == 0 && params != nil {
		c.RopeTheta = r.float(params, "rope_theta", "rope_parameters.")
	}
	scaling, where := r.obj(raw, "rope_scaling", ""), "rope_scaling."
	if scaling == nil {
		scaling, where = params, "rope_parameters."
	}
	if scaling != nil {
		c.RopeScalingRaw = scaling
		typ := r.str(scaling, "rope_type")
		if typ == "" {
			typ = r.str(scaling, "type")
		}
		if typ != "" && typ != "default" {
			s := &RopeScaling{Type: typ, Raw: scaling}
			s.Factor = r.float(scaling, "factor", where)
			s.OriginalMaxPositionEmbeddings = r.int(scaling, "original_max_position_embeddings", where)
			s.BetaFast = r.float(scaling, "beta_fast", where)
			s.BetaSlow = r.float(scaling, "beta_slow", where)
			s.MScale = r.float(scaling, "mscale", where)
			s.MScaleAllDim = r.float(scaling, "mscale_all_dim", where)
			s.AttentionFactor = r.float(scaling, "attention_factor", where)
			if v, ok := scaling["truncate"]; ok && v != nil {
				b, isBool := v.(bool)
				if !isBool {
					r.fail("key %q is %s, not true or false", where+"truncate", show(v))
				}
				s.Truncate = &b
			}
			c.RopeScaling = s
		}
	}

	if q := r.obj(raw, "quantization_config", ""); q != nil {
		c.QuantMethod = r.str(q, "quant_method")
		c.QuantFmt = r.str(q, "fmt")
		c.ScaleFmt = r.str(q, "scale_fmt")
		if v, ok := q["weight_block_size"]; ok && v != nil {
			bs, isList := v.([]any)
			if !isList || len(bs) != 2 {
				r.fail("key %q is %s, not a pair [out, in]", "quantization_config.weight_block_size", show(v))
			} else {
				for i := range 2 {
					c.WeightBlockSize[i] = r.intValue(bs[i], "quantization_config.weight_block_size")
				}
			}
		}
	}
	if c.WeightBlockSize == [2]int{} {
		c.WeightBlockSize = [2]int{128, 128}
	}

	c.IndexerTypes = r.indexerTypes(c.NumHiddenLayers)
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

// reader reads typed values out of the raw config, keeping the first
// error.
type reader struct {
	raw map[string]any
	bad func(format string, args ...any) error
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = r.bad(format, args...)
	}
}

func (r *reader) str(m map[string]any, key string) string {
	v, ok := m[key]
	if !ok || v == nil {
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		r.fail("key %q is %s, not a string", key, show(v))
	}
	return s
}

func (r *reader) strs(m map[string]any, key string) []string {
	v, ok := m[key]
	if !ok || v == nil {
		return nil
	}
	list, isList := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, isStr := e.(string)
		if !isStr {
			isList = false
			break
		}
		out = append(out, s)
	}
	if !isList {
		r.fail("key %q is %s, not a list of strings", key, show(v))
		return nil
	}
	return out
}

// int reads a non-negative integer (an integral float such as 4096.0 is
// accepted); absent or null is 0.
func (r *reader) int(m map[string]any, key, where string) int {
	v, ok := m[key]
	if !ok || v == nil {
		return 0
	}
	return r.intValue(v, where+key)
}

func (r *reader) intValue(v any, key string) int {
	n, isNum := v.(json.Number)
	if isNum {
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil && i >= 0 && i <= math.MaxInt32 {
			return int(i)
		}
		if f, err := n.Float64(); err == nil && f >= 0 && f <= math.MaxInt32 && f == math.Trunc(f) {
			return int(f)
		}
	}
	r.fail("key %q is %s, not a non-negative integer", key, show(v))
	return 0
}

// float reads a finite number; absent or null is 0.
func (r *reader) float(m map[string]any, key, where string) float64 {
	v, ok := m[key]
	if !ok || v == nil {
		return 0
	}
	if n, isNum := v.(json.Number); isNum {
		if f, err := n.Float64(); err == nil && !math.IsInf(f, 0) {
			return f
		}
	}
	r.fail("key %q is %s, not a number", where+key, show(v))
	return 0
}

// obj reads a JSON object; absent or null is nil.
func (r *reader) obj(m map[string]any, key, where string) map[string]any {
	v, ok := m[key]
	if !ok || v == nil {
		return nil
	}
	o, isObj := v.(map[string]any)
	if !isObj {
		r.fail("key %q is %s, not an object", where+key, show(v))
	}
	return o
}

// indexerTypes derives each layer's indexer mode the way Transformers'
// GlmMoeDsaConfig does: indexer_types if given; else index_topk_pattern
// ("FSSF…" or a list); else, when index_topk_freq is given, layer i is full
// iff max(i - offset + 1, 0) is a multiple of freq (offset =
// index_skip_topk_offset, default 2). nil when the config has none of these
// keys (every layer full, as in DeepSeek-V3.2 and GLM-5/5.1).
func (r *reader) indexerTypes(layers int) []string {
	var types []string
	switch {
	case r.raw["indexer_types"] != nil:
		types = r.strs(r.raw, "indexer_types")
	case r.raw["index_topk_pattern"] != nil:
		if s, isStr := r.raw["index_topk_pattern"].(string); isStr {
			for _, ch := range s {
				switch ch {
				case 'F':
					types = append(types, "full")
				case 'S':
					types = append(types, "shared")
				default:
					r.fail("key %q is %q: want a string of F (full) and S (shared)", "index_topk_pattern", s)
					return nil
				}
			}
		} else {
			types = r.strs(r.raw, "index_topk_pattern")
		}
	case r.raw["index_topk_freq"] != nil:
		freq := max(r.int(r.raw, "index_topk_freq", ""), 1)
		offset := 2
		if r.raw["index_skip_topk_offset"] != nil {
			offset = r.int(r.raw, "index_skip_topk_offset", "")
		}
		types = make([]string, layers)
		for i := range types {
			types[i] = "shared"
			if max(i-offset+1, 0)%freq == 0 {
				types[i] = "full"
			}
		}
	default:
		return nil
	}
	if r.err != nil {
		return nil
	}
	for i, t := range types {
		if t != "full" && t != "shared" {
			r.fail("indexer type of layer %d is %q, want \"full\" or \"shared\"", i, t)
			return nil
		}
	}
	if len(types) < layers {
		r.fail("indexer types list %d layers, fewer than num_hidden_layers = %d", len(types), layers)
		return nil
	}
	return types
}

// checkConfig checks the fields the indexer needs.
func checkConfig(c *Config, bad func(format string, args ...any) error) error {
	var missing []string
	for _, f := range []struct {
		key string
		v   int
	}{
		{"index_n_heads", c.IndexNHeads}, {"index_head_dim", c.IndexHeadDim},
		{"hidden_size", c.HiddenSize}, {"q_lora_rank", c.QLoRARank},
		{"num_hidden_layers", c.NumHiddenLayers}, {"qk_rope_head_dim", c.QKRopeHeadDim},
	} {
		if f.v <= 0 {
			missing = append(missing, f.key)
		}
	}
	if len(missing) > 0 {
		hint := ""
		if c.IndexNHeads <= 0 || c.IndexHeadDim <= 0 {
			hint = ": not a DSA model (DeepSeek-V3.2, GLM-5)?"
		}
		return bad("has no positive %s%s", strings.Join(missing, ", "), hint)
	}
	if c.QKRopeHeadDim > c.IndexHeadDim || c.QKRopeHeadDim%2 != 0 {
		return bad("qk_rope_head_dim = %d must be even and at most index_head_dim = %d", c.QKRopeHeadDim, c.IndexHeadDim)
	}
	if c.WeightBlockSize[0] <= 0 || c.WeightBlockSize[1] <= 0 {
		return bad("quantization_config.weight_block_size %v must be positive", c.WeightBlockSize)
	}
	if s := c.RopeScaling; s != nil && s.Type == "yarn" && (s.Factor <= 0 || s.OriginalMaxPositionEmbeddings <= 0) {
		return bad("rope scaling of type yarn needs a positive factor and original_max_position_embeddings (got %v, %d)",
			s.Factor, s.OriginalMaxPositionEmbeddings)
	}
	return nil
}

// show formats a raw JSON value for an error message.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	const limit = 40
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}
