//go:build cuda

package kernels

// Launch code for topk.cu.

const topkThreads = 1024 // TK_THREADS

// topk selects, for each of rows rows, the k best of scores[r, 0:lens[r])
// (cand is the zero buffer) or of scores[r, cand[r, i]] for i < lens[r],
// writing ascending indices (or candidate values) to out [rows][outLd] and
// the count min(k, lens[r]) to outCount.
func (d *device) topk(scores buffer, ld int, cand buffer, candLd int, lens buffer, rows, k int, out buffer, outLd int, outCount buffer) error {
	return d.launch("topk_rows", dims{rows, 1, 1}, topkThreads, 0,
		scores, ld, cand, candLd, lens, k, out, outLd, outCount)
}
