//go:build cuda

package kernels

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/cu"
)

// The fused selection (fp8select.cu) must select exactly what the unfused
// pipeline selects: the CPU top-k (tkCPU: stable sort by score key) of the
// logits the unfused kernel writes for the same inputs. Fresh random inputs
// each run (the seed is logged), ragged row lengths, several key splits,
// outputs poisoned first. On random inputs every row must be decided from
// the survivors — the fallback must not run, which the test sees from the
// failure count and from the full-logits buffer, still poisoned afterwards;
// TestFP8SelectFallback forces it to run.

// fp8SelectGPU is the test GPU, or a skip where fused selection cannot run.
func fp8SelectGPU(t *testing.T) *GPU {
	g := testGPU(t)
	if g.d.info.Arch != "sm_90a" {
		t.Skip("fused selection needs sm_90a")
	}
	return g
}

// fp8SelectModes runs run as subtests name/prefill and name/decode, and
// checks that rows went to the fallback, or that none did.
func fp8SelectModes(t *testing.T, name string, wantFallback bool, run func(t *testing.T, mode string) int) {
	for _, mode := range []string{"prefill", "decode"} {
		t.Run(name+"/"+mode, func(t *testing.T) {
			fails := run(t, mode)
			if wantFallback && fails == 0 {
				t.Error("no row went to the fallback")
			}
			if !wantFallback && fails != 0 {
				t.Errorf("%d rows went to the fallback", fails)
			}
		})
	}
}

func TestFP8SelectMatchesReference(t *testing.T) {
	g := fp8SelectGPU(t)
	rng := tkSeed(t)
	for _, H := range []int{64, 32, 8} {
		for _, mode := range []string{"prefill", "decode"} {
			// capReg = min(split/64 + 2, max(k/8, 64)) ≥ the keys a lane
			// group sees of a split: no region can overflow.
			for _, kc := range []struct{ k, split int }{{512, 1024}, {128, 256}} {
				t.Run(fmt.Sprintf("H=%d/%s/k=%d", H, mode, kc.k), func(t *testing.T) {
					fails := fp8SelectCase(t, g, rng, H, mode, kc.k, kc.split, 0, 0)
					if fails != 0 {
						t.Errorf("%d rows went to the fallback on random inputs", fails)
					}
				})
			}
		}
	}
	// Structured: the keys repeat with a period of 97, so every logit ties
	// with those of the same key phase and the k-th score is shared by many
	// keys (ties go to the lower index). The pairs still decide every row.
	fp8SelectModes(t, "repeated keys", false, func(t *testing.T, mode string) int {
		return fp8SelectCase(t, g, rng, 64, mode, 512, 1024, 97, 0)
	})
}

// TestFP8SelectPickPaths sets thresholds so low that every key survives,
// so that rows longer than topk_fast_pairs' buffer take its streaming path
// (with refills) instead of the direct copy.
func TestFP8SelectPickPaths(t *testing.T) {
	g := fp8SelectGPU(t)
	rng := tkSeed(t)
	defer func() { fp8SelectRank = 0 }()
	fp8SelectRank = 1 << 30 // thresholds −inf
	// Rows of up to 12000+ keys against a buffer of 8320 at k 128.
	fp8SelectModes(t, "all survive", false, func(t *testing.T, mode string) int {
		return fp8SelectCase(t, g, rng, 64, mode, 128, 1024, 0, 12000)
	})
}

func TestFP8SelectFallback(t *testing.T) {
	g := fp8SelectGPU(t)
	rng := tkSeed(t)
	defer func() { fp8SelectRank, fp8SelectCap = 0, 0 }()
	for _, c := range []struct {
		name      string
		rank, cap int
	}{
		{"threshold too high", 1, 0}, // the sample's best: ~S survivors < k
		{"regions overflow", 0, 2},
	} {
		fp8SelectModes(t, c.name, true, func(t *testing.T, mode string) int {
			fp8SelectRank, fp8SelectCap = c.rank, c.cap
			return fp8SelectCase(t, g, rng, 64, mode, 256, 1024, 0, 0)
		})
	}
}

