//go:build cuda

package kernels

import (
	"context"
	"fmt"
	"testing"
)

// The FP8 pipelines obey the same identities as the CPU reference: MISA
// with h = H, MISA† with k1 ≥ L and HISA with every block select exactly
// DSA's set (same kernel, same accumulation order), in prefill and decode.
func TestCompareDSAIdentities(t *testing.T) {
	g := testGPU(t)
	kernels := []int{0} // the device's default logits kernel
	if g.d.info.Arch == "sm_90a" {
		kernels = append(kernels, 8, 12)
	}
	for _, lk := range kernels {
		for _, model := range []string{"deepseek-v3.2", "glm-5"} {
			t.Run(fmt.Sprintf("logits-kernel=%d/%s", lk, model), func(t *testing.T) { compareIdentities(t, g, lk, model) })
		}
	}
}

func compareIdentities(t *testing.T, g *GPU, lk int, model string) {
	H := map[string]int{"deepseek-v3.2": 64, "glm-5": 32}[model]
	rep, err := g.CompareDSA(context.Background(), CompareOptions{
		Models: []string{model}, Contexts: []int{6000}, Modes: []string{"prefill", "decode"},
		PrefillRows: 96, DecodeBatch: 8, Heads: H, Stage1: 1 << 20, HisaBlocks: 1 << 10,
		Warmup: 1, Reps: 2, LogitsKernel: lk,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Four methods in two modes, and the fused DSA and MISA where the
	// version 12 kernel runs (CompareDSA checks that they select exactly
	// what dsa and misa select).
	want := 8
	if g.d.info.Arch == "sm_90a" && (lk == 0 || lk == 12) {
		want = 12
	}
	if len(rep.Cases) != want {
		t.Fatalf("%d cases, want %d", len(rep.Cases), want)
	}
	for _, c := range rep.Cases {
		t.Logf("%s %s %s: %.3f ms, recall %.6f", model, c.Mode, c.Method, c.MedianMs, c.Recall)
		if c.Recall != 1 {
			t.Errorf("%s %s %s: recall %v, want exactly 1", model, c.Mode, c.Method, c.Recall)
		}
		if !(c.MedianMs > 0) || len(c.Stages) == 0 {
			t.Errorf("%s %s %s: no timing (%v ms, %d stages)", model, c.Mode, c.Method, c.MedianMs, len(c.Stages))
		}
	}
}

// With the paper's parameters the methods must select real subsets: recall
// strictly between 0 and 1 for MISA on the synthetic model, and DSA itself 1.
func TestCompareDSAPaperSettings(t *testing.T) {
	g := testGPU(t)
	rep, err := g.CompareDSA(context.Background(), CompareOptions{
		Models: []string{"deepseek-v3.2"}, Contexts: []int{16384}, Modes: []string{"prefill", "decode"},
		PrefillRows: 256, DecodeBatch: 16, Warmup: 1, Reps: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Cases {
		t.Logf("%s %s: %.3f ms (%v), recall %.4f, speedup %.2f", c.Mode, c.Method, c.MedianMs, c.Stages, c.Recall, c.Speedup)
		if c.Method == "dsa" && c.Recall != 1 {
			t.Errorf("%s dsa: recall %v", c.Mode, c.Recall)
		}
		if c.Method != "dsa" && !(c.Recall > 0 && c.Recall <= 1) {
			t.Errorf("%s %s: recall %v", c.Mode, c.Method, c.Recall)
		}
	}
}

// BenchmarkCompareDSA runs the comparison at the target shape
// (64K keys, both presets, prefill and decode) and logs every case; the
// command `misabench kernel --compare-dsa` is the tool for full sweeps.
func BenchmarkCompareDSA(b *testing.B) {
	g := testGPU(b)
	for b.Loop() {
		rep, err := g.CompareDSA(context.Background(), CompareOptions{
			Models: []string{"deepseek-v3.2", "glm-5"}, Contexts: []int{65536}, Modes: []string{"prefill", "decode"},
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s, copy %.0f GB/s", rep.Device.Name, rep.CopyGBs)
		for _, c := range rep.Cases {
			b.Logf("%-13s %-7s %6d %-26s %9.3f ms [%.3f–%.3f] %v logits %.0f TFLOP/s %.0f GB/s recall %.4f speedup %.2f",
				c.Model, c.Mode, c.Ctx, c.Method, c.MedianMs, c.MinMs, c.MaxMs, c.Stages, c.LogitsTFLOPs, c.GBs, c.Recall, c.Speedup)
		}
	}
}
