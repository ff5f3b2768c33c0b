//go:build cuda

package kernels

import (
	"fmt"

	"gorgonia.org/cu"
)

// Launch code for fp8logits.cu and fp8route.cu: the FP8 tensor-core path
// that `misabench kernel` times (research/kernels.md §1.1's contract).

const (
	fp8Threads = 256 // F8_THREADS
	fp8RowB    = 144 // F8_ROWB
	fp8Stages  = 3   // F8_STAGES
)

// fp8Layout mirrors fp8_logits_body's (version 3) and fp8w_logits_body's
// (version 4) tiling: queries per CTA, key tile and dynamic shared memory for
// a head count; one query per CTA when single.
func fp8Layout(version, heads int, single bool) (qb, tile, smem int, err error) {
	switch heads {
	case 8, 16, 32, 64:
	default:
		return 0, 0, 0, fmt.Errorf("kernels: the FP8 logits kernel takes 8, 16, 32 or 64 heads, not %d", heads)
	}
	qb = 128 / heads
	if single {
		qb = 1
	}
	cols := qb * heads
	if version == 6 || version == 60 || version == 7 || version == 8 || version == 12 {
		// F8S_STAGES 5, F8S_KT 64, two warpgroups; 1 KB of alignment slack.
		const stages, tile = 5, 64
		return qb, tile, 1024 + cols*128 + 2*stages*tile*(128+4) + cols*4, nil
	}
	if version == 5 {
		const stages, tile = 8, 64
		return qb, tile, 256 + cols*128 + stages*tile*128, nil
	}
	if version == 4 {
		const stages, tile = 4, 128
		return qb, tile, cols*128 + stages*tile*128 + cols*4, nil
	}
	ch := max(1, cols/64)
	tile = 32 * (8 / ch)
	return qb, tile, (cols + fp8Stages*tile) * fp8RowB, nil
}

// fp8Version is the FP8 logits kernel a launch uses: 12 (wgmma) on sm_90a,
// else 3 (mma.sync); d.fp8Force overrides it for tests, benchmarks and
// `misabench kernel --logits-kernel`. Version 5 (warp-specialised) measured
// slower than 4 (NOTES.md) and is kept for the record; 6 is version 4 with
// self-loading warpgroups and the 128-byte swizzle, 60 the same without the
// swizzle; 7 is 6 with the query columns placed so that head sums stay in
// a thread; 8 is 7 with cheaper copy addressing and FFMA chains; 12 is 8
// with the keys of a tile permuted so that a thread's two rows are adjacent
// keys, stored in pairs.
func (d *device) fp8Version() int {
	if d.fp8Force != 0 {
		return d.fp8Force
	}
	if d.info.Arch == "sm_90a" {
		return 12
	}
	return 3
}

// fp8Warpgroups is version 5's consumer warpgroup count for a variant:
// d.fp8NW where that variant is built (3 or 4), else 4.
func (d *device) fp8Warpgroups(heads, qb int) int {
	if d.fp8NW == 3 && qb > 1 && heads != 16 {
		return 3
	}
	return 4
}

// fp8Args are the operands of one fp8_logits launch.
type fp8Args struct {
	heads  int
	single bool   // one query per CTA (decode, or kidx)
	q8     buffer // [M][heads][128] E4M3
	k8     buffer // [N][128] E4M3 (per sequence when rowsPerSeq > 0)
	ks     buffer // [N] float32 key scales
	w      buffer // [M][heads] float32, q scales folded in
	ke     buffer // [M] int32: keys (or candidates) row m scores
	M      int
	maxKe  int // the largest ke
	ld     int // logits row stride (floats)
	split  int // keys per CTA along the key axis (0: all)
	// rowsPerSeq > 0: rows m use sequence m / rowsPerSeq of seqKeys keys.
	rowsPerSeq, seqKeys int
	kidx                buffer // [M][kidxLd] int32 candidate keys, or zero
	kidxLd              int
	out                 buffer // [M][ld] float32
	// nostore (benchmarks only): the diagnostic kernel that computes every
	// logit and stores none, to time the cost of writing them.
	nostore bool
}

