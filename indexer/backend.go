package indexer

import (
	"context"
	"fmt"
)

// Input is one layer of indexer inputs with its shape.
//
// Q is [len(QPos)][H][D], K is [N][D], W is [len(QPos)][H], row-major fp32.
// Query row t sees keys [0, QPos[t]].
type Input struct {
	H, D, TopK, N int
	QPos          []int64
	Q, K, W       []float32
}

// Rows is the number of query rows.
func (in *Input) Rows() int { return len(in.QPos) }

// Visible is the number of keys row t sees.
func (in *Input) Visible(t int) int { return int(in.QPos[t]) + 1 }

// Check validates the shape of the input.
func (in *Input) Check() error {
	if in.H < 1 || in.D < 1 {
		return fmt.Errorf("input: heads %d and head dim %d must be positive", in.H, in.D)
	}
	if in.TopK < 1 {
		return fmt.Errorf("input: top-k %d must be positive", in.TopK)
	}
	nq := len(in.QPos)
	if len(in.Q) != nq*in.H*in.D {
		return fmt.Errorf("input: q has %d values, want %d×%d×%d", len(in.Q), nq, in.H, in.D)
	}
	if len(in.W) != nq*in.H {
		return fmt.Errorf("input: w has %d values, want %d×%d", len(in.W), nq, in.H)
	}
	if len(in.K) != in.N*in.D {
		return fmt.Errorf("input: k has %d values, want %d×%d", len(in.K), in.N, in.D)
	}
	for t, p := range in.QPos {
		if p < 0 || p >= int64(in.N) {
			return fmt.Errorf("input: q_pos[%d] = %d outside [0, %d)", t, p, in.N)
		}
		if t > 0 && p < in.QPos[t-1] {
			return fmt.Errorf("input: q_pos not ascending at row %d", t)
		}
	}
	return nil
}

// Output is what a backend returns for one layer.
type Output struct {
	// Reference is DSA's selection per row, ascending token indices.
	Reference [][]int32
	// HeadRank lists, per row, all heads ordered by their contribution
	// Σ_{s∈DSA set} w·ReLU(q·k_s) to DSA's own selection, largest first,
	// ties to the lower head; its first h entries are the oracle heads.
	HeadRank [][]int
	// Methods holds one entry per requested method, in order.
	Methods []MethodOutput
}

// MethodOutput is one method's selection on one layer.
type MethodOutput struct {
	Method Method
	// Sets is the selection per row, ascending token indices.
	Sets [][]int32
	// Heads is the routed heads per row, ascending (routed methods only).
	Heads [][]int
	// Mass is Σ_{s∈A} score_all(t,s) / Σ_{s∈G} score_all(t,s) per row, with
	// A the method's set and G DSA's (1 where both sums are zero).
	Mass []float64
}

// Backend runs selection methods on one layer. The CPU backend is the
// reference; every other backend must agree with it.
type Backend interface {
	Name() string
	Run(ctx context.Context, in *Input, methods []Method) (*Output, error)
}
