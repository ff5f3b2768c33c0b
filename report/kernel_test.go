package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/misabench/misabench/kernels"
)

// fakeCompare is a made-up CompareReport shaped like CompareDSA's: two
// models, both modes, five contexts, DSA and three methods per shape.
func fakeCompare() *kernels.CompareReport {
	r := &kernels.CompareReport{
		Device: kernels.DeviceInfo{
			Name: "NVIDIA H200", Major: 9, Arch: "sm_90a", MemoryBytes: 150_000_000_000,
			SMs: 132, L2Bytes: 60 << 20, Driver: "13.0", NVRTC: "13.0",
		},
		CopyGBs:      3900,
		TensorTFLOPs: 2000,
		Options: kernels.CompareOptions{
			Models: []string{"deepseek-v3.2", "glm-5"}, Contexts: []int{8192, 16384, 32768, 65536, 131072},
			Modes: []string{"prefill", "decode"}, PrefillRows: 1024, DecodeBatch: 64, TopK: 2048,
			Heads: 8, Block: 1024, Stage1: 8192, HisaBlock: 128, HisaBlocks: 64, Warmup: 3, Reps: 20, Seed: 1,
		},
	}
	methods := []string{"dsa", "misa(h=8,B=1024)", "misa†(h=8,B=1024,k1=8192)", "hisa(B=128,m=64)"}
	for _, model := range []string{"deepseek-v3.2", "glm-5"} {
		H := map[string]int{"deepseek-v3.2": 64, "glm-5": 32}[model]
		for _, mode := range []string{"prefill", "decode"} {
			rows := map[string]int{"prefill": 1024, "decode": 64}[mode]
			for i, n := range []int{8192, 16384, 32768, 65536, 131072} {
				dsa := float64(H) / 64 * float64(n) / 8192 * map[string]float64{"prefill": 1.6, "decode": 0.4}[mode]
				for j, m := range methods {
					// Made-up speedups that grow with context.
					s := 1.0
					if j > 0 {
						s = (1 + float64(i)*0.7) * float64(H) / 64 * []float64{0, 1.4, 0.9, 1.1}[j]
						if mode == "decode" {
							s *= 0.8
						}
						s = max(s, 0.4)
					}
					ms := dsa / s
					c := kernels.CaseResult{
						Model: model, H: H, Mode: mode, Ctx: n, Rows: rows, Method: m,
						MedianMs: ms, MinMs: ms * 0.97, MaxMs: ms * 1.08,
						LogitsTFLOPs: 400 + 50*float64(i), GBs: 1500 + 100*float64(j),
						Recall: 1 - 0.03*float64(j), Speedup: s, SpeedupBest: s / 1.1,
					}
					if j > 0 {
						c.Stages = append(c.Stages, kernels.Stage{Name: "pooling", Ms: ms * 0.05}, kernels.Stage{Name: "router", Ms: ms * 0.1})
					}
					c.Stages = append(c.Stages, kernels.Stage{Name: "logits", Ms: ms * 0.6}, kernels.Stage{Name: "topk", Ms: ms * 0.25})
					r.Cases = append(r.Cases, c)
				}
				if mode == "prefill" && n == 65536 {
					// A fused case whose checked run needed the fallback.
					ms := dsa / 4
					r.Cases = append(r.Cases, kernels.CaseResult{
						Model: model, H: H, Mode: mode, Ctx: n, Rows: rows, Method: "misa(h=8,B=1024)+fused",
						MedianMs: ms, MinMs: ms, MaxMs: ms, Recall: 0.97, Speedup: 4, SpeedupBest: 3.9, Fallbacks: 3,
						Stages: []kernels.Stage{{Name: "logits", Ms: ms / 2}},
					})
				}
			}
		}
	}
	return r
}

func TestKernelTable(t *testing.T) {
	var b bytes.Buffer
	if err := KernelTable(&b, fakeCompare()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(out, "\n")
	if want := "device 0: NVIDIA H200 (132 SMs, 139.7 GiB, sm_90a); measured device-to-device copy: 3900 GB/s; measured FP8 tensor rate: 2000 TFLOP/s"; lines[0] != want {
		t.Errorf("header line %q, want %q", lines[0], want)
	}
	for _, want := range []string{
		"model", "mode", "ctx", "median ms (min–max)", "pooling", "router", "logits", "topk",
		"logits TFLOP/s", "% tensor", "GB/s", "% copy", "recall", "speedup", "vs best DSA",
		"misa(h=8,B=1024)+fused [fallback: 3 rows]", "3.90×", "0.91×",
		"deepseek-v3.2", "glm-5", "prefill", "decode", "8K", "128K", "misa†(h=8,B=1024,k1=8192)",
		"1.600 (1.552–1.728)", // deepseek prefill 8K dsa
		"38%",                 // 1500 of 3900 GB/s
		"20%",                 // 400 of 2000 TFLOP/s
		"1.00×", "0.9700",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// DSA has no pooling or router stage: two dashes on each of its lines.
	dsaLines := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "│") && strings.Contains(l, " dsa ") {
			dsaLines++
			if strings.Count(l, "—") != 2 { // pooling and router; vs best DSA is set
				t.Errorf("dsa line without dashes for pooling and router: %q", l)
			}
		}
	}
	if dsaLines != 20 {
		t.Errorf("%d dsa lines, want 20", dsaLines)
	}

	// Unmeasured values print as dashes, not zeros or NaN.
	r := fakeCompare()
	r.CopyGBs, r.TensorTFLOPs = 0, 0
	r.Cases = r.Cases[:1]
	r.Cases[0].Speedup = math.NaN()
	r.Cases[0].LogitsTFLOPs = 0
	b.Reset()
	if err := KernelTable(&b, r); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); strings.Contains(out, "NaN") || !strings.Contains(out, "copy: —") {
		t.Errorf("table with unmeasured values:\n%s", out)
	}
	if err := KernelTable(&b, nil); err == nil {
		t.Error("nil report: no error")
	}
}

