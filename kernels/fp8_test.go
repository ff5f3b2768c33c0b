//go:build cuda

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/misabench/misabench/trace"
)

// e4m3 decodes one E4M3 (fn) byte; the test inputs never hold NaN.
func e4m3(b byte) float64 {
	sign := 1.0
	if b&0x80 != 0 {
		sign = -1
	}
	e, m := int(b>>3)&0xF, float64(b&7)
	if e == 0 {
		return sign * m / 8 * math.Ldexp(1, -6)
	}
	return sign * (1 + m/8) * math.Ldexp(1, e-7)
}

// fp8Case is a random FP8 problem: q [M][H][128], k [N][128] with scales,
// w with the q scales folded in, as DeepSeek's indexer feeds the kernel.
type fp8Case struct {
	H, N, M int
	q8, k8  []byte
	ks, w   []float32
	ke      []int32
}

func newFP8Case(rng *rand.Rand, H, N, M int) *fp8Case {
	c := &fp8Case{H: H, N: N, M: M}
	qf := make([]float32, M*H*128)
	for i := range qf {
		qf[i] = float32(rng.NormFloat64())
	}
	kf := make([]float32, N*128)
	for i := range kf {
		kf[i] = float32(rng.NormFloat64()) * float32(1+rng.IntN(3))
	}
	c.q8, c.k8 = make([]byte, len(qf)), make([]byte, len(kf))
	qs := make([]float32, M*H)
	c.ks = make([]float32, N)
	trace.QuantizeE4M3(c.q8, qs, qf, 128)
	trace.QuantizeE4M3(c.k8, c.ks, kf, 128)
	c.w = make([]float32, M*H)
	for i := range c.w {
		c.w[i] = float32(rng.NormFloat64()) * qs[i]
	}
	c.ke = make([]int32, M)
	for i := range c.ke {
		c.ke[i] = int32(1 + rng.IntN(N))
	}
	slices.Sort(c.ke)
	c.ke[M-1] = int32(N)
	return c
}

// ref is the float64 logit of row m, key s, and the sum of the magnitudes
// of its terms (the scale for the tolerance).
func (c *fp8Case) ref(m, s int) (v, mag float64) {
	for h := 0; h < c.H; h++ {
		var dot, adot float64
		for x := 0; x < 128; x++ {
			p := e4m3(c.q8[(m*c.H+h)*128+x]) * e4m3(c.k8[s*128+x])
			dot += p
			adot += math.Abs(p)
		}
		v += float64(c.w[m*c.H+h]) * max(dot, 0)
		mag += math.Abs(float64(c.w[m*c.H+h])) * adot
	}
	return v * float64(c.ks[s]), mag * float64(c.ks[s])
}

// FP8 MMA keeps about 14 mantissa bits in its accumulator on Hopper
// (DeepSeek-V3 report); 2e-3 of the term magnitudes leaves room for that.
const fp8Tol = 2e-3

