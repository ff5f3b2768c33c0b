//go:build cuda

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// toBF16 rounds f to bfloat16 (nearest even), as bits.
func toBF16(f float32) uint16 {
	b := math.Float32bits(f)
	return uint16((b + 0x7FFF + (b>>16)&1) >> 16)
}

func fromBF16(h uint16) float64 { return float64(math.Float32frombits(uint32(h) << 16)) }

// TestBF16LogitsMatchReference checks the bf16 tensor-core logits against a
// float64 reference of the same bf16 values, for every head count, in tile
// mode (ragged causal lengths, split keys) and single-query mode with one key
// sequence per row (decode), outputs poisoned first.
func TestBF16LogitsMatchReference(t *testing.T) {
	g := testGPU(t)
	if g.d.info.Arch != "sm_90a" {
		t.Skip("needs sm_90a")
	}
	rng := rand.New(rand.NewPCG(5, 9))
	for _, H := range []int{64, 32, 16, 8} {
		for _, single := range []bool{false, true} {
			t.Run(fmt.Sprintf("H=%d/single=%v", H, single), func(t *testing.T) {
				M, N := 3+rng.IntN(40), 700+rng.IntN(3000)
				seqs := 1
				if single {
					seqs = M
				}
				q := make([]uint16, M*H*128)
				k := make([]uint16, seqs*N*128)
				w := make([]float32, M*H)
				for i := range q {
					q[i] = toBF16(float32(rng.NormFloat64()))
				}
				for i := range k {
					k[i] = toBF16(float32(rng.NormFloat64() * float64(1+rng.IntN(3))))
				}
				for i := range w {
					w[i] = float32(rng.NormFloat64())
				}
				ke := make([]int32, M)
				for i := range ke {
					ke[i] = int32(1 + rng.IntN(N))
				}
				slices.Sort(ke)
				ke[M-1] = int32(N)
				ld := N + 5
				out := make([]float32, M*ld)
				err := g.d.do(func() error {
					var a arena
					defer a.free()
					bq, _ := a.alloc(int64(2*len(q)), "q")
					bk, _ := a.alloc(int64(2*len(k)), "k")
					bw, _ := a.alloc(int64(4*len(w)), "w")
					bke, _ := a.alloc(int64(4*len(ke)), "ke")
					bo, err := a.alloc(int64(4*len(out)), "out")
					if err != nil {
						return err
					}
					for _, e := range []error{upload(bq, q), upload(bk, k), upload(bw, w), upload(bke, ke), poison(bo, 0xFFFFFFFF)} {
						if e != nil {
							return e
						}
					}
					args := bf16Args{heads: H, single: single, q: bq, k: bk, w: bw, ke: bke, M: M, maxKe: N, ld: ld, split: 1024, out: bo}
					if single {
						args.rowsPerSeq, args.seqKeys = 1, N
					}
					if err := g.d.bf16Logits(args); err != nil {
						return err
					}
					return download(out, bo)
				})
				if err != nil {
					t.Fatal(err)
				}
				var worst float64
				for m := 0; m < M; m++ {
					seq := 0
					if single {
						seq = m
					}
					for s := 0; s < int(ke[m]); s++ {
						var v, mag float64
						for h := 0; h < H; h++ {
							var dot, adot float64
							for x := 0; x < 128; x++ {
								p := fromBF16(q[(m*H+h)*128+x]) * fromBF16(k[(seq*N+s)*128+x])
								dot += p
								adot += math.Abs(p)
							}
							v += float64(w[m*H+h]) * max(dot, 0)
							mag += math.Abs(float64(w[m*H+h])) * adot
						}
						got := float64(out[m*ld+s])
						if math.IsNaN(got) {
							t.Fatalf("row %d key %d: not written", m, s)
						}
						e := math.Abs(got - v)
						if e > 1e-6*mag+1e-30 { // fp32 accumulation: seen ≤ 5.5e-8 on the H200
							t.Fatalf("row %d key %d: %v, reference %v (magnitude %v)", m, s, got, v, mag)
						}
						if mag > 0 {
							worst = max(worst, e/mag)
						}
					}
				}
				t.Logf("H=%d single=%v: M=%d N=%d, worst error %.2e of the term magnitudes", H, single, M, N, worst)
			})
		}
	}
}

// BenchmarkBF16Logits times the bf16 logits kernel at the prefill shape
// (1024 rows at the end of 65536 keys) for 64 and 8 heads.
func BenchmarkBF16Logits(b *testing.B) {
	g := testGPU(b)
	if g.d.info.Arch != "sm_90a" {
		b.Skip("needs sm_90a")
	}
	const N, M = 65536, 1024
	rng := rand.New(rand.NewPCG(3, 3))
	k := make([]uint16, N*128)
	for i := range k {
		k[i] = toBF16(float32(rng.NormFloat64()))
	}
	ke := make([]int32, M)
	var keys float64
	for i := range ke {
		ke[i] = int32(N - M + i + 1)
		keys += float64(ke[i])
	}
	for _, heads := range []int{64, 8} {
		b.Run(fmt.Sprintf("h=%d", heads), func(b *testing.B) {
			q := make([]uint16, M*heads*128)
			for i := range q {
				q[i] = toBF16(float32(rng.NormFloat64()))
			}
			w := make([]float32, M*heads)
			for i := range w {
				w[i] = float32(rng.NormFloat64())
			}
			err := g.d.do(func() error {
				var a arena
				defer a.free()
				bq, _ := a.alloc(int64(2*len(q)), "q")
				bk, _ := a.alloc(int64(2*len(k)), "k")
				bw, _ := a.alloc(int64(4*len(w)), "w")
				bke, _ := a.alloc(int64(4*M), "ke")
				bo, err := a.alloc(int64(4*M*N), "out")
				if err != nil {
					return err
				}
				for _, e := range []error{upload(bq, q), upload(bk, k), upload(bw, w), upload(bke, ke)} {
					if e != nil {
						return e
					}
				}
				split := 0
				if heads == 8 {
					split = 16640
				}
				ms, err := g.d.timeEvents(3, 20, func() error {
					return g.d.bf16Logits(bf16Args{heads: heads, q: bq, k: bk, w: bw, ke: bke, M: M, maxKe: N, ld: N, split: split, out: bo})
				})
				if err != nil {
					return err
				}
				med := median(ms)
				b.ReportMetric(med, "ms")
				b.ReportMetric(slices.Min(ms), "min-ms")
				b.ReportMetric(slices.Max(ms), "max-ms")
				b.ReportMetric(2*float64(heads)*128*keys/(med*1e-3)/1e12, "TFLOP/s")
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}
