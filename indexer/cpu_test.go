package indexer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func allMethods(H int) []Method {
	var ms []Method
	ms = append(ms, Method{Kind: DSA})
	for _, r := range []Router{RouterPooled, RouterSelfKey, RouterQNorm, RouterOracle} {
		for _, pool := range []Pool{PoolCausal, PoolReference} {
			if r != RouterPooled && pool == PoolReference {
				continue
			}
			h := max(1, H/3)
			ms = append(ms,
				Method{Kind: MISA, Heads: h, Block: 16, Router: r, Pool: pool},
				Method{Kind: MISADagger, Heads: h, Block: 7, Router: r, Pool: pool, Stage1: 40},
			)
		}
	}
	ms = append(ms, Method{Kind: HISA, HisaBlock: 8, HisaBlocks: 3}, Method{Kind: HISA, HisaBlock: 5, HisaBlocks: 1})
	return ms
}

func run(t *testing.T, b Backend, in *Input, ms []Method) *Output {
	t.Helper()
	out, err := b.Run(context.Background(), in, ms)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCPUMatchesBruteForce(t *testing.T) {
	shapes := []struct{ H, D, N, nq, k int }{
		{5, 8, 300, 12, 20},
		{8, 3, 97, 9, 10},
		{4, 24, 500, 7, 64},
		{3, 1, 50, 5, 60}, // k larger than every row's view
	}
	for i, sh := range shapes {
		t.Run(fmt.Sprint(sh), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			in := randomInput(rng, sh.H, sh.D, sh.N, sh.nq, sh.k, true)
			ms := allMethods(sh.H)
			out := run(t, NewCPU(3), in, ms)
			want := bruteRun(in, ms)
			for r := range want {
				if !slices.Equal(out.Reference[r], want[r].ref) {
					t.Fatalf("row %d: reference %v, brute force %v", r, out.Reference[r], want[r].ref)
				}
				for j, m := range ms {
					if got := out.Methods[j].Sets[r]; !slices.Equal(got, want[r].sets[j]) {
						t.Fatalf("row %d %s: set %v, brute force %v", r, m.Name(), got, want[r].sets[j])
					}
					if m.Routed() && !slices.Equal(out.Methods[j].Heads[r], want[r].heads[j]) {
						t.Fatalf("row %d %s: heads %v, brute force %v", r, m.Name(), out.Methods[j].Heads[r], want[r].heads[j])
					}
				}
			}
		})
	}
}

// The identities of DESIGN.md §7, on real-valued data where any difference
// in arithmetic would show.
func TestIdentities(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	in := randomInput(rng, 12, 32, 700, 16, 50, false)
	ms := []Method{
		{Kind: MISA, Heads: 12, Block: 64, Router: RouterPooled, Pool: PoolCausal},
		{Kind: MISA, Heads: 12, Router: RouterQNorm},
		{Kind: MISADagger, Heads: 3, Block: 64, Router: RouterPooled, Pool: PoolCausal, Stage1: 700},
		{Kind: MISADagger, Heads: 1, Router: RouterSelfKey, Stage1: 10_000},
		{Kind: HISA, HisaBlock: 32, HisaBlocks: 22},
		{Kind: HISA, HisaBlock: 1, HisaBlocks: 700},
	}
	out := run(t, NewCPU(2), in, ms)
	for j, m := range ms {
		for r := range in.QPos {
			if !slices.Equal(out.Methods[j].Sets[r], out.Reference[r]) {
				t.Errorf("%s row %d: differs from DSA", m.Name(), r)
			}
			if out.Methods[j].Mass[r] != 1 {
				t.Errorf("%s row %d: mass %v, want 1", m.Name(), r, out.Methods[j].Mass[r])
			}
		}
	}
}

func TestDeterministicAcrossWorkers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	in := randomInput(rng, 8, 16, 400, 20, 30, false)
	ms := allMethods(8)
	a := run(t, NewCPU(1), in, ms)
	b := run(t, NewCPU(4), in, ms)
	for j := range ms {
		for r := range in.QPos {
			if !slices.Equal(a.Methods[j].Sets[r], b.Methods[j].Sets[r]) || a.Methods[j].Mass[r] != b.Methods[j].Mass[r] {
				t.Fatalf("%s row %d differs between 1 and 4 workers", ms[j].Name(), r)
			}
		}
	}
}

// Ties are broken towards the lower index: with all keys equal every score
// ties, and the selection must be the first k keys.
func TestTieBreaking(t *testing.T) {
	H, D, N, k := 4, 8, 100, 10
	in := &Input{H: H, D: D, TopK: k, N: N, QPos: []int64{50, 99}}
	in.K = make([]float32, N*D)
	for i := range in.K {
		in.K[i] = 1
	}
	in.Q = make([]float32, 2*H*D)
	for i := range in.Q {
		in.Q[i] = 0.5
	}
	in.W = []float32{1, 1, 1, 1, 1, 1, 1, 1}
	ms := []Method{{Kind: MISA, Heads: 2, Block: 16, Router: RouterPooled, Pool: PoolCausal}, {Kind: HISA, HisaBlock: 10, HisaBlocks: 3}}
	out := run(t, NewCPU(2), in, ms)
	first := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	for r := range in.QPos {
		if !slices.Equal(out.Reference[r], first) {
			t.Errorf("row %d: DSA %v, want the first %d keys", r, out.Reference[r], k)
		}
		if !slices.Equal(out.Methods[0].Sets[r], first) {
			t.Errorf("row %d: MISA %v, want the first %d keys", r, out.Methods[0].Sets[r], k)
		}
		if !slices.Equal(out.Methods[0].Heads[r], []int{0, 1}) {
			t.Errorf("row %d: heads %v, want [0 1] (lower index wins ties)", r, out.Methods[0].Heads[r])
		}
		if !slices.Equal(out.HeadRank[r], []int{0, 1, 2, 3}) {
			t.Errorf("row %d: head rank %v", r, out.HeadRank[r])
		}
	}
}

