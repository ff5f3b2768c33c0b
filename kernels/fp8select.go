//go:build cuda

package kernels

import (
	"errors"
	"fmt"

	"gorgonia.org/cu"
)

// Launch code for fp8select.cu: fused scoring and selection, the top-k of
// the FP8 logits without writing them (the steps are in the .cu header).

// fp8SelectStride is S, the sample's key stride: every 32nd key, 1/32 of
// the logits work, and r = ⌈2k/S⌉ + 8 sample logits per threshold.
const fp8SelectStride = 32

// fp8SelectRank and fp8SelectCap replace r and capReg when positive
// (tests: a threshold too high, regions too small, so that rows fail).
var fp8SelectRank, fp8SelectCap int

// errFP8SelectUnsupported marks a problem fused selection does not run:
// another logits kernel or card, or a k whose pick buffer does not fit in
// shared memory. CompareDSA then leaves the fused rows out.
var errFP8SelectUnsupported = errors.New("kernels: fused selection unsupported")

// fp8Select is one problem's plan and scratch: the sample cache and logits,
// the thresholds, the survivor regions and the failure count.
type fp8Select struct {
	a               fp8Args // the problem (out: the fallback's full logits)
	seqs, k         int
	ns, ldS, splitS int // sample keys a sequence, sample row stride and split
	r               int // the sample rank that sets the threshold
	parts, split    int // key splits of the filtered kernel, keys in each
	capReg          int // survivors a region (a lane group's of a warp of a split) holds
	k8s, kss, keS   buffer
	sample          buffer // [M][ldS] sample logits
	thr             buffer // [M] thresholds
	pairs, counts   buffer // [M][parts][64][capReg] (logit bits, key); [M][parts][64]
	fail            buffer // one int32: rows the pairs could not decide
}

// newFP8Select plans the fused selection of the top k of a's logits (keys
// a.seqKeys a sequence, seqs sequences; a.out must hold the full [M][ld]
// logits, which only the fallback writes) and allocates its scratch in ar.
func (d *device) newFP8Select(ar *arena, a fp8Args, seqs, k int) (*fp8Select, error) {
	if d.fp8Version() != 12 || d.info.Arch != "sm_90a" {
		return nil, fmt.Errorf("%w: it needs the version 12 FP8 logits kernel on sm_90a (this run: version %d on %s)", errFP8SelectUnsupported, d.fp8Version(), d.info.Arch)
	}
	if a.kidx.p != 0 || a.nostore {
		return nil, fmt.Errorf("kernels: fused selection scores whole key ranges, not candidate lists")
	}
	if k < 1 || a.M < 1 || a.maxKe < 1 {
		return nil, fmt.Errorf("kernels: fused selection of %d of %d keys over %d rows", k, a.maxKe, a.M)
	}
	if _, _, _, err := fp8Layout(12, a.heads, a.single); err != nil {
		return nil, err
	}
	if a.rowsPerSeq > 0 && a.seqKeys < a.maxKe {
		return nil, fmt.Errorf("kernels: fused selection: sequences of %d keys, but a row scores %d", a.seqKeys, a.maxKe)
	}
	const S = fp8SelectStride
	p := &fp8Select{a: a, seqs: max(seqs, 1), k: k}
	if a.rowsPerSeq == 0 {
		// One key cache: the sample covers the keys any row scores.
		p.a.seqKeys, p.seqs = a.maxKe, 1
	}
	p.ns = (p.a.seqKeys + S - 1) / S
	p.ldS = (p.ns + 63) / 64 * 64
	p.r = (2*k+S-1)/S + 8
	if fp8SelectRank > 0 {
		p.r = fp8SelectRank
	}
	if a.split > 0 {
		p.splitS = max((a.split/S+255)/256*256, 256)
	}
	p.split = a.split
	if p.split <= 0 {
		p.split = a.maxKe
	}
	p.parts = (a.maxKe + p.split - 1) / p.split
	// A lane group sees 2 of every 128 keys of its split: capReg that many
	// never overflows; k/8 (or 64) bounds the memory, far above the
	// (2k + 8S)/64 a region gets on average in a row of one split.
	p.capReg = min((p.split+63)/64+2, max(k/8, 64))
	if uint64(256*p.parts)*uint64(p.capReg) >= 1<<32 {
		return nil, fmt.Errorf("kernels: fused selection: %d key splits of %d keys are too many for one row", p.parts, p.split)
	}
	if smem := topkFastSmem(k) + 4*(64*p.parts+1); smem+256 > d.smemOptin {
		return nil, fmt.Errorf("%w: picking %d of a row needs %d bytes of shared memory; %s allows %d", errFP8SelectUnsupported, k, smem, d.info.Name, d.smemOptin)
	}
	if fp8SelectCap > 0 {
		p.capReg = fp8SelectCap
	}
	var err error
	alloc := func(b *buffer, bytes int, what string) {
		if err == nil {
			*b, err = ar.alloc(int64(bytes), what)
		}
	}
	alloc(&p.k8s, p.seqs*p.ns*128, "sampled keys")
	alloc(&p.kss, p.seqs*p.ns*4, "sampled key scales")
	alloc(&p.keS, a.M*4, "sample key counts")
	alloc(&p.sample, a.M*p.ldS*4, "sample logits")
	alloc(&p.thr, a.M*4, "thresholds")
	alloc(&p.pairs, a.M*p.parts*64*p.capReg*8, "survivor pairs")
	alloc(&p.counts, a.M*p.parts*64*4, "survivor counts")
	alloc(&p.fail, 4, "failure count")
	if err != nil {
		return nil, err
	}
	return p, nil
}

