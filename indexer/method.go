package indexer

import (
	"fmt"
	"strings"
)

// Kind is a family of selection methods.
type Kind string

// The method families of DESIGN.md §1.
const (
	DSA        Kind = "dsa"         // all heads, dense top-k (the reference)
	MISA       Kind = "misa"        // routed heads, flat
	MISADagger Kind = "misa-dagger" // routed heads, then re-rank k1 candidates with all heads
	HISA       Kind = "hisa"        // block-first: top-m blocks, then all heads inside them
)

// Router picks the heads a MISA query uses.
type Router string

// Router variants (DESIGN.md §1).
const (
	RouterPooled  Router = "pooled"  // |w|·Σ_b ReLU(q·kbar_b) over visible pooled blocks
	RouterSelfKey Router = "selfkey" // w·ReLU(q·k[p_t]), the authors' decode path
	RouterQNorm   Router = "qnorm"   // ‖q‖
	RouterOracle  Router = "oracle"  // heads contributing most to DSA's own top-k
)

// Pool says how the query's own, partial block is pooled by the router.
type Pool string

// Pooling modes.
const (
	// PoolCausal averages the query's own block over [block start, p_t] only.
	PoolCausal Pool = "causal"
	// PoolReference averages the query's own block over all its tokens,
	// future ones included, as the authors' prefill code does.
	PoolReference Pool = "reference"
)

// Method is one selection method with its parameters. Fields a kind does not
// use are ignored (and left zero by Normalize).
type Method struct {
	Kind Kind `json:"kind"`
	// Heads is h, the number of routed heads (MISA, MISA†).
	Heads int `json:"heads,omitempty"`
	// Block is B, the router's pooling block (MISA, MISA† with RouterPooled).
	Block  int    `json:"block,omitempty"`
	Router Router `json:"router,omitempty"`
	Pool   Pool   `json:"pool,omitempty"`
	// Stage1 is k1, the candidate count of MISA†.
	Stage1 int `json:"stage1,omitempty"`
	// HisaBlock is B_h and HisaBlocks is m (HISA).
	HisaBlock  int `json:"hisa_block,omitempty"`
	HisaBlocks int `json:"hisa_blocks,omitempty"`
}

// Defaults are the paper's parameters.
var Defaults = Method{
	Heads:      8,
	Block:      1024,
	Router:     RouterPooled,
	Pool:       PoolCausal,
	Stage1:     8192,
	HisaBlock:  128,
	HisaBlocks: 64,
}

// ParseKind accepts the method names used on the command line.
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "dsa":
		return DSA, nil
	case "misa":
		return MISA, nil
	case "misa-dagger", "misa†", "misadagger", "misa2":
		return MISADagger, nil
	case "hisa":
		return HISA, nil
	}
	return "", fmt.Errorf("unknown method %q (want dsa, misa, misa-dagger or hisa)", s)
}

// Name is a short label for tables, e.g. "misa(h=8,pooled)".
func (m Method) Name() string {
	switch m.Kind {
	case MISA:
		s := fmt.Sprintf("misa(h=%d,%s", m.Heads, m.Router)
		if m.Router == RouterPooled {
			s += fmt.Sprintf(",B=%d", m.Block)
			if m.Pool == PoolReference {
				s += ",ref"
			}
		}
		return s + ")"
	case MISADagger:
		s := fmt.Sprintf("misa†(h=%d,%s", m.Heads, m.Router)
		if m.Router == RouterPooled {
			s += fmt.Sprintf(",B=%d", m.Block)
			if m.Pool == PoolReference {
				s += ",ref"
			}
		}
		return s + fmt.Sprintf(",k1=%d)", m.Stage1)
	case HISA:
		return fmt.Sprintf("hisa(B=%d,m=%d)", m.HisaBlock, m.HisaBlocks)
	}
	return string(m.Kind)
}

// Routed reports whether the method routes heads.
func (m Method) Routed() bool { return m.Kind == MISA || m.Kind == MISADagger }

// Normalize clears the fields the kind does not use, so that two methods
// that select the same way compare equal.
func (m Method) Normalize() Method {
	out := Method{Kind: m.Kind}
	switch m.Kind {
	case MISA, MISADagger:
		out.Heads, out.Router = m.Heads, m.Router
		if m.Router == RouterPooled {
			out.Block, out.Pool = m.Block, m.Pool
		}
		if m.Kind == MISADagger {
			out.Stage1 = m.Stage1
		}
	case HISA:
		out.HisaBlock, out.HisaBlocks = m.HisaBlock, m.HisaBlocks
	}
	return out
}

// Validate checks the parameters against a model with H heads.
func (m Method) Validate(H int) error {
	switch m.Kind {
	case DSA:
		return nil
	case MISA, MISADagger:
		if m.Heads < 1 || m.Heads > H {
			return fmt.Errorf("%s: heads h=%d out of range [1, %d]", m.Kind, m.Heads, H)
		}
		switch m.Router {
		case RouterPooled:
			if m.Block < 1 {
				return fmt.Errorf("%s: router block B=%d must be at least 1", m.Kind, m.Block)
			}
			if m.Pool != PoolCausal && m.Pool != PoolReference {
				return fmt.Errorf("%s: unknown router pooling %q (want causal or reference)", m.Kind, m.Pool)
			}
		case RouterSelfKey, RouterQNorm, RouterOracle:
		default:
			return fmt.Errorf("%s: unknown router %q (want pooled, selfkey, qnorm or oracle)", m.Kind, m.Router)
		}
		if m.Kind == MISADagger && m.Stage1 < 1 {
			return fmt.Errorf("%s: stage-1 candidates k1=%d must be at least 1", m.Kind, m.Stage1)
		}
		return nil
	case HISA:
		if m.HisaBlock < 1 {
			return fmt.Errorf("hisa: block B_h=%d must be at least 1", m.HisaBlock)
		}
		if m.HisaBlocks < 1 {
			return fmt.Errorf("hisa: blocks m=%d must be at least 1", m.HisaBlocks)
		}
		return nil
	}
	return fmt.Errorf("unknown method kind %q", m.Kind)
}

// Cost is the number of length-D dot products a method spends on a query
// that sees L keys, for a model with H heads (DESIGN.md §1). The router's
// share depends on the router: pooled H·⌈L/B⌉, selfkey and qnorm H (one dot
// product or norm per head), oracle H·L (it needs DSA's own scores, so it is
// an upper bound, never a saving).
func (m Method) Cost(H, L int) float64 {
	ceil := func(a, b int) float64 { return float64((a + b - 1) / b) }
	switch m.Kind {
	case MISA, MISADagger:
		c := float64(m.Heads * L)
		switch m.Router {
		case RouterPooled:
			c += float64(H) * ceil(L, max(m.Block, 1))
		case RouterOracle:
			c += float64(H * L)
		default:
			c += float64(H)
		}
		if m.Kind == MISADagger {
			c += float64(H * m.Stage1)
		}
		return c
	case HISA:
		return float64(H)*ceil(L, max(m.HisaBlock, 1)) + float64(H*m.HisaBlocks*m.HisaBlock)
	}
	return float64(H * L)
}