func TestFP8LogitsMatchReference(t *testing.T) {
	g := testGPU(t)
	rng := rand.New(rand.NewPCG(42, 7))
	versions := []int{3}
	if g.d.info.Arch == "sm_90a" {
		versions = append(versions, 4, 5, 53, 6, 60, 7, 8, 12)
	}
	defer func() { g.d.fp8Force, g.d.fp8NW = 0, 0 }()
	for _, v := range versions {
		modes := []string{"tile", "single", "kidx"}
		if v == 12 {
			// Version 12 pairs its stores where rows are 8-byte aligned
			// (ld even) and falls back to single stores otherwise.
			modes = append(modes, "tile_ldeven", "single_ldeven")
		}
		for _, H := range []int{64, 32, 16, 8} {
			for _, mode := range modes {
				t.Run(fmt.Sprintf("v%d/H=%d/%s", v, H, mode), func(t *testing.T) {
					g.d.fp8Force, g.d.fp8NW = v, 0
					if v == 53 { // version 5 with 3 consumer warpgroups
						g.d.fp8Force, g.d.fp8NW = 5, 3
					}
					c := newFP8Case(rng, H, 1000+rng.IntN(3000), 5+rng.IntN(40))
					ld := c.N + 7
					if m, ok := strings.CutSuffix(mode, "_ldeven"); ok {
						mode, ld = m, c.N+c.N%2+2
					} else if ld%2 == 0 {
						ld++ // odd: the unpaired store path
					}
					var cand []int32
					candLd := 0
					ke := slices.Clone(c.ke)
					if mode == "kidx" {
						// Each row scores a random subset of its keys.
						candLd = 300
						cand = make([]int32, c.M*candLd)
						for m := 0; m < c.M; m++ {
							perm := rng.Perm(int(c.ke[m]))
							n := min(len(perm), 1+rng.IntN(candLd))
							for i := 0; i < n; i++ {
								cand[m*candLd+i] = int32(perm[i])
							}
							ke[m] = int32(n)
						}
					}
					out := make([]float32, c.M*ld)
					err := g.d.do(func() error {
						var a arena
						defer a.free()
						bq, _ := a.alloc(int64(len(c.q8)), "q8")
						bk, _ := a.alloc(int64(len(c.k8)), "k8")
						bks, _ := a.alloc(int64(4*len(c.ks)), "ks")
						bw, _ := a.alloc(int64(4*len(c.w)), "w")
						bke, _ := a.alloc(int64(4*len(ke)), "ke")
						bo, err := a.alloc(int64(4*len(out)), "out")
						if err != nil {
							return err
						}
						var bc buffer
						if cand != nil {
							if bc, err = a.alloc(int64(4*len(cand)), "cand"); err != nil {
								return err
							}
							if err := upload(bc, cand); err != nil {
								return err
							}
						}
						for _, e := range []error{upload(bq, c.q8), upload(bk, c.k8), upload(bks, c.ks), upload(bw, c.w), upload(bke, ke), poison(bo, 0xFFFFFFFF)} {
							if e != nil {
								return e
							}
						}
						maxKe := int(slices.Max(ke))
						if err := g.d.fp8Logits(fp8Args{heads: H, single: mode != "tile", q8: bq, k8: bk, ks: bks, w: bw, ke: bke,
							M: c.M, maxKe: maxKe, ld: ld, split: 1024, kidx: bc, kidxLd: candLd, out: bo}); err != nil {
							return err
						}
						return download(out, bo)
					})
					if err != nil {
						t.Fatal(err)
					}
					var worst float64
					checked := 0
					for m := 0; m < c.M; m++ {
						want := map[int]bool{}
						if cand != nil {
							for i := 0; i < int(ke[m]); i++ {
								want[int(cand[m*candLd+i])] = true
							}
						}
						for s := 0; s < c.N; s++ {
							got := out[m*ld+s]
							scored := s < int(c.ke[m])
							if cand != nil {
								scored = want[s]
							}
							if !scored {
								// Tile mode may write keys past a row's own range
								// (up to the CTA's); kidx mode must write only its
								// candidates.
								if cand != nil && !math.IsNaN(float64(got)) {
									t.Fatalf("row %d key %d: written (%v) but not a candidate", m, s, got)
								}
								continue
							}
							if math.IsNaN(float64(got)) || math.IsInf(float64(got), 0) {
								t.Fatalf("row %d key %d: not written (%v)", m, s, got)
							}
							v, mag := c.ref(m, s)
							e := math.Abs(float64(got) - v)
							if e > fp8Tol*mag+1e-30 {
								t.Fatalf("row %d key %d: %v, reference %v (magnitude %v)", m, s, got, v, mag)
							}
							if mag > 0 {
								worst = max(worst, e/mag)
							}
							checked++
						}
					}
					t.Logf("v%d H=%d %s: N=%d M=%d, %d logits checked, worst error %.2e of the term magnitudes", v, H, mode, c.N, c.M, checked, worst)
				})
			}
		}
	}
}

