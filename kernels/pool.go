//go:build cuda

package kernels

// Launch code for pool.cu.

// poolFull writes the means of the ⌊N/B⌋ full key blocks of size B, [nb][D].
func (d *device) poolFull(k buffer, N, D, B int, out buffer) error {
	nb := N / B
	return d.launch("pool_full", grid1(nb*D, 256), 256, 0, k, D, B, nb, out)
}

// poolOwn writes, for rows [row0, row0+rows), the mean of each row's own
// block of size B: causal ([start, p_t]) or reference (the whole block).
func (d *device) poolOwn(k, qpos buffer, row0, rows, N, D, B int, reference bool, out buffer) error {
	return d.launch("pool_own", grid1(rows*D, 256), 256, 0, k, qpos, row0, rows, N, D, B, reference, out)
}
