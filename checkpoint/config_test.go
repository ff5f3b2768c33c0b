package checkpoint

import (
	"errors"
	"slices"
	"testing"
)

func parse(t *testing.T, js string) *Config {
	t.Helper()
	c, err := parseConfig([]byte(js), func(format string, args ...any) error { return errors.New(format) })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConfigDeepSeekV32 parses the indexer-relevant part of
// deepseek-ai/DeepSeek-V3.2's config.json (Transformers 4 keys).
func TestConfigDeepSeekV32(t *testing.T) {
	c := parse(t, `{
	  "architectures": ["DeepseekV32ForCausalLM"], "model_type": "deepseek_v32",
	  "hidden_size": 7168, "q_lora_rank": 1536, "num_hidden_layers": 61, "num_nextn_predict_layers": 1,
	  "num_attention_heads": 128, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128,
	  "index_head_dim": 128, "index_n_heads": 64, "index_topk": 2048,
	  "max_position_embeddings": 163840, "rms_norm_eps": 1e-06,
	  "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
	    "scale_fmt": "ue8m0", "weight_block_size": [128, 128]},
	  "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
	    "original_max_position_embeddings": 4096, "type": "yarn"},
	  "rope_theta": 10000, "torch_dtype": "bfloat16"}`)
	if c.ModelType != "deepseek_v32" || !slices.Equal(c.Architectures, []string{"DeepseekV32ForCausalLM"}) ||
		c.HiddenSize != 7168 || c.QLoRARank != 1536 || c.NumHiddenLayers != 61 || c.NumNextNPredictLayers != 1 ||
		c.IndexNHeads != 64 || c.IndexHeadDim != 128 || c.IndexTopK != 2048 || c.QKRopeHeadDim != 64 ||
		c.MaxPositionEmbeddings != 163840 || c.RMSNormEps != 1e-6 || c.RopeTheta != 10000 {
		t.Errorf("%+v", c)
	}
	s := c.RopeScaling
	if s == nil || s.Type != "yarn" || s.Factor != 40 || s.OriginalMaxPositionEmbeddings != 4096 || s.BetaFast != 32 ||
		s.BetaSlow != 1 || s.MScale != 1 || s.MScaleAllDim != 1 || s.AttentionFactor != 0 || s.Truncate != nil || s.Raw["type"] != "yarn" {
		t.Errorf("rope scaling %+v", s)
	}
	if c.RopeInterleaved() || c.IndexerRopeInterleave != nil || c.IndexerTypes != nil {
		t.Error("DeepSeek-V3.2's indexer RoPE is NeoX, every layer full")
	}
	if c.QuantMethod != "fp8" || c.QuantFmt != "e4m3" || c.ScaleFmt != "ue8m0" || c.WeightBlockSize != [2]int{128, 128} {
		t.Errorf("quant %q %q %q %v", c.QuantMethod, c.QuantFmt, c.ScaleFmt, c.WeightBlockSize)
	}
	if !c.HasIndexer(0) || !c.HasIndexer(60) || c.HasIndexer(61) || c.HasIndexer(-1) {
		t.Error("HasIndexer")
	}
	if c.Raw["torch_dtype"] != "bfloat16" {
		t.Error("raw")
	}
}

// TestConfigGLM52 parses a GLM-5.2-style config: Transformers 5 nested
// rope_parameters, indexer_rope_interleave, explicit indexer_types.
func TestConfigGLM52(t *testing.T) {
	c := parse(t, `{
	  "architectures": ["GlmMoeDsaForCausalLM"], "model_type": "glm_moe_dsa",
	  "hidden_size": 6144, "q_lora_rank": 2048, "num_hidden_layers": 4, "qk_rope_head_dim": 64,
	  "index_head_dim": 128, "index_n_heads": 32, "index_topk": 2048, "rms_norm_eps": 1e-05,
	  "rope_parameters": {"rope_theta": 8000000, "rope_type": "default"},
	  "rope_interleave": true, "indexer_rope_interleave": true,
	  "indexer_types": ["full", "full", "shared", "full"]}`)
	if c.RopeTheta != 8e6 || c.RopeScaling != nil || c.RopeScalingRaw["rope_type"] != "default" {
		t.Errorf("rope %v %+v %v", c.RopeTheta, c.RopeScaling, c.RopeScalingRaw)
	}
	if !c.RopeInterleaved() || c.WeightBlockSize != [2]int{128, 128} {
		t.Error("GLM's indexer RoPE is interleaved")
	}
	if !c.HasIndexer(1) || c.HasIndexer(2) || !c.HasIndexer(3) {
		t.Errorf("indexer types %v", c.IndexerTypes)
	}

	// Without the key, glm_moe_dsa is interleaved and anything else is not;
	// the key wins when present.
	if !parse(t, `{"model_type": "glm_moe_dsa"}`).RopeInterleaved() ||
		parse(t, `{"model_type": "glm_moe_dsa", "indexer_rope_interleave": false}`).RopeInterleaved() ||
		!parse(t, `{"model_type": "deepseek_v32", "indexer_rope_interleave": true}`).RopeInterleaved() {
		t.Error("RopeInterleaved")
	}
	// Flat rope_theta wins over the nested one; rope_parameters of type yarn
	// are the scaling when there is no rope_scaling.
	c = parse(t, `{"rope_theta": 5, "rope_parameters": {"rope_theta": 7, "rope_type": "yarn", "factor": 4.0,
	  "original_max_position_embeddings": 4096.0, "truncate": false, "attention_factor": 1.5}}`)
	if c.RopeTheta != 5 || c.RopeScaling == nil || c.RopeScaling.Factor != 4 || c.RopeScaling.OriginalMaxPositionEmbeddings != 4096 ||
		c.RopeScaling.Truncate == nil || *c.RopeScaling.Truncate || c.RopeScaling.AttentionFactor != 1.5 {
		t.Errorf("%v %+v", c.RopeTheta, c.RopeScaling)
	}
}

// TestIndexerTypesDerived checks the schedule Transformers derives from
// index_topk_freq / index_skip_topk_offset and index_topk_pattern.
func TestIndexerTypesDerived(t *testing.T) {
	c := parse(t, `{"num_hidden_layers": 78, "index_topk_freq": 4, "index_skip_topk_offset": 3}`)
	var full []int
	for l := range 78 {
		if c.HasIndexer(l) {
			full = append(full, l)
		}
	}
	want := []int{0, 1, 2}
	for l := 6; l < 78; l += 4 {
		want = append(want, l)
	}
	if !slices.Equal(full, want) {
		t.Errorf("full layers %v, want %v", full, want)
	}
	c = parse(t, `{"num_hidden_layers": 5, "index_topk_freq": 2}`) // offset 2
	if !slices.Equal(c.IndexerTypes, []string{"full", "full", "shared", "full", "shared"}) {
		t.Errorf("freq 2: %v", c.IndexerTypes)
	}
	c = parse(t, `{"num_hidden_layers": 3, "index_topk_pattern": "FSF"}`)
	if !slices.Equal(c.IndexerTypes, []string{"full", "shared", "full"}) {
		t.Errorf("pattern: %v", c.IndexerTypes)
	}
	c = parse(t, `{"num_hidden_layers": 2, "index_topk_pattern": ["full", "shared"]}`)
	if !slices.Equal(c.IndexerTypes, []string{"full", "shared"}) {
		t.Errorf("pattern list: %v", c.IndexerTypes)
	}
	if c := parse(t, `{"num_hidden_layers": 3}`); c.IndexerTypes != nil || !c.HasIndexer(2) {
		t.Error("no schedule: every layer full")
	}
}

func TestFormatLayers(t *testing.T) {
	for want, ls := range map[string][]int{"none": nil, "3": {3}, "0-2,6,10-11": {0, 1, 2, 6, 10, 11}} {
		if got := formatLayers(ls); got != want {
			t.Errorf("formatLayers(%v) = %q, want %q", ls, got, want)
		}
	}
}