// fp8SelectRun selects, for each row m, the top k of its logits over keys
// [0, ke[m]) into out [M][outLd] (ascending key order, topk's contract) and
// outCount, exactly as fp8Logits followed by topkFast would.
func (d *device) fp8SelectRun(p *fp8Select, out buffer, outLd int, outCount buffer) error {
	if err := d.fp8SelectThreshold(p); err != nil {
		return err
	}
	if err := d.fp8SelectScore(p); err != nil {
		return err
	}
	return d.fp8SelectPick(p, out, outLd, outCount)
}

// fp8SelectThreshold is steps 1–3: the sample, its logits, the thresholds.
func (d *device) fp8SelectThreshold(p *fp8Select) error {
	for _, f := range []func(*fp8Select) error{d.fp8SampleKeys, d.fp8SampleLogits, d.fp8SampleKth} {
		if err := f(p); err != nil {
			return err
		}
	}
	return nil
}

func (d *device) fp8SampleKeys(p *fp8Select) error {
	a := p.a
	gx := max((8*p.ns+255)/256, (a.M+255)/256)
	return d.launch("fp8_sample_keys", dims{gx, p.seqs, 1}, 256, 0,
		a.k8, a.ks, a.seqKeys, fp8SelectStride, a.ke, a.M, p.k8s, p.kss, p.keS, p.fail)
}

func (d *device) fp8SampleLogits(p *fp8Select) error {
	a, S := p.a, fp8SelectStride
	return d.fp8Logits(fp8Args{heads: a.heads, single: a.single, q8: a.q8, k8: p.k8s, ks: p.kss, w: a.w,
		ke: p.keS, M: a.M, maxKe: (a.maxKe + S - 1) / S, ld: p.ldS, split: p.splitS,
		rowsPerSeq: a.rowsPerSeq, seqKeys: p.ns, out: p.sample})
}

func (d *device) fp8SampleKth(p *fp8Select) error {
	return d.launch("fp8_sample_kth", dims{(p.a.M + 3) / 4, 1, 1}, 128, 0, p.sample, p.ldS, p.keS, p.a.M, p.r, p.thr)
}

// fp8SelectScore is step 4: every logit, the survivors kept.
func (d *device) fp8SelectScore(p *fp8Select) error {
	a := p.a
	qb, _, smem, err := fp8Layout(12, a.heads, a.single)
	if err != nil {
		return err
	}
	return d.launch(fmt.Sprintf("fp8rf_logits_h%d_q%d", a.heads, qb), dims{(a.M + qb - 1) / qb, p.parts, 1}, fp8Threads,
		smem, a.q8, a.k8, a.ks, a.w, a.ke, a.M, p.split, a.rowsPerSeq, a.seqKeys, p.thr, p.pairs, p.counts, p.capReg)
}

// fp8SelectPick is steps 5–6: the selection from the survivors, and the
// fallback that redoes every row when one failed.
func (d *device) fp8SelectPick(p *fp8Select, out buffer, outLd int, outCount buffer) error {
	if err := d.fp8PickPairs(p, out, outLd, outCount); err != nil {
		return err
	}
	return d.fp8SelectFallback(p, out, outLd, outCount)
}

func (d *device) fp8PickPairs(p *fp8Select, out buffer, outLd int, outCount buffer) error {
	a, nreg := p.a, p.parts*64
	return d.launch("topk_fast_pairs", dims{a.M, 1, 1}, topkFastThreads, topkFastSmem(p.k)+4*(nreg+1),
		p.pairs, p.capReg, p.counts, nreg, p.thr, a.ke, p.k, out, outLd, outCount, topkFastCap(p.k), p.fail)
}

// fp8SelectFallback launches the unfused pipeline gated on the failure
// count: its CTAs return at once unless a row failed.
func (d *device) fp8SelectFallback(p *fp8Select, out buffer, outLd int, outCount buffer) error {
	a := p.a
	qb, _, smem, err := fp8Layout(12, a.heads, a.single)
	if err != nil {
		return err
	}
	if err := d.launch(fmt.Sprintf("fp8rg_logits_h%d_q%d", a.heads, qb), dims{(a.M + qb - 1) / qb, p.parts, 1}, fp8Threads, smem,
		a.q8, a.k8, a.ks, a.w, a.ke, a.M, p.split, a.ld, a.rowsPerSeq, a.seqKeys, a.out, p.fail); err != nil {
		return err
	}
	return d.topkFastGated(a.out, a.ld, buffer{}, 0, a.ke, a.M, p.k, out, outLd, outCount, p.fail)
}

// failures reads how many rows the last run sent to the fallback.
func (p *fp8Select) failures() (int, error) {
	var n [1]int32
	if err := cu.Synchronize(); err != nil {
		return 0, fmt.Errorf("kernels: fused selection: %v", err)
	}
	if err := download(n[:], p.fail); err != nil {
		return 0, err
	}
	return int(n[0]), nil
}
