//go:build cuda

package kernels

import "fmt"

// Launch code for logits.cu.

const (
	logitsThreads = 256  // LG_THREADS
	keysPerBlock  = 1024 // keys one CTA walks through (a multiple of every tile)
)

// logitsLayout mirrors the kernel's tiling for kpt keys per thread: rows
// per CTA and the dynamic shared memory for nh heads of dimension D.
func logitsLayout(kpt, nh, D int) (rowsPerCTA, smem int) {
	tile := 16 * kpt
	nhp := (nh + 7) / 8 * 8
	hg := nhp / 8
	hgt := min(hg, 16)
	rb := 16 / hgt
	d4 := (D + 3) / 4 * 4
	floats := rb*nhp*d4 + tile*(d4+4) + rb*nhp*tile + rb*nhp
	return rb, floats * 4
}

// logitsKPT picks the kernel version: 8 keys per thread (version 2) where
// its shared memory fits, else 4 (version 1). d.logitsKPT forces one.
func (d *device) logitsKPT(nh, D int) int {
	if d.forceKPT != 0 {
		return d.forceKPT
	}
	if _, smem := logitsLayout(8, nh, D); smem <= d.smemOptin {
		return 8
	}
	return 4
}

// logits writes out[r, s] = Σ_j w·ReLU(q·k) over nh heads for the chunk
// rows [row0, row0+rows) and every key s ≤ p_t; heads is [rows][nh]
// (chunk-relative, ascending per row) or the zero buffer for all H heads
// (nh = H). maxVis is the largest visible count in the chunk; ld the row
// stride of out in floats.
func (d *device) logits(q, k, w, qpos, heads buffer, nh, H, D, N, row0, rows, maxVis, ld int, out buffer) error {
	kpt := d.logitsKPT(nh, D)
	rb, smem := logitsLayout(kpt, nh, D)
	g := dims{(maxVis + keysPerBlock - 1) / keysPerBlock, (rows + rb - 1) / rb, 1}
	return d.launch(fmt.Sprintf("logits_heads%d", kpt), g, logitsThreads, smem,
		q, k, w, qpos, heads, nh, H, D, N, row0, rows, keysPerBlock, ld, out)
}