// BenchmarkFP8Logits times the DSA logits kernel versions at the issue's
// prefill shape (1024 rows at the end of 65536 keys, 64 heads) and MISA's
// h = 8 on the same keys.
func BenchmarkFP8Logits(b *testing.B) {
	g := testGPU(b)
	const H, N, M = 64, 65536, 1024
	c := newFP8Case(rand.New(rand.NewPCG(1, 1)), H, N, M)
	for i := range c.ke {
		c.ke[i] = int32(N - M + i + 1)
	}
	versions := []int{3}
	if g.d.info.Arch == "sm_90a" {
		versions = append(versions, 4, 5, 53, 6, 60, 7, 8, 80, 12, 120)
	}
	defer func() { g.d.fp8Force, g.d.fp8NW = 0, 0 }()
	for _, heads := range []int{64, 8} {
		for _, v := range versions {
			name := fmt.Sprintf("v%d", v)
			if v == 80 || v == 120 {
				name = fmt.Sprintf("v%dnostore", v/10) // every logit computed, none stored
			}
			b.Run(fmt.Sprintf("h=%d/%s", heads, name), func(b *testing.B) {
				g.d.fp8Force, g.d.fp8NW = v, 0
				nostore := false
				switch v {
				case 53:
					g.d.fp8Force, g.d.fp8NW = 5, 3
				case 80, 120:
					g.d.fp8Force, nostore = v/10, true
				}
				var keys float64
				for _, k := range c.ke {
					keys += float64(k)
				}
				flops := 2 * float64(heads) * 128 * keys
				err := g.d.do(func() error {
					var a arena
					defer a.free()
					bq, err := a.alloc(int64(M*heads*128), "q8")
					if err != nil {
						return err
					}
					bk, _ := a.alloc(int64(len(c.k8)), "k8")
					bks, _ := a.alloc(int64(4*N), "ks")
					bw, _ := a.alloc(int64(4*M*heads), "w")
					bke, _ := a.alloc(int64(4*M), "ke")
					bo, err := a.alloc(int64(4*M*N), "out")
					if err != nil {
						return err
					}
					q := c.q8[:M*heads*128] // any FP8 values will do for timing
					for _, e := range []error{upload(bq, q), upload(bk, c.k8), upload(bks, c.ks), upload(bw, c.w[:M*heads]), upload(bke, c.ke)} {
						if e != nil {
							return e
						}
					}
					split := 0
					if heads == 8 {
						split = 8192
					}
					ms, err := g.d.timeEvents(3, 20, func() error {
						return g.d.fp8Logits(fp8Args{heads: heads, q8: bq, k8: bk, ks: bks, w: bw, ke: bke, M: M, maxKe: N, ld: N, split: split, out: bo, nostore: nostore})
					})
					if err != nil {
						return err
					}
					med := median(ms)
					b.ReportMetric(med, "ms")
					b.ReportMetric(slices.Min(ms), "min-ms")
					b.ReportMetric(slices.Max(ms), "max-ms")
					b.ReportMetric(flops/(med*1e-3)/1e12, "TFLOP/s")
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// BenchmarkFP8LogitsDecode times the logits kernels at the decode
// shape: 64 single queries, each over its own 131072 FP8 keys (1.07 GB read
// once), 64 heads, split over the key axis as compare.go does. bytes/s
// counts the keys, their scales and the logits written; copy-GB/s is the
// same run's device-to-device copy (read + write).
func BenchmarkFP8LogitsDecode(b *testing.B) {
	g := testGPU(b)
	const H, N, B = 64, 131072, 64
	c := newFP8Case(rand.New(rand.NewPCG(2, 2)), H, N/2, B)
	versions := []int{3}
	if g.d.info.Arch == "sm_90a" {
		versions = append(versions, 4, 6, 7, 8, 12)
	}
	defer func() { g.d.fp8Force = 0 }()
	var copyGBs float64
	for _, v := range versions {
		b.Run(fmt.Sprintf("h=%d/v%d", H, v), func(b *testing.B) {
			g.d.fp8Force = v
			err := g.d.do(func() error {
				if copyGBs == 0 {
					bw, err := g.d.copyBandwidth()
					if err != nil {
						return err
					}
					copyGBs = bw
				}
				var a arena
				defer a.free()
				bq, err := a.alloc(int64(B*H*128), "q8")
				if err != nil {
					return err
				}
				bk, err := a.alloc(int64(B*N*128), "k8")
				if err != nil {
					return err
				}
				bks, _ := a.alloc(int64(4*B*N), "ks")
				bw, _ := a.alloc(int64(4*B*H), "w")
				bke, _ := a.alloc(int64(4*B), "ke")
				bo, err := a.alloc(int64(4*B*N), "out")
				if err != nil {
					return err
				}
				// Each sequence's keys are the case's keys twice (any FP8
				// values will do for timing).
				for i := 0; i < 2*B; i++ {
					if err := uploadAt(bk, i*len(c.k8), c.k8); err != nil {
						return err
					}
					if err := uploadAt(bks, i*4*len(c.ks), c.ks); err != nil {
						return err
					}
				}
				ke := make([]int32, B)
				for i := range ke {
					ke[i] = N
				}
				for _, e := range []error{upload(bq, c.q8[:B*H*128]), upload(bw, c.w[:B*H]), upload(bke, ke)} {
					if e != nil {
						return e
					}
				}
				parts := max(2*g.d.info.SMs/B, 1)
				split := max((N+parts-1)/parts/256*256+256, 1024)
				ms, err := g.d.timeEvents(3, 20, func() error {
					return g.d.fp8Logits(fp8Args{heads: H, single: true, q8: bq, k8: bk, ks: bks, w: bw, ke: bke,
						M: B, maxKe: N, ld: N, split: split, rowsPerSeq: 1, seqKeys: N, out: bo})
				})
				if err != nil {
					return err
				}
				med := median(ms)
				bytes := float64(B) * N * (128 + 4 + 4)
				b.ReportMetric(med, "ms")
				b.ReportMetric(slices.Min(ms), "min-ms")
				b.ReportMetric(slices.Max(ms), "max-ms")
				b.ReportMetric(bytes/(med*1e-3)/1e9, "GB/s")
				b.ReportMetric(copyGBs, "copy-GB/s")
				b.ReportMetric(2*float64(H)*128*B*N/(med*1e-3)/1e12, "TFLOP/s")
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}

// TestFP8TensorPeak checks that the peak kernel really runs its MMAs: with
// all-ones FP8 operands every thread's 64 accumulators sum to 64·128·iters
// (exact in fp32 at these sizes); outputs are poisoned first.
func TestFP8TensorPeak(t *testing.T) {
	g := testGPU(t)
	if g.d.info.Arch != "sm_90a" {
		t.Skip("needs sm_90a")
	}
	const iters = 10
	n := 2 * g.d.info.SMs * 256
	got := make([]float32, n)
	err := g.d.do(func() error {
		var a arena
		defer a.free()
		out, err := a.alloc(int64(4*n), "peak out")
		if err != nil {
			return err
		}
		if err := poison(out, 0xFFFFFFFF); err != nil {
			return err
		}
		if err := g.d.fp8Peak(iters, out); err != nil {
			return err
		}
		return download(got, out)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != 64*128*iters {
			t.Fatalf("thread %d: %v, want %d", i, v, 64*128*iters)
		}
	}
}

// BenchmarkFP8TensorPeak reports the measured FP8 tensor rate that
// `misabench kernel` compares the logits kernels with.
func BenchmarkFP8TensorPeak(b *testing.B) {
	g := testGPU(b)
	var tf float64
	if err := g.d.do(func() (err error) { tf, err = g.d.fp8TensorPeak(); return err }); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(tf, "TFLOP/s")
}
