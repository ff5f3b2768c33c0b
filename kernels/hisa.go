//go:build cuda

package kernels

// Launch code for hisa.cu.

const hisaThreads = 128 // HB_THREADS

// hisaBlockScores writes bs[r, b] for b ≤ ⌊p_t/B⌋ ([rows][ldb] floats);
// maxBlocks is the largest block count of the chunk.
func (d *device) hisaBlockScores(q, w, qpos, kfull, kown buffer, row0, rows, H, D, B, maxBlocks, ldb int, out buffer) error {
	smem := (H*D + H + hisaThreads*(D+1)) * 4
	g := dims{(maxBlocks + hisaThreads - 1) / hisaThreads, rows, 1}
	return d.launch("hisa_block_scores", g, hisaThreads, smem, q, w, qpos, kfull, kown, row0, H, D, B, ldb, out)
}

// hisaExpand turns each row's chosen blocks into candidate tokens.
func (d *device) hisaExpand(chosen buffer, chLd int, chCnt, qpos buffer, row0, rows, B int, cand buffer, candLd int, candCnt buffer) error {
	return d.launch("hisa_expand", dims{rows, 1, 1}, 256, 0, chosen, chLd, chCnt, qpos, row0, B, cand, candLd, candCnt)
}
