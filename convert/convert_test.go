package convert

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/misabench/misabench/checkpoint"
	"github.com/misabench/misabench/indexer"
	"github.com/misabench/misabench/safetensors"
	"github.com/misabench/misabench/trace"
)

const (
	tH, tD, tHidden, tQLoRA = 4, 16, 24, 12
	tN                      = 300
)

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func i64bytes(v []int64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return b
}

func writeFile(t *testing.T, path string, meta map[string]string, ts []safetensors.Tensor) {
	t.Helper()
	b, err := safetensors.Marshal(meta, ts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

type fixture struct {
	dir, acts string
	weights   map[int]*Weights
	hidden    map[int][]float32
	qr        map[int][]float32
	positions []int64
	qRows     []int64
}

// newFixture writes a tiny DeepSeek-V3.2-shaped checkpoint (2 layers, one
// shard, F32 weights) and a matching activation dump.
func newFixture(t *testing.T, modelType string) *fixture {
	rng := rand.New(rand.NewPCG(8, 9))
	fill := func(n int, s float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * s)
		}
		return v
	}
	f := &fixture{dir: t.TempDir(), weights: map[int]*Weights{}, hidden: map[int][]float32{}, qr: map[int][]float32{}}
	cfg := map[string]any{
		"model_type": modelType, "hidden_size": tHidden, "q_lora_rank": tQLoRA, "num_hidden_layers": 2,
		"num_attention_heads": 2, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "index_n_heads": tH,
		"index_head_dim": tD, "index_topk": 32, "max_position_embeddings": 163840, "rms_norm_eps": 1e-6,
		"rope_theta": 10000.0,
		"rope_scaling": map[string]any{"type": "yarn", "factor": 40.0, "original_max_position_embeddings": 4096,
			"beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0},
	}
	cb, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(f.dir, "config.json"), cb, 0o644); err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for l := 0; l < 2; l++ {
		w := &Weights{H: tH, D: tD, Hidden: tHidden, QLoRA: tQLoRA,
			WqB: fill(tH*tD*tQLoRA, 0.3), Wk: fill(tD*tHidden, 0.3), KNormW: fill(tD, 1), KNormB: fill(tD, 0.1),
			WProj: fill(tH*tHidden, 0.3)}
		f.weights[l] = w
		p := fmt.Sprintf("model.layers.%d.self_attn.indexer.", l)
		ts = append(ts,
			safetensors.Tensor{Name: p + "wq_b.weight", DType: safetensors.F32, Shape: []int{tH * tD, tQLoRA}, Data: f32bytes(w.WqB)},
			safetensors.Tensor{Name: p + "wk.weight", DType: safetensors.F32, Shape: []int{tD, tHidden}, Data: f32bytes(w.Wk)},
			safetensors.Tensor{Name: p + "k_norm.weight", DType: safetensors.F32, Shape: []int{tD}, Data: f32bytes(w.KNormW)},
			safetensors.Tensor{Name: p + "k_norm.bias", DType: safetensors.F32, Shape: []int{tD}, Data: f32bytes(w.KNormB)},
			safetensors.Tensor{Name: p + "weights_proj.weight", DType: safetensors.F32, Shape: []int{tH, tHidden}, Data: f32bytes(w.WProj)},
		)
	}
	writeFile(t, filepath.Join(f.dir, "model.safetensors"), map[string]string{"format": "pt"}, ts)

	f.positions = make([]int64, tN)
	for i := range f.positions {
		f.positions[i] = int64(i)
	}
	f.qRows = []int64{10, 100, 250, 299}
	ts = []safetensors.Tensor{
		{Name: "positions", DType: safetensors.I64, Shape: []int{tN}, Data: i64bytes(f.positions)},
		{Name: "q_rows", DType: safetensors.I64, Shape: []int{len(f.qRows)}, Data: i64bytes(f.qRows)},
	}
	for l := 0; l < 2; l++ {
		f.hidden[l], f.qr[l] = fill(tN*tHidden, 1), fill(len(f.qRows)*tQLoRA, 1)
		ts = append(ts,
			safetensors.Tensor{Name: fmt.Sprintf("layers.%d.hidden", l), DType: safetensors.F32, Shape: []int{tN, tHidden}, Data: f32bytes(f.hidden[l])},
			safetensors.Tensor{Name: fmt.Sprintf("layers.%d.qr", l), DType: safetensors.F32, Shape: []int{len(f.qRows), tQLoRA}, Data: f32bytes(f.qr[l])},
		)
	}
	f.acts = filepath.Join(t.TempDir(), "acts.safetensors")
	writeFile(t, f.acts, map[string]string{"format": ActivationsFormat, "model": modelName(modelType), "n_ctx": fmt.Sprint(tN),
		"layers": "0,1", "dataset": "unit", "needle": "[[40,48]]", "question": "[296,300]"}, ts)
	return f
}

