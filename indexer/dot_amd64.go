package indexer

import "golang.org/x/sys/cpu"

//go:noescape
func dotTile4x24AVX2(a *float32, lda int, b *float32, d int, c *float32, ldc int)

// haveAVX2 is read once at start-up; the kernel needs AVX2 and FMA3.
var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// dotTile computes one 4-head × 24-key tile of ReLU(q·k); see dotTileGo.
func dotTile(a []float32, lda int, b []float32, d int, c []float32, ldc int) {
	if haveAVX2 {
		// Bounds are checked here once so the assembly never reads or
		// writes outside the slices.
		_ = a[3*lda+d-1]
		_ = b[d*panelWidth-1]
		_ = c[3*ldc+panelWidth-1]
		dotTile4x24AVX2(&a[0], lda, &b[0], d, &c[0], ldc)
		return
	}
	dotTileGo(a, lda, b, d, c, ldc)
}
