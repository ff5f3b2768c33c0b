//go:build cuda

package kernels

// Launch code for stats.cu.

const (
	contribThreads = 256 // HC_THREADS
	contribTile    = 32  // HC_TILE
	massThreads    = 256 // MS_THREADS
)

// headContrib writes c[r, h] = w·Σ_{s∈ref} ReLU(q·k_s) (float64, [rows][H]).
func (d *device) headContrib(q, k, w buffer, row0, rows, H, D int, ref buffer, refLd int, refCnt, out buffer) error {
	smem := H*8 + (H*D+contribTile*(D+1)+H*(contribTile+1))*4
	return d.launch("head_contrib", dims{rows, 1, 1}, contribThreads, smem, q, k, w, row0, H, D, ref, refLd, refCnt, out)
}

// mass writes m[r] = Σ_{s∈set[r]} scores[r, s] in float64.
func (d *device) mass(scores buffer, ld int, set buffer, setLd int, cnt buffer, rows int, out buffer) error {
	return d.launch("mass_rows", dims{rows, 1, 1}, massThreads, 0, scores, ld, set, setLd, cnt, out)
}
