//go:build cuda

package kernels

import "fmt"

// Launch code for logitsbf16.cu: the index logits from bf16 q and k on the
// tensor cores (the "from bf16" inputs; the FP8 kernels take the
// quantised ones).

// bf16Args are the operands of one bf16_logits launch.
type bf16Args struct {
	heads  int
	single bool   // one query per CTA (decode)
	q      buffer // [M][heads][128] bf16
	k      buffer // [N][128] bf16 (per sequence when rowsPerSeq > 0)
	w      buffer // [M][heads] float32
	ke     buffer // [M] int32: keys row m scores
	M      int
	maxKe  int // the largest ke
	ld     int // logits row stride (floats)
	split  int // keys per CTA along the key axis (0: all)
	// rowsPerSeq > 0: rows m use sequence m / rowsPerSeq of seqKeys keys.
	rowsPerSeq, seqKeys int
	out                 buffer // [M][ld] float32
}

// bf16Layout is logitsbf16.cu's tiling for a head count: queries per CTA
// and dynamic shared memory (Q in two panels, two 16 KB stages for each of
// the two warpgroups, the weights, 1 KB of alignment slack).
func bf16Layout(heads int, single bool) (qb, smem int, err error) {
	switch heads {
	case 8, 16, 32, 64:
	default:
		return 0, 0, fmt.Errorf("kernels: the bf16 logits kernel takes 8, 16, 32 or 64 heads, not %d", heads)
	}
	qb = 128 / heads
	if single {
		qb = 1
	}
	cols := qb * heads
	return qb, 1024 + cols*256 + 2*2*64*256 + cols*4, nil
}

func (d *device) bf16Logits(a bf16Args) error {
	if d.info.Arch != "sm_90a" {
		return fmt.Errorf("kernels: the bf16 wgmma logits kernel needs sm_90a; %s is %s", d.info.Name, d.info.Arch)
	}
	qb, smem, err := bf16Layout(a.heads, a.single)
	if err != nil {
		return err
	}
	split := a.split
	if split <= 0 {
		split = max(a.maxKe, 1)
	}
	g := dims{(a.M + qb - 1) / qb, (a.maxKe + split - 1) / split, 1}
	return d.launch(fmt.Sprintf("bf16_logits_h%d_q%d", a.heads, qb), g, fp8Threads, smem,
		a.q, a.k, a.w, a.ke, a.M, split, a.ld, a.rowsPerSeq, a.seqKeys, a.out)
}
