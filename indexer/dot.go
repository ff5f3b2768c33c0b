package indexer

// panelWidth is the number of keys in one packed panel; it matches the
// AVX2 tile (three 8-wide vectors).
const panelWidth = 24

// tileHeads is the number of heads one tile covers.
const tileHeads = 4

// packPanels lays out n keys of dimension d ([n][d] row-major) as panels of
// panelWidth keys, each stored [d][panelWidth], so that the inner loop of the
// tile reads consecutive memory. Keys past n are zero.
func packPanels(k []float32, n, d int) []float32 {
	np := (n + panelWidth - 1) / panelWidth
	out := make([]float32, np*d*panelWidth)
	for s := 0; s < n; s++ {
		p, j := s/panelWidth, s%panelWidth
		base := p * d * panelWidth
		row := k[s*d : s*d+d]
		for x, v := range row {
			out[base+x*panelWidth+j] = v
		}
	}
	return out
}

// dotTileGo is the portable version of the tile:
// c[i*ldc+j] = max(0, Σ_x a[i*lda+x]·b[x*panelWidth+j]) for i < 4, j < 24.
func dotTileGo(a []float32, lda int, b []float32, d int, c []float32, ldc int) {
	for i := 0; i < tileHeads; i++ {
		var acc [panelWidth]float32
		ai := a[i*lda : i*lda+d]
		for x, av := range ai {
			bx := b[x*panelWidth : x*panelWidth+panelWidth]
			for j := range acc {
				acc[j] += av * bx[j]
			}
		}
		ci := c[i*ldc : i*ldc+panelWidth]
		for j, v := range acc {
			if v < 0 {
				v = 0
			}
			ci[j] = v
		}
	}
}

// reluDots fills rel[h*ldc+s] = ReLU(q[h]·k[s]) for h < hpad and every key
// s in the first np panels. q holds hpad rows of d values (hpad a multiple
// of tileHeads); ldc is at least np*panelWidth.
func reluDots(q []float32, hpad, d int, panels []float32, np int, rel []float32, ldc int) {
	psize := d * panelWidth
	for p := 0; p < np; p++ {
		b := panels[p*psize : (p+1)*psize]
		for h := 0; h < hpad; h += tileHeads {
			dotTile(q[h*d:], d, b, d, rel[h*ldc+p*panelWidth:], ldc)
		}
	}
}
