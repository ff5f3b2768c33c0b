//go:build cuda

package kernels

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"gorgonia.org/cu"

	"github.com/misabench/misabench/indexer"
)

// Kernel benchmarks at the prefill target shape of research/kernels.md §0.2
// (1024 query rows at the end of a 65536-key sequence, H 64, D 128, k 2048),
// timed with CUDA events after warm-up: the median of 20 runs, reported as
// ns/op plus ms, min/max and the achieved rate. Run with -test.benchtime=1x
// (each benchmark times its own repetitions).

const (
	bH, bD, bN, bRows, bK = 64, 128, 65536, 1024, 2048
	bHeads                = 8
	benchWarm, benchReps  = 3, 20
)

// benchLayer is one prefill layer resident on the device, with the DSA
// logits and reference sets computed once.
type benchLayer struct {
	in                            *indexer.Input
	q, k, w, pos, lens, heads     buffer
	all, sub, ref, refCnt, contrb buffer
	score, own, pooled, pooledH   buffer
	bs, nbLens, mass              buffer
	ld, maxVis, nbW               int
	pairs                         float64 // Σ visible keys over rows
}

var (
	benchOnce sync.Once
	bench     *benchLayer
	benchErr  error
)

func benchInput() *indexer.Input {
	rng := rand.New(rand.NewPCG(2026, 11))
	in := randomInput(rng, bH, bD, bN, bRows, bK, "normal")
	for t := range in.QPos {
		in.QPos[t] = int64(bN - bRows + t) // the last chunk of a causal prefill
	}
	return in
}