// In causal mode no key after p_t may change anything about row t; in
// reference mode the query's own block leaks future keys into routing.
func TestCausality(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 2))
	H, D, N := 8, 16, 512
	in := randomInput(rng, H, D, N, 1, 20, false)
	in.QPos[0] = 300 // own block of 64 is [256, 320): 19 future keys inside it
	causal := []Method{
		{Kind: DSA},
		{Kind: MISA, Heads: 2, Block: 64, Router: RouterPooled, Pool: PoolCausal},
		{Kind: MISADagger, Heads: 2, Block: 64, Router: RouterPooled, Pool: PoolCausal, Stage1: 60},
		{Kind: MISA, Heads: 2, Router: RouterSelfKey},
		{Kind: MISA, Heads: 2, Router: RouterOracle},
		{Kind: HISA, HisaBlock: 16, HisaBlocks: 4},
	}
	leaky := []Method{{Kind: MISA, Heads: 1, Block: 64, Router: RouterPooled, Pool: PoolReference}}
	base := run(t, NewCPU(2), in, append(causal, leaky...))

	// Make the future keys huge and aligned with the head that the leaky
	// router did not choose, so a leak must change its choice.
	pert := *in
	pert.K = slices.Clone(in.K)
	loser := (base.Methods[len(causal)].Heads[0][0] + 1) % H
	for s := 301; s < N; s++ {
		for x := 0; x < D; x++ {
			pert.K[s*D+x] = 1000 * in.Q[loser*D+x]
		}
	}
	got := run(t, NewCPU(2), &pert, append(causal, leaky...))
	for j, m := range causal {
		if !slices.Equal(got.Methods[j].Sets[0], base.Methods[j].Sets[0]) {
			t.Errorf("%s: a future key changed the selection", m.Name())
		}
		if m.Routed() && !slices.Equal(got.Methods[j].Heads[0], base.Methods[j].Heads[0]) {
			t.Errorf("%s: a future key changed the routing", m.Name())
		}
	}
	if slices.Equal(got.Methods[len(causal)].Heads[0], base.Methods[len(causal)].Heads[0]) {
		t.Errorf("reference pooling: future keys did not change routing; the leak is not reproduced")
	}
}

func TestRunRejectsBadParameters(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	in := randomInput(rng, 4, 8, 64, 2, 8, false)
	bad := []Method{
		{Kind: MISA, Heads: 5, Block: 8, Router: RouterPooled, Pool: PoolCausal},
		{Kind: MISA, Heads: 0, Block: 8, Router: RouterPooled, Pool: PoolCausal},
		{Kind: MISA, Heads: 2, Block: 0, Router: RouterPooled, Pool: PoolCausal},
		{Kind: MISA, Heads: 2, Router: "magic"},
		{Kind: MISADagger, Heads: 2, Router: RouterQNorm, Stage1: 0},
		{Kind: HISA, HisaBlock: 0, HisaBlocks: 2},
		{Kind: HISA, HisaBlock: 4, HisaBlocks: 0},
		{Kind: "sparse"},
	}
	for _, m := range bad {
		if _, err := NewCPU(1).Run(context.Background(), in, []Method{m}); err == nil {
			t.Errorf("%+v: no error", m)
		}
	}
	in.TopK = 0
	if _, err := NewCPU(1).Run(context.Background(), in, nil); err == nil {
		t.Error("top-k 0: no error")
	}
}

func TestRunCancelled(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	in := randomInput(rng, 4, 8, 64, 50, 8, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewCPU(1).Run(ctx, in, []Method{{Kind: DSA}}); err == nil {
		t.Error("cancelled context: no error")
	}
}

func TestCost(t *testing.T) {
	H, L := 64, 131072
	cases := []struct {
		m    Method
		want float64
	}{
		{Method{Kind: DSA}, 64 * 131072},
		{Method{Kind: MISA, Heads: 8, Block: 1024, Router: RouterPooled}, 8*131072 + 64*128},
		{Method{Kind: MISADagger, Heads: 8, Block: 1024, Router: RouterPooled, Stage1: 8192}, 8*131072 + 64*128 + 64*8192},
		{Method{Kind: MISA, Heads: 8, Router: RouterQNorm}.Normalize(), 8*131072 + 64},
		{Method{Kind: MISA, Heads: 8, Router: RouterOracle}.Normalize(), 8*131072 + 64*131072},
		{Method{Kind: HISA, HisaBlock: 128, HisaBlocks: 64}, 64*1024 + 64*64*128},
	}
	for _, c := range cases {
		if got := c.m.Cost(H, L); got != c.want {
			t.Errorf("%s: cost %v, want %v", c.m.Name(), got, c.want)
		}
	}
}
