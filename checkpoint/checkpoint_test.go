package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/misabench/misabench/safetensors"
)

// A tiny DSA model: 2 heads of dim 8, hidden 200, q_lora_rank 136 (neither
// a multiple of 128 nor of the test block sizes), 4 layers of which 0 and 1
// have indexer tensors.
const (
	tH, tD, tHidden, tQLoRA, tLayers = 2, 8, 200, 136, 4
)

// tensorSpec is one tensor of a test shard, with the float32 values the
// reader must return for it.
type tensorSpec struct {
	st   safetensors.Tensor
	want []float32
}

// fixture describes a test checkpoint: shards of named tensors, the config
// and the weight map, all editable before write.
type fixture struct {
	config map[string]any
	shards map[string][]tensorSpec // shard file → tensors
	block  [2]int                  // FP8 block (out, in)
	r      *rand.Rand
}

func newFixture(block [2]int) *fixture {
	fx := &fixture{
		config: map[string]any{
			"architectures":            []string{"DeepseekV32ForCausalLM"},
			"model_type":               "deepseek_v32",
			"hidden_size":              tHidden,
			"q_lora_rank":              tQLoRA,
			"num_hidden_layers":        tLayers,
			"num_nextn_predict_layers": 1,
			"index_n_heads":            tH,
			"index_head_dim":           tD,
			"index_topk":               16,
			"qk_rope_head_dim":         4,
			"qk_nope_head_dim":         4,
			"rms_norm_eps":             1e-6,
			"max_position_embeddings":  1024,
			"rope_theta":               10000,
			"rope_scaling": map[string]any{
				"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
				"beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0,
			},
		},
		shards: map[string][]tensorSpec{},
		block:  block,
		r:      rand.New(rand.NewPCG(1, 2)),
	}
	q := map[string]any{"quant_method": "fp8", "fmt": "e4m3", "scale_fmt": "ue8m0", "activation_scheme": "dynamic"}
	if block != [2]int{128, 128} {
		q["weight_block_size"] = []int{block[0], block[1]}
	}
	fx.config["quantization_config"] = q

	p := layerPrefix
	// Layer 0: wq_b FP8, wk BF16, k_norm F32, weights_proj BF16, in shard 1.
	// Layer 1: wq_b BF16, wk FP8 whose scale lives in shard 1, k_norm BF16,
	// weights_proj F32, in shard 2.
	s1, s2 := "model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors"
	fx.addFP8(s1, s1, p(0)+nameWqB, tH*tD, tQLoRA)
	fx.add(s1, p(0)+nameWk, safetensors.BF16, tD, tHidden)
	fx.add(s1, p(0)+nameKNormWeight, safetensors.F32, tD)
	fx.add(s1, p(0)+nameKNormBias, safetensors.F32, tD)
	fx.add(s1, p(0)+nameWeightsProj, safetensors.BF16, tH, tHidden)
	fx.add(s2, p(1)+nameWqB, safetensors.BF16, tH*tD, tQLoRA)
	fx.addFP8(s2, s1, p(1)+nameWk, tD, tHidden)
	fx.add(s2, p(1)+nameKNormWeight, safetensors.BF16, tD)
	fx.add(s2, p(1)+nameKNormBias, safetensors.BF16, tD)
	fx.add(s2, p(1)+nameWeightsProj, safetensors.F32, tH, tHidden)
	// Unrelated tensors, large next to the indexer's, in every shard.
	fx.add(s1, "model.layers.0.mlp.down_proj.weight", safetensors.BF16, 512, 300)
	fx.add(s2, "model.layers.1.self_attn.q_b_proj.weight", safetensors.BF16, 512, 300)
	fx.add("model-00003-of-00004.safetensors", "model.embed_tokens.weight", safetensors.BF16, 1000, 200)
	fx.add("model-00004-of-00004.safetensors", "lm_head.weight", safetensors.BF16, 1000, 200)
	return fx
}

// values returns n random values spanning many binades.
func (fx *fixture) values(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(fx.r.NormFloat64() * math.Exp2(float64(fx.r.IntN(8)-4)))
	}
	return v
}

