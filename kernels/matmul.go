//go:build cuda

package kernels

import "fmt"

// Launch code for matmul.cu, and GPU.MatMulT, the products of
// `misabench trace convert` (convert.Multiplier).

// Tile sizes of matmul_t (MM_BN, MM_BM in matmul.cu).
const (
	matMulTileN = 64
	matMulTileM = 64
)

// matMulT writes Y [n][m] = X [n][k] · A [m][k]ᵀ (float64 sums, fp32 out).
func (d *device) matMulT(x, a buffer, n, m, k int, y buffer) error {
	g := dims{(n + matMulTileN - 1) / matMulTileN, (m + matMulTileM - 1) / matMulTileM, 1}
	return d.launch("matmul_t", g, 256, 0, x, a, n, m, k, y)
}

// matMulBudget is the device memory one MatMulT call may use: X, A and Y
// of one chunk together.
const matMulBudget = 1 << 30

// MatMulT sets y[i·m+j] = Σ_l x[i·k+l]·a[j·k+l] for x [n][k], a [m][k] and
// y [n][m], row-major fp32, with float64 sums in convert.matVec's order, so
// that y is what convert computes on the CPU, bit for bit. It implements
// convert.Multiplier. Rows of x (and, for a very large a, rows of a) go to
// the device in chunks so that one call holds at most 1 GiB of device
// memory; the call returns when y is filled.
func (g *GPU) MatMulT(y, x, a []float32, n, m, k int) error {
	return g.matMulT(y, x, a, n, m, k, matMulBudget)
}

func (g *GPU) matMulT(y, x, a []float32, n, m, k int, budget int64) error {
	if n < 0 || m < 0 || k < 0 {
		return fmt.Errorf("kernels: MatMulT: negative shape %d×%d×%d", n, m, k)
	}
	if int64(len(x)) != int64(n)*int64(k) || int64(len(a)) != int64(m)*int64(k) || int64(len(y)) != int64(n)*int64(m) {
		return fmt.Errorf("kernels: MatMulT: x has %d values, a %d, y %d; want %d×%d, %d×%d, %d×%d",
			len(x), len(a), len(y), n, k, m, k, n, m)
	}
	if n == 0 || m == 0 {
		return nil
	}
	// Columns per chunk: all of a when it takes at most half the budget;
	// the grid's y extent caps it too.
	rowA := int64(k) * 4
	mc := int64(m)
	if mc*rowA > budget/2 {
		mc = max(1, budget/2/max(rowA, 1))
	}
	mc = min(mc, 65535*matMulTileM)
	// Rows per chunk: what is left over X and Y rows.
	nc := (budget - mc*rowA) / (rowA + mc*4)
	if nc < 1 {
		return fmt.Errorf("kernels: MatMulT: one row of %d values and %d of its outputs do not fit in %d MiB of device memory",
			k, mc, budget/mib)
	}
	nc = min(nc, int64(n))
	return g.d.do(func() error {
		d := g.d
		var ar arena
		defer ar.free()
		xB, err := ar.alloc(nc*rowA, "matmul X rows")
		if err != nil {
			return err
		}
		aB, err := ar.alloc(mc*rowA, "matmul A rows")
		if err != nil {
			return err
		}
		yB, err := ar.alloc(nc*mc*4, "matmul outputs")
		if err != nil {
			return err
		}
		var part []float32 // a chunk's outputs when it holds only some columns
		for m0 := 0; m0 < m; m0 += int(mc) {
			mw := min(int(mc), m-m0)
			if err := upload(aB, a[m0*k:(m0+mw)*k]); err != nil {
				return err
			}
			for n0 := 0; n0 < n; n0 += int(nc) {
				nw := min(int(nc), n-n0)
				if err := upload(xB, x[n0*k:(n0+nw)*k]); err != nil {
					return err
				}
				if err := poison(yB, 0x7FFFFFFF); err != nil {
					return err
				}
				if err := d.matMulT(xB, aB, nw, mw, k, yB); err != nil {
					return err
				}
				if mw == m {
					if err := download(y[n0*m:(n0+nw)*m], yB); err != nil {
						return err
					}
					continue
				}
				if cap(part) < nw*mw {
					part = make([]float32, nw*mw)
				}
				part = part[:nw*mw]
				if err := download(part, yB); err != nil {
					return err
				}
				for i := 0; i < nw; i++ {
					copy(y[(n0+i)*m+m0:(n0+i)*m+m0+mw], part[i*mw:(i+1)*mw])
				}
			}
		}
		// download waits for the kernel, and reports its failure.
		return nil
	})
}
