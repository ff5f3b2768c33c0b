//go:build cuda

package kernels

import (
	"fmt"
	"sync/atomic"

	"gorgonia.org/cu"
)

// Launch code for fp8router.cu: MISA's pooling and pooled router on the FP8
// fast path (fp32 and tensor-core arithmetic; the exact path is pool.go and
// router.go).

const (
	fp8PoolTile    = 64    // FP_TILE
	fp8PoolThreads = 256   // FP_THREADS
	fp8RouteThrds  = 256   // FR_THREADS
	fp8RouteMaxCC  = 128   // columns staged per chunk, at most (64 KB of shared memory)
	fp8RouteQBytes = 32768 // FR_QBYTES: a CTA's q8 rows in shared memory
	// fp8RouteStatic is fp8_route's static shared memory (fr_pos, fr_own:
	// 2·8 int64; fr_sum, fr_w, fr_q, fr_sel: 4·8·64 words).
	fp8RouteStatic = 2*8*8 + 4*8*64*4
)

// fp8PoolEpoch tags each fp8_pool_prefix launch's look-back flags, so that
// a scratch buffer is zeroed once, at allocation, and never again: a flag
// left by an earlier launch carries an older epoch.
var fp8PoolEpoch atomic.Uint32

// fp8PoolScratchBytes is the look-back scratch that fp8PoolPrefix needs
// for N keys: a flag word and two 128-float vectors per 64-key tile.
func fp8PoolScratchBytes(N int) int {
	tiles := (N + fp8PoolTile - 1) / fp8PoolTile
	return (tiles+3)/4*16 + 2*tiles*128*4
}

// allocFP8PoolScratch allocates and zeroes the scratch for up to N keys.
func allocFP8PoolScratch(a *arena, N int) (buffer, error) {
	b, err := a.alloc(int64(fp8PoolScratchBytes(N)), "pooling scratch")
	if err != nil {
		return buffer{}, err
	}
	return b, poison(b, 0)
}

// fp8PoolPrefix writes P [N][128] float32, the per-block inclusive prefix
// sums of the dequantised keys e4m3(k8[u])·ks[u] (blocks of B keys): a full
// block's mean is P[end]/B, a causal own-block mean P[p]/(p − start + 1).
// scratch comes from allocFP8PoolScratch(N) (or larger; zeroed once).
func (d *device) fp8PoolPrefix(k8, ks buffer, N, B int, P, scratch buffer) error {
	return d.fp8PoolPrefixRows(k8, ks, N, B, buffer{}, 0, P, scratch)
}

// fp8PoolPrefixAt is fp8PoolPrefix storing only the rows of P that
// fp8Route reads for the query positions qpos [M] int64 (sorted ascending,
// as a trace's q_pos are): every block end, the last key N−1 and each
// position in qpos. The other rows are left as they were. It moves N·132
// bytes in and (⌈N/B⌉ + M)·512 out instead of N·644.
func (d *device) fp8PoolPrefixAt(k8, ks buffer, N, B int, qpos buffer, M int, P, scratch buffer) error {
	if qpos.p == 0 {
		return fmt.Errorf("kernels: fp8PoolPrefixAt: no query positions")
	}
	return d.fp8PoolPrefixRows(k8, ks, N, B, qpos, M, P, scratch)
}

func (d *device) fp8PoolPrefixRows(k8, ks buffer, N, B int, qpos buffer, M int, P, scratch buffer) error {
	if d.info.Major*10+d.info.Minor < 89 {
		return fmt.Errorf("kernels: the FP8 pooling needs compute capability 8.9 or newer; %s has %d.%d", d.info.Name, d.info.Major, d.info.Minor)
	}
	if N < 1 || B < 1 || M < 0 {
		return fmt.Errorf("kernels: fp8PoolPrefix: N = %d keys, blocks of %d, %d rows", N, B, M)
	}
	switch {
	case k8.bytes < int64(N)*128, ks.bytes < int64(N)*4, P.bytes < int64(N)*512:
		return fmt.Errorf("kernels: fp8PoolPrefix: buffers too small for %d keys", N)
	case scratch.bytes < int64(fp8PoolScratchBytes(N)):
		return fmt.Errorf("kernels: fp8PoolPrefix: scratch of %d bytes, %d keys need %d", scratch.bytes, N, fp8PoolScratchBytes(N))
	case qpos.p != 0 && qpos.bytes < int64(M)*8:
		return fmt.Errorf("kernels: fp8PoolPrefix: %d query positions in a %d-byte buffer", M, qpos.bytes)
	}
	tiles := (N + fp8PoolTile - 1) / fp8PoolTile
	flags := scratch
	agg := buffer{p: scratch.p + cu.DevicePtr((tiles+3)/4*16), bytes: int64(tiles) * 512}
	incl := buffer{p: agg.p + cu.DevicePtr(tiles*512), bytes: int64(tiles) * 512}
	ep := fp8PoolEpoch.Add(1) & 0x3fffffff
	for ep == 0 {
		ep = fp8PoolEpoch.Add(1) & 0x3fffffff
	}
	name := "fp8_pool_prefix"
	if fp8PoolCTAs != 0 {
		name = fmt.Sprintf("fp8_pool_prefix_c%d", fp8PoolCTAs)
	}
	return d.launch(name, dims{tiles, 1, 1}, fp8PoolThreads, 0,
		k8, ks, N, B, qpos, M, P, flags, agg, incl, int64(ep))
}