func getBench(b *testing.B) *benchLayer {
	b.Helper()
	g := testGPU(b)
	benchOnce.Do(func() {
		in := benchInput()
		bl := &benchLayer{in: in}
		bl.maxVis = bN
		bl.ld = bN
		bl.nbW = bN / 128
		for t := range in.QPos {
			bl.pairs += float64(in.Visible(t))
		}
		benchErr = g.d.do(func() error {
			d := g.d
			a := &arena{} // freed with the context at exit
			var err error
			al := func(n int64) buffer {
				if err != nil {
					return buffer{}
				}
				var bf buffer
				bf, err = a.alloc(n, "benchmark")
				return bf
			}
			bl.q, bl.k, bl.w = al(int64(len(in.Q))*4), al(int64(len(in.K))*4), al(int64(len(in.W))*4)
			bl.pos, bl.lens = al(bRows*8), al(bRows*4)
			bl.heads = al(bRows * bHeads * 4)
			bl.all, bl.sub = al(int64(bRows)*bN*4), al(int64(bRows)*bN*4)
			bl.ref, bl.refCnt, bl.contrb = al(bRows*bK*4), al(bRows*4), al(bRows*bH*8)
			bl.score, bl.own = al(bRows*bH*8), al(bRows*bD*4)
			bl.pooled, bl.pooledH = al(bN/1024*bD*4), al(bN/128*bD*4)
			bl.bs, bl.nbLens, bl.mass = al(int64(bRows)*int64(bl.nbW)*4), al(bRows*4), al(bRows*8)
			if err != nil {
				return err
			}
			lens := make([]int32, bRows)
			nbl := make([]int32, bRows)
			heads := make([]int32, bRows*bHeads)
			rng := rand.New(rand.NewPCG(3, 3))
			for t := range lens {
				lens[t] = int32(in.Visible(t))
				nbl[t] = int32(in.QPos[t]/128 + 1)
				hs := rng.Perm(bH)[:bHeads]
				slices.Sort(hs)
				for j, h := range hs {
					heads[t*bHeads+j] = int32(h)
				}
			}
			for _, e := range []error{upload(bl.q, in.Q), upload(bl.k, in.K), upload(bl.w, in.W), upload(bl.pos, in.QPos),
				upload(bl.lens, lens), upload(bl.nbLens, nbl), upload(bl.heads, heads)} {
				if e != nil {
					return e
				}
			}
			for _, f := range []func() error{
				func() error {
					return d.logits(bl.q, bl.k, bl.w, bl.pos, buffer{}, bH, bH, bD, bN, 0, bRows, bl.maxVis, bl.ld, bl.all)
				},
				func() error { return d.topk(bl.all, bl.ld, buffer{}, 0, bl.lens, bRows, bK, bl.ref, bK, bl.refCnt) },
				func() error { return d.poolFull(bl.k, bN, bD, 1024, bl.pooled) },
				func() error { return d.poolFull(bl.k, bN, bD, 128, bl.pooledH) },
				func() error { return d.poolOwn(bl.k, bl.pos, 0, bRows, bN, bD, 128, false, bl.own) },
				func() error {
					return d.headContrib(bl.q, bl.k, bl.w, 0, bRows, bH, bD, bl.ref, bK, bl.refCnt, bl.contrb)
				},
			} {
				if err := f(); err != nil {
					return err
				}
			}
			return nil
		})
		bench = bl
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return bench
}

// timeKernel times f with CUDA events and reports the median and rates.
func timeKernel(b *testing.B, flops, bytes float64, f func(d *device) error) {
	b.Helper()
	g := testGPU(b)
	var ms []float64
	err := g.d.do(func() error {
		var err error
		ms, err = g.d.timeEvents(benchWarm, benchReps, func() error { return f(g.d) })
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	slices.Sort(ms)
	med := ms[len(ms)/2]
	b.ReportMetric(med*1e6, "ns/op")
	b.ReportMetric(med, "ms")
	b.ReportMetric(ms[0], "min-ms")
	b.ReportMetric(ms[len(ms)-1], "max-ms")
	if flops > 0 {
		b.ReportMetric(flops/(med*1e-3)/1e12, "TFLOP/s")
	}
	if bytes > 0 {
		b.ReportMetric(bytes/(med*1e-3)/1e9, "GB/s")
	}
}

// BenchmarkCopy measures the device-to-device copy ceiling (bytes read +
// written).
func BenchmarkCopy(b *testing.B) {
	g := testGPU(b)
	const n = 1 << 30
	var src, dst buffer
	a := &arena{}
	err := g.d.do(func() error {
		var err error
		if src, err = a.alloc(n, "copy source"); err != nil {
			return err
		}
		if dst, err = a.alloc(n, "copy destination"); err != nil {
			return err
		}
		return poison(src, 0x3f800000)
	})
	if err != nil {
		b.Fatal(err)
	}
	defer g.d.do(func() error { a.free(); return nil })
	timeKernel(b, 0, 2*n, func(*device) error {
		if err := cu.MemcpyDtoD(dst.p, src.p, n); err != nil {
			return fmt.Errorf("copy: %v", err)
		}
		return nil
	})
}

// logitsVersions runs one sub-benchmark per logits kernel version
// (v1: 4 keys per thread, v2: 8).
func logitsVersions(b *testing.B, f func(b *testing.B)) {
	g := testGPU(b)
	for _, v := range []struct {
		name string
		kpt  int
	}{{"v1", 4}, {"v2", 8}} {
		b.Run(v.name, func(b *testing.B) {
			g.d.forceKPT = v.kpt
			defer func() { g.d.forceKPT = 0 }()
			f(b)
		})
	}
}

func BenchmarkLogitsDSA(b *testing.B) {
	bl := getBench(b)
	logitsVersions(b, func(b *testing.B) {
		timeKernel(b, 2*bH*bD*bl.pairs, float64(bRows)*bN*4, func(d *device) error {
			return d.logits(bl.q, bl.k, bl.w, bl.pos, buffer{}, bH, bH, bD, bN, 0, bRows, bl.maxVis, bl.ld, bl.all)
		})
	})
}

func BenchmarkLogitsMISA8(b *testing.B) {
	bl := getBench(b)
	logitsVersions(b, func(b *testing.B) {
		timeKernel(b, 2*bHeads*bD*bl.pairs, float64(bRows)*bN*4, func(d *device) error {
			return d.logits(bl.q, bl.k, bl.w, bl.pos, bl.heads, bHeads, bH, bD, bN, 0, bRows, bl.maxVis, bl.ld, bl.sub)
		})
	})
}

func BenchmarkTopK2048(b *testing.B) {
	bl := getBench(b)
	timeKernel(b, 0, bl.pairs*4, func(d *device) error {
		return d.topk(bl.all, bl.ld, buffer{}, 0, bl.lens, bRows, bK, bl.ref, bK, bl.refCnt)
	})
}

func BenchmarkHeadContrib(b *testing.B) {
	bl := getBench(b)
	timeKernel(b, 2*bH*bD*float64(bRows*bK), 0, func(d *device) error {
		return d.headContrib(bl.q, bl.k, bl.w, 0, bRows, bH, bD, bl.ref, bK, bl.refCnt, bl.contrb)
	})
}

func BenchmarkRankHeads(b *testing.B) {
	bl := getBench(b)
	timeKernel(b, 0, 0, func(d *device) error {
		return d.rankHeads(bl.contrb, bRows, bH, bHeads, bl.heads, buffer{})
	})
}

func BenchmarkMass(b *testing.B) {
	bl := getBench(b)
	timeKernel(b, 0, 0, func(d *device) error {
		return d.mass(bl.all, bl.ld, bl.ref, bK, bl.refCnt, bRows, bl.mass)
	})
}

func BenchmarkPoolFull1024(b *testing.B) {
	bl := getBench(b)
	timeKernel(b, 0, bN*bD*4, func(d *device) error { return d.poolFull(bl.k, bN, bD, 1024, bl.pooled) })
}

func BenchmarkRouterPooled(b *testing.B) {
	bl := getBench(b)
	timeKernel(b, 2*bH*bD*float64(bRows)*(bN/1024), 0, func(d *device) error {
		return d.routerPooled(bl.q, bl.w, bl.pos, bl.pooled, bl.own, 0, bRows, bH, bD, 1024, bl.score)
	})
}

func BenchmarkHisaBlockScores(b *testing.B) {
	bl := getBench(b)
	timeKernel(b, 2*bH*bD*float64(bRows)*float64(bl.nbW), 0, func(d *device) error {
		return d.hisaBlockScores(bl.q, bl.w, bl.pos, bl.pooledH, bl.own, 0, bRows, bH, bD, 128, bl.nbW, bl.nbW, bl.bs)
	})
}

// BenchmarkRun times whole backend runs (wall clock, uploads and downloads
// included) on the benchmark layer: DSA alone and the default method set.
func BenchmarkRun(b *testing.B) {
	g := testGPU(b)
	in := benchInput()
	d := indexer.Defaults
	sets := map[string][]indexer.Method{
		"dsa": {{Kind: indexer.DSA}},
		"default": {
			{Kind: indexer.MISA, Heads: d.Heads, Block: d.Block, Router: indexer.RouterPooled, Pool: indexer.PoolCausal},
			{Kind: indexer.MISADagger, Heads: d.Heads, Block: d.Block, Router: indexer.RouterPooled, Pool: indexer.PoolCausal, Stage1: d.Stage1},
			{Kind: indexer.HISA, HisaBlock: d.HisaBlock, HisaBlocks: d.HisaBlocks},
		},
	}
	for _, name := range []string{"dsa", "default"} {
		b.Run(name, func(b *testing.B) {
			if _, err := g.Run(context.Background(), in, sets[name]); err != nil { // warm-up
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := g.Run(context.Background(), in, sets[name]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(bRows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
