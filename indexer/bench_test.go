package indexer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkCPU reports the reference backend's throughput in GFLOP/s of the
// dense q·k work (2·H·D flops per visible key per row) at DeepSeek-V3.2's
// indexer shape, for DSA alone and for the default method set.
func BenchmarkCPU(b *testing.B) {
	const H, D, N, rows = 64, 128, 32768, 16
	rng := rand.New(rand.NewPCG(1, 2))
	in := randomInput(rng, H, D, N, rows, 2048, false)
	for t := range in.QPos {
		in.QPos[t] = int64(N - rows + t) // prefill rows at the end
	}
	var flops float64
	for t := range in.QPos {
		flops += 2 * H * D * float64(in.Visible(t))
	}
	sets := map[string][]Method{
		"dsa": {{Kind: DSA}},
		"default": {
			{Kind: MISA, Heads: 8, Block: 1024, Router: RouterPooled, Pool: PoolCausal},
			{Kind: MISADagger, Heads: 8, Block: 1024, Router: RouterPooled, Pool: PoolCausal, Stage1: 8192},
			{Kind: HISA, HisaBlock: 128, HisaBlocks: 64},
		},
	}
	for _, name := range []string{"dsa", "default"} {
		b.Run(fmt.Sprintf("%s/H=%d/N=%d", name, H, N), func(b *testing.B) {
			cpu := NewCPU(0)
			for b.Loop() {
				if _, err := cpu.Run(context.Background(), in, sets[name]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
