package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/misabench/misabench/indexer"
	"github.com/misabench/misabench/safetensors"
	"github.com/misabench/misabench/trace"
)

// convertFixture writes a one-layer DeepSeek-V3.2-shaped checkpoint (F32
// weights, one file) and a matching activation dump; it returns the
// checkpoint directory and the dump's path.
func convertFixture(t *testing.T) (ckDir, acts string) {
	t.Helper()
	const H, D, hidden, qlora, N = 2, 16, 24, 12, 40
	rng := rand.New(rand.NewPCG(21, 22))
	f32 := func(n int) []byte {
		b := make([]byte, 4*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(rng.NormFloat64()*0.3)))
		}
		return b
	}
	i64 := func(v []int64) []byte {
		b := make([]byte, 8*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
		}
		return b
	}
	write := func(path string, meta map[string]string, ts []safetensors.Tensor) {
		b, err := safetensors.Marshal(meta, ts)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ckDir = t.TempDir()
	cfg, _ := json.Marshal(map[string]any{
		"model_type": "deepseek_v32", "hidden_size": hidden, "q_lora_rank": qlora, "num_hidden_layers": 1,
		"num_attention_heads": 2, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "index_n_heads": H,
		"index_head_dim": D, "index_topk": 8, "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
	})
	if err := os.WriteFile(filepath.Join(ckDir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	p := "model.layers.0.self_attn.indexer."
	write(filepath.Join(ckDir, "model.safetensors"), map[string]string{"format": "pt"}, []safetensors.Tensor{
		{Name: p + "wq_b.weight", DType: safetensors.F32, Shape: []int{H * D, qlora}, Data: f32(H * D * qlora)},
		{Name: p + "wk.weight", DType: safetensors.F32, Shape: []int{D, hidden}, Data: f32(D * hidden)},
		{Name: p + "k_norm.weight", DType: safetensors.F32, Shape: []int{D}, Data: f32(D)},
		{Name: p + "k_norm.bias", DType: safetensors.F32, Shape: []int{D}, Data: f32(D)},
		{Name: p + "weights_proj.weight", DType: safetensors.F32, Shape: []int{H, hidden}, Data: f32(H * hidden)},
	})
	pos := make([]int64, N)
	for i := range pos {
		pos[i] = int64(i)
	}
	qRows := []int64{5, 20, 39}
	acts = filepath.Join(t.TempDir(), "acts.safetensors")
	write(acts, map[string]string{"format": "misabench.activations/v1", "model": "deepseek-v3.2", "n_ctx": fmt.Sprint(N), "layers": "0"},
		[]safetensors.Tensor{
			{Name: "positions", DType: safetensors.I64, Shape: []int{N}, Data: i64(pos)},
			{Name: "q_rows", DType: safetensors.I64, Shape: []int{len(qRows)}, Data: i64(qRows)},
			{Name: "layers.0.hidden", DType: safetensors.F32, Shape: []int{N, hidden}, Data: f32(N * hidden)},
			{Name: "layers.0.qr", DType: safetensors.F32, Shape: []int{len(qRows), qlora}, Data: f32(len(qRows) * qlora)},
		})
	return ckDir, acts
}

// fakeGPU is a backend that is a convert.Multiplier (as kernels.GPU is),
// summing in float64 in plain ascending order.
type fakeGPU struct {
	*indexer.CPU
	calls  int
	fail   error
	closed bool
}

func (f *fakeGPU) Name() string { return "fake-gpu" }
func (f *fakeGPU) Close() error { f.closed = true; return nil }

func (f *fakeGPU) MatMulT(y, x, a []float32, n, m, k int) error {
	f.calls++
	if f.fail != nil {
		return f.fail
	}
	for i := 0; i < n; i++ {
		for j := 0; j < m; j++ {
			var s float64
			for l := 0; l < k; l++ {
				s += float64(x[i*k+l]) * float64(a[j*k+l])
			}
			y[i*m+j] = float32(s)
		}
	}
	return nil
}

// trace convert honours --device: by default the CPU in a build without
// CUDA, silently; auto says it falls back; gpu is refused; a backend that
// multiplies (the GPU) computes the products, and its failure is exit 1.
func TestTraceConvertDevice(t *testing.T) {
	ck, acts := convertFixture(t)
	out := filepath.Join(t.TempDir(), "t.safetensors")
	base := []string{"trace", "convert", "--checkpoint", ck, "--activations", acts, "--out", out}

	// The default: the CPU, silently, in a build without CUDA; a CUDA
	// build takes the GPU when there is one.
	code, _, stderr := cli(t, base...)
	if code != 0 || !strings.Contains(stderr, "products on ") {
		t.Fatalf("default device: exit %d, stderr %q", code, stderr)
	}
	if !cudaBuild && (!strings.Contains(stderr, "products on cpu") || strings.Contains(stderr, "--device")) {
		t.Errorf("default device in a CPU-only build: stderr %q", stderr)
	}
	cpuTrace, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := cli(t, args(base, "--device", "cpu")...); code != 0 || !strings.Contains(stderr, "products on cpu") {
		t.Errorf("--device cpu: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := cli(t, args(base, "--device", "tpu")...); code != 2 || !strings.Contains(stderr, "unknown --device") {
		t.Errorf("--device tpu: exit %d, stderr %q", code, stderr)
	}
	if !cudaBuild {
		if code, _, stderr := cli(t, args(base, "--device", "auto")...); code != 0 || !strings.Contains(stderr, "built without CUDA, using the CPU") {
			t.Errorf("--device auto: exit %d, stderr %q", code, stderr)
		}
		if code, _, stderr := cli(t, args(base, "--device", "gpu")...); code != 2 || !strings.Contains(stderr, "without CUDA") {
			t.Errorf("--device gpu: exit %d, stderr %q", code, stderr)
		}
	}

	// A multiplying backend does the products, and is closed afterwards.
	g := &fakeGPU{CPU: indexer.NewCPU(1)}
	var gotDev string
	var buf bytes.Buffer
	opts := &TraceConvertOptions{Checkpoint: ck, Activations: acts, Out: out, Quant: "none", Device: "gpu", deviceGiven: true, Stderr: &buf,
		newBackend: func(dev string, _ int, _ io.Writer) (indexer.Backend, error) { gotDev = dev; return g, nil }}
	if err := runTraceConvert(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if gotDev != "gpu" || g.calls != 2 || !g.closed || !strings.Contains(buf.String(), "products on fake-gpu") {
		t.Errorf("device %q, %d calls, closed %v, stderr %q", gotDev, g.calls, g.closed, buf.String())
	}
	// Its sums differ from the CPU's in order only: the same trace to
	// within the last bits.
	a, err := trace.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cpuPath := filepath.Join(t.TempDir(), "cpu.safetensors")
	if err := os.WriteFile(cpuPath, cpuTrace, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := trace.Open(cpuPath)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	la, err := a.Layer(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.Layer(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2][]float32{"q": {la.Q, lb.Q}, "k": {la.K, lb.K}, "w": {la.W, lb.W}} {
		for i := range pair[0] {
			if d := math.Abs(float64(pair[0][i] - pair[1][i])); d > 1e-5*(1+math.Abs(float64(pair[1][i]))) {
				t.Fatalf("%s[%d]: %v through the multiplier, %v on the CPU", name, i, pair[0][i], pair[1][i])
			}
		}
	}

	// A device failure is exit 1, not bad input.
	g = &fakeGPU{CPU: indexer.NewCPU(1), fail: errors.New("kernels: out of GPU memory")}
	opts.newBackend = func(string, int, io.Writer) (indexer.Backend, error) { return g, nil }
	err = runTraceConvert(context.Background(), opts)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitFail || !strings.Contains(err.Error(), "out of GPU memory") || !g.closed {
		t.Errorf("failing device: error %v (closed %v), want exit 1", err, g.closed)
	}
}