// add adds a tensor of dtype dt (BF16, F16, F32) with random values.
func (fx *fixture) add(shard, name string, dt safetensors.DType, shape ...int) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := fx.values(n)
	b := make([]byte, n*dt.Size())
	if i := safetensors.Encode(b, v, dt); i >= 0 {
		panic("encode")
	}
	want := make([]float32, n)
	safetensors.Decode(want, b, dt)
	fx.shards[shard] = append(fx.shards[shard], tensorSpec{safetensors.Tensor{Name: name, DType: dt, Shape: shape, Data: b}, want})
}

// addFP8 adds a block-quantised F8_E4M3 weight [out, in] to shard and its
// F32 weight_scale_inv to scaleShard, quantised as DeepSeek's weight_quant
// does (scale = amax/448 per block), with the dequantised values as want.
func (fx *fixture) addFP8(shard, scaleShard, name string, out, in int) {
	bo, bi := fx.block[0], fx.block[1]
	v := fx.values(out * in)
	nbo, nbi := ceilDiv(out, bo), ceilDiv(in, bi)
	scale := make([]float32, nbo*nbi)
	for i := range out {
		for j := range in {
			k := (i/bo)*nbi + j/bi
			scale[k] = max(scale[k], float32(math.Abs(float64(v[i*in+j]))))
		}
	}
	for k := range scale {
		scale[k] /= safetensors.E4M3Max
	}
	q := make([]byte, out*in)
	want := make([]float32, out*in)
	for i := range out {
		for j := range in {
			s := scale[(i/bo)*nbi+j/bi]
			q[i*in+j] = safetensors.Float32ToE4M3(v[i*in+j] / s)
			want[i*in+j] = safetensors.E4M3ToFloat32(q[i*in+j]) * s
		}
	}
	sb := make([]byte, 4*len(scale))
	safetensors.Encode(sb, scale, safetensors.F32)
	fx.shards[shard] = append(fx.shards[shard], tensorSpec{safetensors.Tensor{Name: name, DType: safetensors.F8E4M3, Shape: []int{out, in}, Data: q}, want})
	fx.shards[scaleShard] = append(fx.shards[scaleShard], tensorSpec{safetensors.Tensor{
		Name: name + scaleSuffix, DType: safetensors.F32, Shape: []int{nbo, nbi}, Data: sb}, scale})
}

// find returns a tensor spec by name (and its shard), for edits.
func (fx *fixture) find(name string) (*tensorSpec, string) {
	for shard, ts := range fx.shards {
		for i := range ts {
			if ts[i].st.Name == name {
				return &ts[i], shard
			}
		}
	}
	panic("no tensor " + name)
}

// remove deletes a tensor.
func (fx *fixture) remove(name string) {
	for shard, ts := range fx.shards {
		fx.shards[shard] = slices.DeleteFunc(ts, func(t tensorSpec) bool { return t.st.Name == name })
	}
}

