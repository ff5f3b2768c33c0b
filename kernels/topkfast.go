//go:build cuda

package kernels

// Launch code for topkfast.cu.

import (
	"fmt"
	"sync"

	"gorgonia.org/cu"
)

const (
	topkFastThreads  = 512  // TF_THREADS
	topkFastChunk    = 4096 // TF_CHUNK
	topkFastBins     = 4096 // TF_BINS
	topkFastMaxParts = 16
)

// topkFastCap is the candidate-buffer capacity (entries) for k: k, a slack
// the buffer may grow by between selects, and one streaming chunk.
func topkFastCap(k int) int { return k + min(max(2*k, 4096), 8192) + topkFastChunk }

// topkFastSmem is the kernel's dynamic shared memory for k.
func topkFastSmem(k int) int { return (topkFastBins + 2*topkFastCap(k)) * 4 }

// topkFastParts is how many CTAs share one row: 1 when there are enough
// rows to fill the GPU (two CTAs per SM), else enough to fill it, with
// segments of at least 8k entries.
func (d *device) topkFastParts(rows, maxLen, k int) int {
	sms := max(d.info.SMs, 1)
	if rows >= sms {
		return 1
	}
	return max(1, min(2*sms/rows, maxLen/(8*k), topkFastMaxParts))
}

// topkFast has the contract of topk (topk.cu): per row r, the k best of
// scores[r, 0:lens[r]) (cand is the zero buffer) or of scores[r, cand[r, i]]
// for i < lens[r], higher score first and ties to the lower index (lower
// candidate position); out [rows][outLd] receives the indices (candidate
// values) in ascending index (position) order — the same sequence as topk —
// and outCount[r] = min(k, lens[r]). One read of each row (topkfast.cu).
// When rows are too few to fill the GPU, each row is split over several
// CTAs and merged by a second launch, through a scratch buffer kept per
// device. A k whose buffer does not fit in shared memory falls back to topk.
func (d *device) topkFast(scores buffer, ld int, cand buffer, candLd int, lens buffer, rows, k int, out buffer, outLd int, outCount buffer) error {
	return d.topkFastGated(scores, ld, cand, candLd, lens, rows, k, out, outLd, outCount, buffer{})
}

// topkFastGated is topkFast whose launches do nothing while the int32 at
// gate is zero (fp8select.go's fallback); the zero buffer runs them always.
// The fallback to topk takes no gate.
func (d *device) topkFastGated(scores buffer, ld int, cand buffer, candLd int, lens buffer, rows, k int, out buffer, outLd int, outCount buffer, gate buffer) error {
	if rows <= 0 {
		return nil
	}
	if k < 1 {
		return fmt.Errorf("kernels: top-k of %d", k)
	}
	smem := topkFastSmem(k)
	if smem+256 > d.smemOptin { // 160 B of static shared memory too
		if gate.p != 0 {
			return fmt.Errorf("kernels: top-k of %d does not fit the fast kernel, which a gated launch needs", k)
		}
		return d.topk(scores, ld, cand, candLd, lens, rows, k, out, outLd, outCount)
	}
	capacity := topkFastCap(k)
	maxLen := ld
	if cand.p != 0 {
		maxLen = candLd
	}
	parts := d.topkFastParts(rows, maxLen, k)
	flags := 1 // guess the first threshold from a sample
	if topkFastNoGuess {
		flags = 0
	}
	flags |= topkFastDiag
	// A gated launch is persistent (topk_fast_rows_gated): one wave of CTAs,
	// which return at once while the gate is closed.
	run := func(g dims, args ...any) error {
		if gate.p == 0 {
			return d.launch("topk_fast_rows", g, topkFastThreads, smem, args...)
		}
		rows := g[0]
		g[0] = min(rows, max(2*d.info.SMs/g[1], 1))
		a := append(append(append([]any{}, args[:5]...), rows), args[5:]...)
		return d.launch("topk_fast_rows_gated", g, topkFastThreads, smem, append(a, gate)...)
	}
	if parts == 1 {
		return run(dims{rows, 1, 1}, scores, ld, cand, candLd, lens, k, out, outLd, outCount, 1, capacity, flags)
	}
	w := parts * k
	idxBytes := int64(rows) * int64(w) * 4
	scratch, err := d.topkFastScratch(idxBytes + int64(rows)*4)
	if err != nil {
		return err
	}
	idx := buffer{p: scratch.p, bytes: idxBytes}
	cnt := buffer{p: scratch.p + cu.DevicePtr(idxBytes), bytes: int64(rows) * 4}
	if err := run(dims{rows, parts, 1}, scores, ld, cand, candLd, lens, k, idx, w, cnt, parts, capacity, flags); err != nil {
		return err
	}
	return run(dims{rows, 1, 1}, scores, ld, idx, w, cnt, k, out, outLd, outCount, 1, capacity, flags)
}

// topkFastNoGuess turns the sampled first threshold off (tests, benchmarks);
// topkFastDiag = 2 makes the kernel stop after streaming, writing no output
// (a benchmark diagnostic: the time of the streaming phase alone); 16 loads
// the row with plain __ldg instead of the L2-prefetch hint; 32 samples single
// floats instead of float4s.
var (
	topkFastNoGuess bool
	topkFastDiag    int
)

// topkFastScratch returns a device buffer of at least bytes for the split
// path, one per device, grown on demand and kept until the context goes
// (the map holds the device, so its address is never reused for another).
var topkScratch struct {
	sync.Mutex
	m map[*device]*arena
	b map[*device]buffer
}

func (d *device) topkFastScratch(bytes int64) (buffer, error) {
	topkScratch.Lock()
	defer topkScratch.Unlock()
	if topkScratch.m == nil {
		topkScratch.m = map[*device]*arena{}
		topkScratch.b = map[*device]buffer{}
	}
	if b, ok := topkScratch.b[d]; ok && b.bytes >= bytes {
		return b, nil
	}
	a := topkScratch.m[d]
	if a == nil {
		a = &arena{d: d}
		topkScratch.m[d] = a
	}
	if len(a.bufs) > 0 {
		if err := cu.Synchronize(); err != nil { // kernels may still use it
			return buffer{}, fmt.Errorf("kernels: top-k scratch: %v", err)
		}
		a.free()
	}
	delete(topkScratch.b, d)
	b, err := a.alloc(bytes, "top-k split scratch")
	if err != nil {
		return buffer{}, err
	}
	topkScratch.b[d] = b
	return b, nil
}
