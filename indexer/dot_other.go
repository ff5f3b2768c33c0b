//go:build !amd64

package indexer

const haveAVX2 = false

func dotTile(a []float32, lda int, b []float32, d int, c []float32, ldc int) {
	dotTileGo(a, lda, b, d, c, ldc)
}