// write writes the checkpoint into a new directory: config.json, the
// shards, and the index (unless single is set: then exactly one shard must
// exist and is written as model.safetensors without an index).
func (fx *fixture) write(t testing.TB, single bool) string {
	t.Helper()
	dir := t.TempDir()
	writeJSON(t, filepath.Join(dir, ConfigFile), fx.config)
	wm := map[string]string{}
	for shard, ts := range fx.shards {
		var tensors []safetensors.Tensor
		for _, x := range ts {
			tensors = append(tensors, x.st)
			wm[x.st.Name] = shard
		}
		b, err := safetensors.Marshal(map[string]string{"format": "pt"}, tensors)
		if err != nil {
			t.Fatal(err)
		}
		name := shard
		if single {
			name = SingleFile
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !single {
		writeJSON(t, filepath.Join(dir, IndexFile), map[string]any{"metadata": map[string]any{"total_size": 1}, "weight_map": wm})
	}
	return dir
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantError checks that err is an *Error naming the checkpoint, the file,
// the tensor and a rule containing ruleWant, in one line.
func wantError(t testing.TB, err error, dir, file, tensor, ruleWant string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *checkpoint.Error", err, err)
	}
	if e.Checkpoint != dir || e.File != file || e.Tensor != tensor || !strings.Contains(e.Rule, ruleWant) {
		t.Fatalf("got Error{Checkpoint: %q, File: %q, Tensor: %q, Rule: %q}\nwant %q, %q, %q, rule containing %q",
			e.Checkpoint, e.File, e.Tensor, e.Rule, dir, file, tensor, ruleWant)
	}
	msg := err.Error()
	for _, s := range []string{dir, file, tensor, ruleWant} {
		if !strings.Contains(msg, s) {
			t.Fatalf("message %q does not name %q", msg, s)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Fatalf("message %q is not one line", msg)
	}
}

// checkWeights compares w with the fixture's values for its layer.
func checkWeights(t *testing.T, fx *fixture, w *IndexerWeights) {
	t.Helper()
	p := layerPrefix(w.Layer)
	if w.Heads != tH || w.HeadDim != tD || w.Hidden != tHidden || w.QLoRARank != tQLoRA {
		t.Errorf("dims %d %d %d %d", w.Heads, w.HeadDim, w.Hidden, w.QLoRARank)
	}
	for _, c := range []struct {
		name string
		got  []float32
	}{
		{nameWqB, w.WqB}, {nameWk, w.Wk}, {nameKNormWeight, w.KNormWeight},
		{nameKNormBias, w.KNormBias}, {nameWeightsProj, w.WeightsProj},
	} {
		spec, _ := fx.find(p + c.name)
		if !slices.Equal(c.got, spec.want) {
			for i := range c.got {
				if c.got[i] != spec.want[i] {
					t.Fatalf("%s%s element %d = %v, want %v", p, c.name, i, c.got[i], spec.want[i])
				}
			}
			t.Fatalf("%s%s: %d values, want %d", p, c.name, len(c.got), len(spec.want))
		}
	}
	if len(w.Sources) != 5 {
		t.Fatalf("sources %+v", w.Sources)
	}
}

func TestIndexer(t *testing.T) {
	for _, block := range [][2]int{{128, 128}, {3, 64}} {
		t.Run(strconv.Itoa(block[0])+"x"+strconv.Itoa(block[1]), func(t *testing.T) {
			fx := newFixture(block)
			dir := fx.write(t, false)
			c, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Dir() != dir || len(c.OpenShards()) != 0 {
				t.Errorf("dir %q, shards %v open before any read", c.Dir(), c.OpenShards())
			}
			if got := c.IndexerLayers(); !slices.Equal(got, []int{0, 1}) {
				t.Errorf("IndexerLayers = %v", got)
			}
			w0, err := c.Indexer(0)
			if err != nil {
				t.Fatal(err)
			}
			checkWeights(t, fx, w0)
			if got := c.OpenShards(); !slices.Equal(got, []string{"model-00001-of-00004.safetensors"}) {
				t.Errorf("after layer 0, open shards %v", got)
			}
			src := w0.Sources[0]
			if src.Name != layerPrefix(0)+nameWqB || src.DType != safetensors.F8E4M3 || src.Scale != src.Name+"_scale_inv" ||
				src.Shard != "model-00001-of-00004.safetensors" || !slices.Equal(src.Shape, []int{tH * tD, tQLoRA}) {
				t.Errorf("source %+v", src)
			}
			if w0.Sources[1].Scale != "" || w0.Sources[1].DType != safetensors.BF16 {
				t.Errorf("source %+v", w0.Sources[1])
			}
			w1, err := c.Indexer(1)
			if err != nil {
				t.Fatal(err)
			}
			checkWeights(t, fx, w1)
			if got := c.OpenShards(); len(got) != 2 {
				t.Errorf("after layer 1, open shards %v", got)
			}
			// The scale of layer 1's FP8 wk is in another shard than the weight.
			if s := w1.Sources[1]; s.DType != safetensors.F8E4M3 || s.Shard != "model-00002-of-00004.safetensors" {
				t.Errorf("source %+v", s)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := c.Indexer(0); err == nil || !strings.Contains(err.Error(), "closed") {
				t.Errorf("Indexer after Close: %v", err)
			}
		})
	}
}

// TestIndexerReadsOnlyItsTensors corrupts everything the indexer does not
// need — a shard that is not even safetensors, the data of another shard,
// unrelated tensors' bytes in the indexer's own shards — and still loads.
func TestIndexerReadsOnlyItsTensors(t *testing.T) {
	fx := newFixture([2]int{128, 128})
	dir := fx.write(t, false)
	// Shard 4: garbage from the first byte.
	if err := os.WriteFile(filepath.Join(dir, "model-00004-of-00004.safetensors"), []byte("not a safetensors file"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Shard 3 and the unrelated tensors of shards 1 and 2: header intact,
	// data all 0xFF (NaN in every float dtype).
	poison := func(shard string, names ...string) {
		path := filepath.Join(dir, shard)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		h, err := safetensors.ParseHeader(path, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			ti, _ := h.Info(n)
			for i := h.DataStart() + ti.Begin; i < h.DataStart()+ti.End; i++ {
				b[i] = 0xFF
			}
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	poison("model-00003-of-00004.safetensors", "model.embed_tokens.weight")
	poison("model-00001-of-00004.safetensors", "model.layers.0.mlp.down_proj.weight")
	poison("model-00002-of-00004.safetensors", "model.layers.1.self_attn.q_b_proj.weight")

	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, l := range []int{0, 1} {
		w, err := c.Indexer(l)
		if err != nil {
			t.Fatalf("layer %d: %v", l, err)
		}
		checkWeights(t, fx, w)
	}
	if got := c.OpenShards(); slices.Contains(got, "model-00003-of-00004.safetensors") || slices.Contains(got, "model-00004-of-00004.safetensors") {
		t.Errorf("opened unrelated shards: %v", got)
	}
}

func TestSingleFile(t *testing.T) {
	fx := newFixture([2]int{128, 128})
	var all []tensorSpec
	for _, ts := range fx.shards {
		all = append(all, ts...)
	}
	fx.shards = map[string][]tensorSpec{SingleFile: all}
	dir := fx.write(t, true)
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if s, ok := c.Shard(layerPrefix(0) + nameWk); !ok || s != SingleFile || len(c.TensorNames()) != len(all) {
		t.Errorf("shard %q %v, %d names", s, ok, len(c.TensorNames()))
	}
	for _, l := range []int{0, 1} {
		w, err := c.Indexer(l)
		if err != nil {
			t.Fatal(err)
		}
		checkWeights(t, fx, w)
	}
}

// TestIndexerErrors covers every rule of Indexer.
func TestIndexerErrors(t *testing.T) {
	p0, p1 := layerPrefix(0), layerPrefix(1)
	s1, s2 := "model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors"
	cases := []struct {
		name               string
		edit               func(fx *fixture)
		layer              int
		file, tensor, rule string
	}{
		{"no indexer at all", func(fx *fixture) {
			var names []string
			for _, ts := range fx.shards {
				for _, x := range ts {
					if strings.Contains(x.st.Name, ".indexer.") {
						names = append(names, x.st.Name)
					}
				}
			}
			for _, n := range names {
				fx.remove(n)
			}
		}, 0, "", "", "checkpoint has no indexer tensors: not a DSA model?"},
		{"other naming", func(fx *fixture) {
			for _, ts := range fx.shards {
				for i := range ts {
					ts[i].st.Name = strings.Replace(ts[i].st.Name, "model.layers.", "layers.", 1)
					ts[i].st.Name = strings.Replace(ts[i].st.Name, ".self_attn.", ".attn.", 1)
				}
			}
		}, 0, "", "", "no indexer tensors named model.layers.{i}.self_attn.indexer.* (but has layers.0.attn.indexer."},
		{"not a DSA config", func(fx *fixture) { delete(fx.config, "index_n_heads") },
			0, ConfigFile, "", "has no positive index_n_heads: not a DSA model"},
		{"odd rope dims", func(fx *fixture) { fx.config["qk_rope_head_dim"] = 3 },
			0, ConfigFile, "", "qk_rope_head_dim = 3 must be even"},
		{"layer past the end", nil, 4, "", "", "layer 4 is outside [0, num_hidden_layers = 4)"},
		{"negative layer", nil, -1, "", "", "layer -1 is outside"},
		{"missing layer", nil, 2, "", "", "layer 2 has no indexer tensors (model.layers.2.self_attn.indexer.*); layers with an indexer: 0-1"},
		{"shared layer", func(fx *fixture) { fx.config["indexer_types"] = []string{"full", "full", "shared", "shared"} },
			3, "", "", `layer 3 has no indexer of its own: its indexer type is "shared" (it reuses the top-k of layer 1); pick a full layer (0-1)`},
		{"shared layer with tensors", func(fx *fixture) { fx.config["indexer_types"] = []string{"full", "shared", "full", "full"} },
			1, "", "", `layer 1 has no indexer of its own: its indexer type is "shared" (it reuses the top-k of layer 0); pick a full layer (0)`},
		{"one tensor missing", func(fx *fixture) { fx.remove(p0 + nameKNormBias) },
			0, "", p0 + nameKNormBias, "missing (layer 0 has wq_b.weight, wk.weight, k_norm.weight, weights_proj.weight but not k_norm.bias)"},
		{"heads do not match", func(fx *fixture) { fx.config["index_n_heads"] = 3 },
			0, s1, p0 + nameWqB, "shape [16 136] does not match the config: want [24 136] (index_n_heads × index_head_dim, q_lora_rank)"},
		{"hidden does not match wk", func(fx *fixture) { fx.config["hidden_size"] = 256 },
			0, s1, p0 + nameWk, "shape [8 200] does not match the config: want [8 256] (index_head_dim, hidden_size)"},
		{"norm dim", func(fx *fixture) {
			x, _ := fx.find(p1 + nameKNormBias)
			x.st.Shape = []int{4, 2}
		}, 1, s2, p1 + nameKNormBias, "shape [4 2] does not match the config: want [8]"},
		{"scale shape", func(fx *fixture) {
			x, _ := fx.find(p0 + nameWqB + scaleSuffix)
			x.st.Shape = []int{2, 1}
		}, 0, s1, p0 + nameWqB + scaleSuffix, "shape [2 1] does not match its weight " + p0 + nameWqB + " of shape [16 136] in 128×128 blocks: want [1 2]"},
		{"fp8 without scale", func(fx *fixture) { fx.remove(p1 + nameWk + scaleSuffix) },
			1, s2, p1 + nameWk, "is F8_E4M3 but the checkpoint has no " + p1 + nameWk + scaleSuffix},
		{"scale next to bf16", func(fx *fixture) {
			x, _ := fx.find(p0 + nameWqB + scaleSuffix)
			y := *x
			y.st.Name = p0 + nameWk + scaleSuffix
			fx.shards[s1] = append(fx.shards[s1], y)
		}, 0, s1, p0 + nameWk + scaleSuffix, "present but " + p0 + nameWk + " is BF16, not F8_E4M3"},
		{"unsupported dtype", func(fx *fixture) {
			x, _ := fx.find(p0 + nameWeightsProj)
			x.st.DType, x.st.Data = "U8", x.st.Data[:tH*tHidden]
		}, 0, s1, p0 + nameWeightsProj, "dtype U8 is not supported here"},
		{"fp8 norm", func(fx *fixture) {
			x, _ := fx.find(p0 + nameKNormWeight)
			x.st.DType, x.st.Data = safetensors.F8E4M3, x.st.Data[:tD]
		}, 0, s1, p0 + nameKNormWeight, "dtype F8_E4M3 is not supported here"},
		{"NaN in fp8", func(fx *fixture) {
			x, _ := fx.find(p0 + nameWqB)
			x.st.Data[tQLoRA+130] = 0x7F
		}, 0, s1, p0 + nameWqB, "element [1 130] is NaN"},
		{"NaN in bf16", func(fx *fixture) {
			x, _ := fx.find(p1 + nameWqB)
			binary.LittleEndian.PutUint16(x.st.Data[2*5:], 0x7FC0)
		}, 1, s2, p1 + nameWqB, "element [0 5] is NaN"},
		{"negative scale", func(fx *fixture) {
			x, _ := fx.find(p1 + nameWk + scaleSuffix)
			binary.LittleEndian.PutUint32(x.st.Data[4:], math.Float32bits(-1))
		}, 1, s1, p1 + nameWk + scaleSuffix, "scale at [0 1] is -1; scales must be ≥ 0"},
		{"overflowing scale", func(fx *fixture) {
			x, _ := fx.find(p1 + nameWk + scaleSuffix)
			binary.LittleEndian.PutUint32(x.st.Data[4:], math.Float32bits(3e38))
			y, _ := fx.find(p1 + nameWk)
			for i := range tD { // the block of scale [0 1]: columns 128..199
				clear(y.st.Data[i*tHidden+128 : (i+1)*tHidden])
			}
			y.st.Data[3*tHidden+150] = 0x7E // 448
		}, 1, s2, p1 + nameWk, "element [3 150] = 448 × scale 3e+38 overflows float32"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fx := newFixture([2]int{128, 128})
			if c.edit != nil {
				c.edit(fx)
			}
			dir := fx.write(t, false)
			ck, err := Open(dir)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer ck.Close()
			_, err = ck.Indexer(c.layer)
			wantError(t, err, dir, c.file, c.tensor, c.rule)
		})
	}
}

// TestShardErrors covers broken or lying shards and weight maps.
func TestShardErrors(t *testing.T) {
	p0 := layerPrefix(0)
	s1 := "model-00001-of-00004.safetensors"
	t.Run("tensor not in its shard", func(t *testing.T) {
		fx := newFixture([2]int{128, 128})
		dir := fx.write(t, false)
		var idx map[string]any
		b, _ := os.ReadFile(filepath.Join(dir, IndexFile))
		json.Unmarshal(b, &idx)
		idx["weight_map"].(map[string]any)[p0+nameWk] = "model-00003-of-00004.safetensors"
		writeJSON(t, filepath.Join(dir, IndexFile), idx)
		c, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Indexer(0)
		wantError(t, err, dir, "model-00003-of-00004.safetensors", p0+nameWk, "listed in model.safetensors.index.json but not in the shard")
	})
	t.Run("broken shard", func(t *testing.T) {
		fx := newFixture([2]int{128, 128})
		dir := fx.write(t, false)
		path := filepath.Join(dir, s1)
		b, _ := os.ReadFile(path)
		if err := os.WriteFile(path, b[:len(b)-1], 0o644); err != nil { // truncated: the last tensor runs past the end
			t.Fatal(err)
		}
		c, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Indexer(0)
		var e *Error
		if !errors.As(err, &e) || e.File != s1 || !strings.Contains(e.Rule, "run past the end") {
			t.Fatalf("err = %v", err)
		}
		var se *safetensors.Error
		if !errors.As(err, &se) {
			t.Error("does not unwrap to the *safetensors.Error")
		}
	})
	t.Run("missing shard", func(t *testing.T) {
		fx := newFixture([2]int{128, 128})
		dir := fx.write(t, false)
		os.Remove(filepath.Join(dir, s1))
		c, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Indexer(0)
		wantError(t, err, dir, s1, "", "open: no such file or directory")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Error("does not unwrap to ErrNotExist")
		}
	})
}

// TestOpenErrors covers config.json and the index.
func TestOpenErrors(t *testing.T) {
	write := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	okConfig := `{"model_type": "deepseek_v32", "hidden_size": 8}`
	cases := []struct {
		name       string
		files      map[string]string
		file, rule string
	}{
		{"no config", map[string]string{IndexFile: `{}`}, ConfigFile, "open: no such file or directory"},
		{"config not json", map[string]string{ConfigFile: `{"a": `}, ConfigFile, "is not a JSON object"},
		{"config array", map[string]string{ConfigFile: `[1]`}, ConfigFile, "is not a JSON object"},
		{"config trailing", map[string]string{ConfigFile: `{} {}`}, ConfigFile, "trailing data"},
		{"bad int", map[string]string{ConfigFile: `{"hidden_size": "7168"}`}, ConfigFile, `key "hidden_size" is "7168", not a non-negative integer`},
		{"fractional int", map[string]string{ConfigFile: `{"index_n_heads": 6.5}`}, ConfigFile, `key "index_n_heads" is 6.5`},
		{"bad float", map[string]string{ConfigFile: `{"rope_theta": "x"}`}, ConfigFile, `key "rope_theta" is "x", not a number`},
		{"bad nested", map[string]string{ConfigFile: `{"rope_scaling": {"type": "yarn", "factor": [40]}}`}, ConfigFile, `key "rope_scaling.factor" is [40]`},
		{"bad interleave", map[string]string{ConfigFile: `{"indexer_rope_interleave": "yes"}`}, ConfigFile, `key "indexer_rope_interleave" is "yes", not true or false`},
		{"bad indexer type", map[string]string{ConfigFile: `{"num_hidden_layers": 2, "indexer_types": ["full", "half"]}`}, ConfigFile, `indexer type of layer 1 is "half"`},
		{"short indexer types", map[string]string{ConfigFile: `{"num_hidden_layers": 3, "indexer_types": ["full", "shared"]}`}, ConfigFile, "indexer types list 2 layers, fewer than num_hidden_layers = 3"},
		{"bad pattern", map[string]string{ConfigFile: `{"num_hidden_layers": 2, "index_topk_pattern": "FX"}`}, ConfigFile, `index_topk_pattern" is "FX"`},
		{"bad block", map[string]string{ConfigFile: `{"quantization_config": {"weight_block_size": [128]}}`}, ConfigFile, "not a pair [out, in]"},
		{"no weights", map[string]string{ConfigFile: okConfig}, "", "has neither model.safetensors.index.json nor model.safetensors"},
		{"index not json", map[string]string{ConfigFile: okConfig, IndexFile: `{`}, IndexFile, "is not a JSON object with a weight_map"},
		{"index empty", map[string]string{ConfigFile: okConfig, IndexFile: `{"metadata": {}}`}, IndexFile, "has no weight_map"},
		{"index entry", map[string]string{ConfigFile: okConfig, IndexFile: `{"weight_map": {"a": 3}}`}, IndexFile, "weight_map entry is 3, not a file name"},
		{"index escapes", map[string]string{ConfigFile: okConfig, IndexFile: `{"weight_map": {"a": "../x.safetensors"}}`}, IndexFile, `shard "../x.safetensors" is not a file inside the checkpoint directory`},
		{"index absolute", map[string]string{ConfigFile: okConfig, IndexFile: `{"weight_map": {"a": "/etc/x.safetensors"}}`}, IndexFile, "is not a file inside"},
		{"broken single file", map[string]string{ConfigFile: okConfig, SingleFile: "xx"}, SingleFile, "file is 2 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := write(t, c.files)
			_, err := Open(dir)
			tensor := ""
			if strings.HasPrefix(c.name, "index entry") || strings.HasPrefix(c.name, "index escapes") || strings.HasPrefix(c.name, "index absolute") {
				tensor = "a"
			}
			wantError(t, err, dir, c.file, tensor, c.rule)
		})
	}
	t.Run("missing dir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nope")
		_, err := Open(dir)
		wantError(t, err, dir, "", "", "stat: no such file or directory")
	})
	t.Run("not a dir", func(t *testing.T) {
		dir := write(t, map[string]string{"f": "x"})
		path := filepath.Join(dir, "f")
		_, err := Open(path)
		wantError(t, err, path, "", "", "is not a directory")
	})
}

// TestConcurrent reads layers from several goroutines at once (run with
// -race): shards are mapped once and shared.
func TestConcurrent(t *testing.T) {
	fx := newFixture([2]int{128, 128})
	c, err := Open(fx.write(t, false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			_, err := c.Indexer(i % 2)
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := c.OpenShards(); len(got) != 2 {
		t.Errorf("open shards %v", got)
	}
}