func TestKernelCSV(t *testing.T) {
	var b bytes.Buffer
	r := fakeCompare()
	if err := KernelCSV(&b, r); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+len(r.Cases) {
		t.Fatalf("%d records, want a header and %d", len(recs), len(r.Cases))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, h := range []string{"model", "heads", "mode", "ctx", "rows", "method", "median_ms", "min_ms", "max_ms",
		"pooling_ms", "router_ms", "logits_ms", "topk_ms", "logits_tflops", "tensor_pct", "gbs", "copy_pct", "recall", "speedup",
		"speedup_best_dsa", "fallback_rows"} {
		if _, ok := col[h]; !ok {
			t.Errorf("csv lacks column %q: %v", h, recs[0])
		}
	}
	dsa, misa := recs[1], recs[2]
	if dsa[col["method"]] != "dsa" || dsa[col["ctx"]] != "8192" || dsa[col["heads"]] != "64" || dsa[col["device"]] != "NVIDIA H200" {
		t.Errorf("first record: %v", dsa)
	}
	if dsa[col["pooling_ms"]] != "" || dsa[col["router_ms"]] != "" || dsa[col["logits_ms"]] == "" {
		t.Errorf("dsa stages: %v", dsa)
	}
	if dsa[col["tensor_pct"]] != "20" || dsa[col["copy_pct"]] == "" {
		t.Errorf("dsa shares of the measured ceilings: tensor %q, copy %q", dsa[col["tensor_pct"]], dsa[col["copy_pct"]])
	}
	if misa[col["pooling_ms"]] == "" || misa[col["speedup"]] != "1.4" || misa[col["fallback_rows"]] != "0" {
		t.Errorf("misa record: %v", misa)
	}
	if err := KernelCSV(&b, nil); err == nil {
		t.Error("nil report: no error")
	}
}

func TestKernelJSON(t *testing.T) {
	var b bytes.Buffer
	r := fakeCompare()
	r.Options.Progress = func(int, int) {} // not encoded
	if err := KernelJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var back kernels.CompareReport
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Cases) != len(r.Cases) || back.Device.Name != r.Device.Name || back.CopyGBs != r.CopyGBs || back.TensorTFLOPs != r.TensorTFLOPs ||
		back.Cases[5].Speedup != r.Cases[5].Speedup || len(back.Cases[5].Stages) != 4 {
		t.Errorf("round trip: %+v", back.Device)
	}
}

func TestSpeedupPlot(t *testing.T) {
	dir := t.TempDir()
	png, svg := filepath.Join(dir, "speedup.png"), filepath.Join(dir, "speedup.svg")
	if err := SpeedupPlot(fakeCompare(), png, svg); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(png)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 1000 || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("png: %d bytes, prefix %q", len(b), b[:min(8, len(b))])
	}
	b, err = os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"paper's H200 claim (MISA)", "8K", "128K", "deepseek-v3.2", "glm-5",
		"misa(h=8,B=1024), prefill", "hisa(B=128,m=64), decode", "NVIDIA H200"} {
		if !strings.Contains(s, want) && !strings.Contains(s, strings.ReplaceAll(want, "'", "&#39;")) {
			t.Errorf("svg lacks %q", want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d files in the output directory, want 2", len(entries))
	}

	// One model, one mode, one context still draws.
	r := fakeCompare()
	r.Cases = r.Cases[:4]
	if err := SpeedupPlot(r, png, ""); err != nil {
		t.Errorf("one shape: %v", err)
	}
	// Only DSA rows: nothing to plot.
	r.Cases = r.Cases[:1]
	if err := SpeedupPlot(r, png, ""); err == nil {
		t.Error("dsa only: no error")
	}
	if err := SpeedupPlot(fakeCompare(), "", ""); err == nil {
		t.Error("no paths: no error")
	}
}

func TestCtxLabelAndBytes(t *testing.T) {
	for n, want := range map[int]string{8192: "8K", 131072: "128K", 1 << 20: "1M", 6000: "6000", 1536: "1536"} {
		if got := CtxLabel(n); got != want {
			t.Errorf("CtxLabel(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{0: "—", 512: "512 B", 60 << 20: "60 MiB", 150_000_000_000: "139.7 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
