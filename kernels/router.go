//go:build cuda

package kernels

// Launch code for router.cu. Router scores are float64 [rows][H].

const (
	routerThreads       = 128 // RT_THREADS
	routerPooledThreads = 256 // RP_THREADS
	routerTile          = 32  // RP_TILE
)

func (d *device) routerPooled(q, w, qpos, kfull, kown buffer, row0, rows, H, D, B int, out buffer) error {
	smem := H*8 + (H*D+routerTile*(D+1)+H*(routerTile+1))*4
	return d.launch("router_pooled", dims{rows, 1, 1}, routerPooledThreads, smem, q, w, qpos, kfull, kown, row0, H, D, B, out)
}

func (d *device) routerSelfKey(q, k, w, qpos buffer, row0, rows, H, D int, out buffer) error {
	return d.launch("router_selfkey", grid1(rows*H, 128), 128, 0, q, k, w, qpos, row0, rows, H, D, out)
}

func (d *device) routerQNorm(q buffer, row0, rows, H, D int, out buffer) error {
	return d.launch("router_qnorm", grid1(rows*H, 128), 128, 0, q, row0, rows, H, D, out)
}

// rankHeads ranks each row's H float64 scores (descending, ties to the
// lower head). heads (if set) receives the nh best heads ascending, [rows][nh];
// order (if set) every head by rank, [rows][H].
func (d *device) rankHeads(score buffer, rows, H, nh int, heads, order buffer) error {
	smem := (H+3)/4*4*8 + H*4
	return d.launch("rank_heads", dims{rows, 1, 1}, routerThreads, smem, score, H, nh, heads, order)
}