// fp8PoolCTAs picks the pooling kernel built for 6 or 4 CTAs an SM instead
// of the default 8 (tests and benchmarks compare them).
var fp8PoolCTAs int

// fp8RouteArgs are the operands of one fp8_route launch.
type fp8RouteArgs struct {
	q8    buffer // [M][H][128] E4M3
	qs    buffer // [M][H] float32 q scales (powers of two)
	w     buffer // [M][H] float32 indexer weights, without q's scale
	qpos  buffer // [M] int64 positions, each < N
	P     buffer // from fp8PoolPrefix (or fp8PoolPrefixAt with these qpos)
	M, H  int    // rows, heads (H ≤ 64)
	h     int    // routed heads, 1 … H
	N, B  int    // keys, pooling block
	ref   bool   // reference pooling: the own block averaged over its whole length
	heads buffer // out [M][h] int32, ascending
	q8r   buffer // out [M][h][128] E4M3, the routed heads' q
	wr    buffer // out [M][h] float32, w·qs of the routed heads
	score buffer // out [M][H] float32 router scores, or zero for none
}

// fp8RouteLayout is the rows per CTA and the columns staged per chunk.
func fp8RouteLayout(H, N, B int) (rows, cc int) {
	rows = 4
	if H <= 32 {
		rows = 8
	}
	cc = min(fp8RouteMaxCC, ((N-1)/B+rows+7)/8*8)
	return rows, cc
}

// fp8Route scores the pooled router for each row t, r[h] = |w[h]|·Σ_{b ≤ own}
// ReLU(q[h]·kbar_b) with q = e4m3(q8)·qs (causal own block, or the whole
// own block with reference), picks the h best heads (ties to the lower head)
// and gathers them for fp8Logits: heads, q8r and wr = w·qs.
func (d *device) fp8Route(q8, qs, w, qpos, P buffer, M, H, h, N, B int, reference bool, heads, q8r, wr buffer) error {
	return d.fp8RouteRun(fp8RouteArgs{q8: q8, qs: qs, w: w, qpos: qpos, P: P, M: M, H: H, h: h, N: N, B: B,
		ref: reference, heads: heads, q8r: q8r, wr: wr})
}

func (d *device) fp8RouteRun(a fp8RouteArgs) error {
	if d.info.Major*10+d.info.Minor < 89 {
		return fmt.Errorf("kernels: the FP8 router needs compute capability 8.9 or newer; %s has %d.%d", d.info.Name, d.info.Major, d.info.Minor)
	}
	if a.H < 1 || a.H > 64 || a.h < 1 || a.h > a.H || a.N < 1 || a.B < 1 || a.M < 0 {
		return fmt.Errorf("kernels: fp8Route: H = %d heads (1 … 64), h = %d routed, N = %d keys, B = %d, M = %d rows", a.H, a.h, a.N, a.B, a.M)
	}
	M, H, h := int64(a.M), int64(a.H), int64(a.h)
	switch {
	case a.q8.bytes < M*H*128, a.qs.bytes < M*H*4, a.w.bytes < M*H*4, a.qpos.bytes < M*8, a.P.bytes < int64(a.N)*512:
		return fmt.Errorf("kernels: fp8Route: input buffers too small for %d rows × %d heads, %d keys", a.M, a.H, a.N)
	case a.heads.bytes < M*h*4, a.q8r.bytes < M*h*128, a.wr.bytes < M*h*4, a.score.p != 0 && a.score.bytes < M*H*4:
		return fmt.Errorf("kernels: fp8Route: output buffers too small for %d rows × %d routed heads", a.M, a.h)
	}
	rows, cc := fp8RouteLayout(a.H, a.N, a.B)
	smem := fp8RouteQBytes + cc*(512+4)
	if smem+fp8RouteStatic > 48<<10 {
		// Past 48 KB in all the kernel needs the opt-in, which launch asks
		// for only when the dynamic part alone exceeds 48 KB.
		smem = max(smem, 48<<10+16)
	}
	return d.launch("fp8_route", dims{(a.M + rows - 1) / rows, 1, 1}, fp8RouteThrds, smem,
		a.q8, a.qs, a.w, a.qpos, a.P, a.M, a.H, a.h, a.N, a.B, a.ref, cc, a.heads, a.q8r, a.wr, a.score)
}