func (d *device) fp8Logits(a fp8Args) error {
	if d.info.Major*10+d.info.Minor < 89 {
		return fmt.Errorf("kernels: FP8 tensor-core logits need compute capability 8.9 or newer; %s has %d.%d", d.info.Name, d.info.Major, d.info.Minor)
	}
	if a.kidx.p != 0 && !a.single {
		return fmt.Errorf("kernels: fp8Logits: candidate lists need one query per CTA")
	}
	v := d.fp8Version()
	switch v {
	case 3, 4, 5, 6, 60, 7, 8, 12:
	default:
		return fmt.Errorf("kernels: FP8 logits kernel version %d does not exist (3, 4, 5, 6, 60, 7, 8 or 12)", v)
	}
	if v >= 4 && d.info.Arch != "sm_90a" {
		return fmt.Errorf("kernels: the wgmma FP8 kernel needs sm_90a; %s is %s", d.info.Name, d.info.Arch)
	}
	qb, _, smem, err := fp8Layout(v, a.heads, a.single)
	if err != nil {
		return err
	}
	name, threads := fmt.Sprintf("fp8_logits_h%d_q%d", a.heads, qb), fp8Threads
	switch v {
	case 4:
		name = fmt.Sprintf("fp8w_logits_h%d_q%d", a.heads, qb)
	case 6:
		name = fmt.Sprintf("fp8s_logits_h%d_q%d_sw1", a.heads, qb)
	case 60:
		name = fmt.Sprintf("fp8s_logits_h%d_q%d_sw0", a.heads, qb)
	case 7:
		name = fmt.Sprintf("fp8p_logits_h%d_q%d", a.heads, qb)
	case 8:
		name = fmt.Sprintf("fp8q_logits_h%d_q%d", a.heads, qb)
	case 12:
		name = fmt.Sprintf("fp8r_logits_h%d_q%d", a.heads, qb)
	case 5:
		nw := d.fp8Warpgroups(a.heads, qb)
		name, threads = fmt.Sprintf("fp8x_logits_h%d_q%d_w%d", a.heads, qb, nw), 128*nw+32
	}
	if a.nostore {
		if (v != 8 && v != 12) || a.single || (a.heads != 64 && a.heads != 8) {
			return fmt.Errorf("kernels: the no-store diagnostic exists for versions 8 and 12, 64 or 8 heads, tile mode only")
		}
		name = fmt.Sprintf("fp8%sd_logits_h%d_q%d", map[int]string{8: "q", 12: "r"}[v], a.heads, qb)
	}
	split := a.split
	if split <= 0 {
		split = max(a.maxKe, 1)
	}
	g := dims{(a.M + qb - 1) / qb, (a.maxKe + split - 1) / split, 1}
	return d.launch(name, g, threads, smem,
		a.q8, a.k8, a.ks, a.w, a.ke, a.M, split, a.ld, a.rowsPerSeq, a.seqKeys, a.kidx, a.kidxLd, a.out)
}

// fp8GatherHeads copies each row's h routed heads (heads [M][h] int32,
// ascending) and their weights into dense [M][h] tensors.
func (d *device) fp8GatherHeads(q8, w, heads buffer, M, H, h int, q8r, wr buffer) error {
	return d.launch("fp8_gather_heads", dims{M, 1, 1}, 128, 0, q8, w, heads, M, H, h, q8r, wr)
}

// uploadAt copies s into b starting at byte offset off (one sequence of a
// batch of key caches).
func uploadAt[T any](b buffer, off int, s []T) error {
	if len(s) == 0 {
		return nil
	}
	sub := buffer{p: b.p + cu.DevicePtr(off), bytes: b.bytes - int64(off)}
	return upload(sub, s)
}

// memcpyDtoD copies n bytes between device buffers.
func memcpyDtoD(dst, src buffer, n int64) error {
	if n > dst.bytes || n > src.bytes {
		return fmt.Errorf("kernels: internal: copy of %d bytes between %d- and %d-byte buffers", n, src.bytes, dst.bytes)
	}
	if err := cu.MemcpyDtoD(dst.p, src.p, n); err != nil {
		return fmt.Errorf("kernels: device copy of %d bytes: %v", n, err)
	}
	return nil
}