// The trace holds exactly Project's output, and DSA on it selects the
// top-k of the indexer score computed directly from the weights.
func TestConvertEndToEnd(t *testing.T) {
	for _, mt := range []string{"deepseek_v32", "glm_moe_dsa"} {
		t.Run(mt, func(t *testing.T) {
			f := newFixture(t, mt)
			ck, err := checkpoint.Open(f.dir)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			out := filepath.Join(t.TempDir(), "t.safetensors")
			if err := Convert(context.Background(), ck, f.acts, out, Options{}); err != nil {
				t.Fatal(err)
			}
			tr, err := trace.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			m := tr.Meta()
			if m.Model != modelName(mt) || m.Heads != tH || m.HeadDim != tD || m.TopK != 32 || !slices.Equal(m.Layers, []int{0, 1}) ||
				m.Dataset != "unit" || len(m.Needle) != 1 || m.Question == nil {
				t.Fatalf("metadata %+v", m)
			}
			if !slices.Equal(tr.QPos(), f.qRows) {
				t.Fatalf("q_pos %v, want %v", tr.QPos(), f.qRows)
			}
			rope, _ := ropeOf(ck.Config)
			if rope.Interleaved != (mt == "glm_moe_dsa") {
				t.Errorf("%s: interleaved RoPE = %v", mt, rope.Interleaved)
			}
			for l := 0; l < 2; l++ {
				layer, err := tr.Layer(context.Background(), l)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := Project(Params{RoPE: rope, NormEps: checkpoint.KNormEps, Hadamard: true}, f.weights[l], f.hidden[l], f.qr[l], f.positions, f.qRows)
				if !slices.Equal(layer.Q, want.Q) || !slices.Equal(layer.K, want.K) || !slices.Equal(layer.W, want.W) {
					t.Fatalf("layer %d: trace differs from the projection", l)
				}
				// DSA on the trace against the score from the raw weights
				// (no Hadamard: it changes no dot product).
				raw, _ := Project(Params{RoPE: rope, NormEps: checkpoint.KNormEps}, f.weights[l], f.hidden[l], f.qr[l], f.positions, f.qRows)
				in := &indexer.Input{H: tH, D: tD, TopK: 32, N: tN, QPos: f.qRows, Q: layer.Q, K: layer.K, W: layer.W}
				res, err := indexer.NewCPU(1).Run(context.Background(), in, nil)
				if err != nil {
					t.Fatal(err)
				}
				for r, row := range f.qRows {
					score := func(s int) float64 {
						var v float64
						for h := 0; h < tH; h++ {
							v += float64(raw.W[r*tH+h]) * math.Max(0, dot(raw.Q[(r*tH+h)*tD:(r*tH+h+1)*tD], raw.K[s*tD:(s+1)*tD]))
						}
						return v
					}
					idx := make([]int, row+1)
					for s := range idx {
						idx[s] = s
					}
					slices.SortStableFunc(idx, func(a, b int) int {
						switch sa, sb := score(a), score(b); {
						case sa > sb:
							return -1
						case sa < sb:
							return 1
						}
						return 0
					})
					want := make([]int32, 0, 32)
					for _, s := range idx[:min(32, len(idx))] {
						want = append(want, int32(s))
					}
					slices.Sort(want)
					if got := res.Reference[r]; !slices.Equal(got, want) {
						t.Errorf("layer %d row %d: DSA on the trace %v, direct %v", l, r, got, want)
					}
				}
			}
		})
	}
}

func TestConvertFP8AndErrors(t *testing.T) {
	f := newFixture(t, "deepseek_v32")
	ck, err := checkpoint.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	out := filepath.Join(t.TempDir(), "t8.safetensors")
	if err := Convert(context.Background(), ck, f.acts, out, Options{Quant: "fp8", Layers: []int{1}}); err != nil {
		t.Fatal(err)
	}
	tr, err := trace.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tr.Meta().Layers, []int{1}) {
		t.Errorf("layers %v", tr.Meta().Layers)
	}
	var dtypes []string
	for _, ti := range tr.Tensors() {
		dtypes = append(dtypes, ti.Name+":"+string(ti.DType))
	}
	if !slices.Contains(dtypes, "layers.1.q:F8_E4M3") || !slices.Contains(dtypes, "layers.1.k_scale:F32") {
		t.Errorf("fp8 trace tensors %v", dtypes)
	}
	tr.Close()

	var fe *trace.FormatError
	bad := filepath.Join(t.TempDir(), "x.safetensors")
	if err := Convert(context.Background(), ck, f.acts, bad, Options{Layers: []int{5}}); !errors.As(err, &fe) || !strings.Contains(err.Error(), "not recorded") {
		t.Errorf("missing layer: %v", err)
	}
	if err := Convert(context.Background(), ck, f.acts, bad, Options{Quant: "int4"}); err == nil {
		t.Error("unknown quantisation accepted")
	}
	// A dump whose rows do not match.
	short := filepath.Join(t.TempDir(), "short.safetensors")
	writeFile(t, short, map[string]string{"format": ActivationsFormat, "model": "deepseek-v3.2", "n_ctx": "300", "layers": "0"},
		[]safetensors.Tensor{
			{Name: "positions", DType: safetensors.I64, Shape: []int{tN}, Data: i64bytes(f.positions)},
			{Name: "q_rows", DType: safetensors.I64, Shape: []int{len(f.qRows)}, Data: i64bytes(f.qRows)},
			{Name: "layers.0.hidden", DType: safetensors.F32, Shape: []int{tN - 1, tHidden}, Data: f32bytes(f.hidden[0][:(tN-1)*tHidden])},
			{Name: "layers.0.qr", DType: safetensors.F32, Shape: []int{len(f.qRows), tQLoRA}, Data: f32bytes(f.qr[0])},
		})
	if err := Convert(context.Background(), ck, short, bad, Options{}); !errors.As(err, &fe) || !strings.Contains(err.Error(), "layers.0.hidden") {
		t.Errorf("mismatched rows: %v", err)
	}
	// The wrong model.
	glm := filepath.Join(t.TempDir(), "glm.safetensors")
	writeFile(t, glm, map[string]string{"format": ActivationsFormat, "model": "glm-5", "n_ctx": "300", "layers": "0"},
		[]safetensors.Tensor{{Name: "positions", DType: safetensors.I64, Shape: []int{1}, Data: i64bytes([]int64{0})}})
	if err := Convert(context.Background(), ck, glm, bad, Options{}); !errors.As(err, &fe) || !strings.Contains(err.Error(), "glm-5") {
		t.Errorf("model mismatch: %v", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a failed conversion left %s behind", bad)
	}
}