// fp8SelectCase runs one random problem both ways, checks the fused sets
// against the reference and returns the failure count.
// With period > 0 the keys (and their scales) repeat with that period.
func fp8SelectCase(t *testing.T, g *GPU, rng *rand.Rand, H int, mode string, k, split, period, minN int) int {
	t.Helper()
	decode := mode == "decode"
	var c *fp8Case
	var N, M, seqs, rowsPerSeq int
	if decode {
		// One sequence of N keys a row.
		M, N = 3+rng.IntN(4), max(2000+rng.IntN(7000), minN)
		c = newFP8Case(rng, H, N*M, M)
		for m := range c.ke {
			c.ke[m] = int32(1 + rng.IntN(N))
		}
		c.ke[M-1] = int32(N)
		seqs, rowsPerSeq = M, 1
	} else {
		M, N = 20+rng.IntN(30), max(2000+rng.IntN(7000), minN)
		c = newFP8Case(rng, H, N, M)
		seqs = 1
	}
	if period > 0 {
		for i := period; i < len(c.ks); i++ {
			copy(c.k8[i*128:(i+1)*128], c.k8[(i%period)*128:])
			c.ks[i] = c.ks[i%period]
		}
	}
	ld, outLd := N+N%2+2, k+3
	logits := make([]float32, M*ld)
	got, cnt := make([]int32, M*outLd), make([]int32, M)
	var fails, survivors int
	err := g.d.do(func() error {
		var a arena
		defer a.free()
		bq, bk, bks, bw, bke, bl, bo, bc, err := fp8SelectBuffers(&a, c, H, M, ld, outLd)
		if err != nil {
			return err
		}
		fa := fp8Args{heads: H, single: decode, q8: bq, k8: bk, ks: bks, w: bw, ke: bke, M: M,
			maxKe: int(slices.Max(c.ke)), ld: ld, split: split, rowsPerSeq: rowsPerSeq, seqKeys: N, out: bl}
		if err := g.d.fp8Logits(fa); err != nil {
			return err
		}
		if err := download(logits, bl); err != nil {
			return err
		}
		for _, b := range []buffer{bl, bo, bc} {
			if err := poison(b, 0xFFFFFFFF); err != nil {
				return err
			}
		}
		p, err := g.d.newFP8Select(&a, fa, seqs, k)
		if err != nil {
			return err
		}
		if err := g.d.fp8SelectRun(p, bo, outLd, bc); err != nil {
			return err
		}
		if fails, err = p.failures(); err != nil {
			return err
		}
		counts := make([]int32, M*p.parts*64)
		if err := download(counts, p.counts); err != nil {
			return err
		}
		for _, n := range counts {
			survivors += int(n)
		}
		after := make([]uint32, M*ld)
		for _, e := range []error{download(got, bo), download(cnt, bc), download(after, bl)} {
			if e != nil {
				return e
			}
		}
		// The fallback writes the full logits; without it they stay poisoned.
		written := slices.IndexFunc(after, func(v uint32) bool { return v != 0xFFFFFFFF }) >= 0
		if written != (fails > 0) {
			return fmt.Errorf("%d failed rows, but the fallback's logits written: %v", fails, written)
		}
		t.Logf("H=%d %s k=%d: M=%d N=%d, %d key parts, r=%d, %d survivors a row on average, %d rows to the fallback",
			H, mode, k, M, N, p.parts, p.r, survivors/M, fails)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ref := &tkProblem{rows: M, ld: ld, k: k, scores: logits, lens: c.ke}
	ties := 0
	for m := 0; m < M; m++ {
		want := tkCPU(ref, m)
		row := got[m*outLd : (m+1)*outLd]
		if int(cnt[m]) != len(want) {
			t.Fatalf("row %d (%d keys): count %d, want %d", m, c.ke[m], cnt[m], len(want))
		}
		if !slices.Equal(row[:len(want)], want) {
			i := 0
			for i < len(want) && row[i] == want[i] {
				i++
			}
			t.Fatalf("row %d (%d keys): slot %d is %d, want %d", m, c.ke[m], i, row[i], want[i])
		}
		for i := len(want); i < outLd; i++ {
			if row[i] != -1 {
				t.Fatalf("row %d: slot %d past the count written (%d)", m, i, row[i])
			}
		}
		if n := int(c.ke[m]); n > k {
			keys := make([]uint32, n)
			for i := range keys {
				keys[i] = tkScoreKey(logits[m*ld+i])
			}
			slices.Sort(keys)
			if keys[n-k] == keys[n-k-1] {
				ties++
			}
		}
	}
	t.Logf("%d rows with a tie at the k-th score (decided by the lower index)", ties)
	return fails
}

// fp8SelectBuffers allocates in a, and fills, a problem's device buffers:
// c's q8 and w for M rows of heads heads, keys, scales and key counts; the
// full logits [M][ld] (poisoned: the test downloads its padding too), and
// the sets [M][outLd] and their counts.
func fp8SelectBuffers(a *arena, c *fp8Case, heads, M, ld, outLd int) (bq, bk, bks, bw, bke, bl, bo, bc buffer, err error) {
	for _, x := range []struct {
		b     *buffer
		bytes int
	}{{&bq, M * heads * 128}, {&bk, len(c.k8)}, {&bks, 4 * len(c.ks)}, {&bw, 4 * M * heads}, {&bke, 4 * M},
		{&bl, 4 * M * ld}, {&bo, 4 * M * outLd}, {&bc, 4 * M}} {
		if err == nil {
			*x.b, err = a.alloc(int64(x.bytes), "fused selection test")
		}
	}
	if err != nil {
		return bq, bk, bks, bw, bke, bl, bo, bc, err
	}
	for _, e := range []error{upload(bq, c.q8[:M*heads*128]), upload(bk, c.k8), upload(bks, c.ks),
		upload(bw, c.w[:M*heads]), upload(bke, c.ke[:M]), poison(bl, 0xFFFFFFFF)} {
		if e != nil {
			return bq, bk, bks, bw, bke, bl, bo, bc, e
		}
	}
	return bq, bk, bks, bw, bke, bl, bo, bc, nil
}

// BenchmarkFP8Select times each step of the fused selection at the issue's
// prefill shape (1024 rows at the end of 65536 keys, k 2048) for DSA's 64
// heads and MISA's 8, beside the unfused logits kernel and topkFast it
// replaces, in the same run: ms is the median of 20 event-timed runs.
func BenchmarkFP8Select(b *testing.B) {
	g := testGPU(b)
	if g.d.info.Arch != "sm_90a" {
		b.Skip("fused selection needs sm_90a")
	}
	const N, M, K = 65536, 1024, 2048
	c := newFP8Case(rand.New(rand.NewPCG(1, 1)), 64, N, M)
	for i := range c.ke {
		c.ke[i] = int32(N - M + i + 1)
	}
	for _, heads := range []int{64, 8} {
		b.Run(fmt.Sprintf("h=%d", heads), func(b *testing.B) {
			err := g.d.do(func() error {
				var a arena
				defer a.free()
				bq, bk, bks, bw, bke, bl, bo, bc, err := fp8SelectBuffers(&a, c, heads, M, N, K)
				if err != nil {
					return err
				}
				split := 0
				if heads == 8 {
					split = 16640 // compare.go's split: four parts, 256 CTAs
				}
				fa := fp8Args{heads: heads, q8: bq, k8: bk, ks: bks, w: bw, ke: bke, M: M, maxKe: N, ld: N, split: split, out: bl}
				p, err := g.d.newFP8Select(&a, fa, 1, K)
				if err != nil {
					return err
				}
				steps := []struct {
					name string
					f    func() error
				}{
					{"unfused logits", func() error { return g.d.fp8Logits(fa) }},
					{"unfused topkFast", func() error { return g.d.topkFast(bl, N, buffer{}, 0, bke, M, K, bo, K, bc) }},
					{"threshold", func() error { return g.d.fp8SelectThreshold(p) }},
					{"· sample keys", func() error { return g.d.fp8SampleKeys(p) }},
					{"· sample logits", func() error { return g.d.fp8SampleLogits(p) }},
					{"· sample k-th", func() error { return g.d.fp8SampleKth(p) }},
					{"filtered logits", func() error { return g.d.fp8SelectScore(p) }},
					{"pick", func() error { return g.d.fp8SelectPick(p, bo, K, bc) }},
					{"· pairs", func() error { return g.d.fp8PickPairs(p, bo, K, bc) }},
					{"· fallback, gated off", func() error { return g.d.fp8SelectFallback(p, bo, K, bc) }},
					{"fused total", func() error { return g.d.fp8SelectRun(p, bo, K, bc) }},
					// The filter's cost without survivors: thresholds +inf.
					{"filtered, none kept", func() error {
						if err := poison(p.thr, 0x7f800000); err != nil {
							return err
						}
						return g.d.fp8SelectScore(p)
					}},
				}
				for _, s := range steps {
					ms, err := g.d.timeEvents(3, 20, s.f)
					if err != nil {
						return err
					}
					b.Logf("h=%d %-21s median %.1f µs (min %.1f, max %.1f)", heads, s.name, 1e3*median(ms), 1e3*slices.Min(ms), 1e3*slices.Max(ms))
				}
				if err := g.d.fp8SelectRun(p, bo, K, bc); err != nil { // the thresholds again
					return err
				}
				fails, err := p.failures()
				if err != nil {
					return err
				}
				counts := make([]int32, M*p.parts*64)
				if err := download(counts, p.counts); err != nil {
					return err
				}
				var sum, worst int
				for _, n := range counts {
					sum += int(n)
					worst = max(worst, int(n))
				}
				b.Logf("h=%d: r=%d, %d parts, %d survivors a row on average, fullest region %d of %d, %d rows to the fallback",
					heads, p.r, p.parts, sum/M, worst, p.capReg, fails)
				// Row 0 on the CPU: the sample must be every S-th unfused
				// logit, the threshold its r-th largest, and about r·S of
				// the row must reach it.
				if err := g.d.fp8Logits(fa); err != nil {
					return err
				}
				row := make([]float32, N)
				smp := make([]float32, p.ldS)
				thr := make([]float32, 1)
				for _, e := range []error{download(row, bl), download(smp, p.sample), download(thr, p.thr)} {
					if e != nil {
						return e
					}
				}
				ns, diff := (int(c.ke[0])+fp8SelectStride-1)/fp8SelectStride, 0
				want := make([]float32, ns)
				for j := range want {
					want[j] = row[j*fp8SelectStride]
					if want[j] != smp[j] {
						diff++
					}
				}
				slices.SortFunc(want, func(x, y float32) int { return cmp.Compare(y, x) })
				reach := 0
				for _, v := range row[:c.ke[0]] {
					if v >= thr[0] {
						reach++
					}
				}
				b.Logf("h=%d row 0: %d sample values differ from every %dth logit; threshold %v, the sample's %dth value %v; %d of %d logits reach it",
					heads, diff, fp8SelectStride, thr[0], p.r, want[min(p.r, ns)-1], reach, c.ke[0])
				qb := 128 / heads
				for _, name := range []string{"fp8r_logits_h%d_q%d", "fp8rf_logits_h%d_q%d", "topk_fast_pairs"} {
					if strings.Contains(name, "%") {
						name = fmt.Sprintf(name, heads, qb)
					}
					f, err := g.d.function(name)
					if err != nil {
						return err
					}
					regs, _ := f.fn.Attribute(cu.NumRegs)
					local, _ := f.fn.Attribute(cu.LocalSizeBytes)
					b.Logf("%s: %d registers, %d bytes of local memory a thread", name, regs, local)
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}
