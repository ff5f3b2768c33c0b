package indexer

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/misabench/misabench/indexer/indextest"
)

// This file is an independent, deliberately naive implementation of
// DESIGN.md §1 used as the oracle for the CPU backend: no panels, no tiles,
// no shared matrices, a full sort for every selection.

type bruteRow struct {
	ref   []int32
	sets  [][]int32
	heads [][]int
}

func bruteTopK(score func(s int) float64, cand []int, k int) []int32 {
	c := slices.Clone(cand)
	sort.SliceStable(c, func(i, j int) bool {
		a, b := score(c[i]), score(c[j])
		if a != b {
			return a > b
		}
		return c[i] < c[j]
	})
	if k < len(c) {
		c = c[:k]
	}
	out := make([]int32, len(c))
	for i, v := range c {
		out[i] = int32(v)
	}
	slices.Sort(out)
	return out
}

func bruteTopHeads(score []float64, h int) []int {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return score[idx[i]] > score[idx[j]] })
	out := slices.Clone(idx[:h])
	slices.Sort(out)
	return out
}

func bruteDot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func bruteMean(in *Input, lo, hi int) []float32 {
	acc := make([]float64, in.D)
	for s := lo; s < hi; s++ {
		for x := 0; x < in.D; x++ {
			acc[x] += float64(in.K[s*in.D+x])
		}
	}
	out := make([]float32, in.D)
	for x := range acc {
		out[x] = float32(acc[x] * (1 / float64(hi-lo)))
	}
	return out
}

func bruteRun(in *Input, methods []Method) []bruteRow {
	H, D := in.H, in.D
	rows := make([]bruteRow, in.Rows())
	for t := range rows {
		L := in.Visible(t)
		q := func(h int) []float32 { return in.Q[(t*H+h)*D : (t*H+h+1)*D] }
		w := in.W[t*H : (t+1)*H]
		key := func(s int) []float32 { return in.K[s*D : (s+1)*D] }
		rel := func(h, s int) float32 { return max(0, bruteDot(q(h), key(s))) }
		scoreSet := func(heads []int) func(s int) float64 {
			return func(s int) float64 {
				var v float32
				for _, h := range heads {
					v += w[h] * rel(h, s)
				}
				return float64(v)
			}
		}
		all := make([]int, H)
		for h := range all {
			all[h] = h
		}
		visible := make([]int, L)
		for s := range visible {
			visible[s] = s
		}
		scoreAll := scoreSet(all)
		ref := bruteTopK(scoreAll, visible, in.TopK)
		contrib := make([]float64, H)
		for h := 0; h < H; h++ {
			var s float64
			for _, i := range ref {
				s += float64(rel(h, int(i)))
			}
			contrib[h] = float64(w[h]) * s
		}
		row := bruteRow{ref: ref}
		pt := int(in.QPos[t])
		for _, m := range methods {
			var set []int32
			var heads []int
			switch m.Kind {
			case DSA:
				set = ref
			case MISA, MISADagger:
				r := make([]float64, H)
				for h := 0; h < H; h++ {
					switch m.Router {
					case RouterOracle:
						r[h] = contrib[h]
					case RouterSelfKey:
						r[h] = float64(w[h]) * float64(rel(h, pt))
					case RouterQNorm:
						var s float64
						for _, v := range q(h) {
							s += float64(v) * float64(v)
						}
						r[h] = math.Sqrt(s)
					case RouterPooled:
						own := pt / m.Block
						var sum float64
						for b := 0; b <= own; b++ {
							lo, hi := b*m.Block, (b+1)*m.Block
							if b == own {
								hi = pt + 1
								if m.Pool == PoolReference {
									hi = min((b+1)*m.Block, in.N)
								}
							}
							sum += float64(max(0, bruteDot(q(h), bruteMean(in, lo, hi))))
						}
						r[h] = math.Abs(float64(w[h])) * sum
					}
				}
				heads = bruteTopHeads(r, m.Heads)
				sub := bruteTopK(scoreSet(heads), visible, map[Kind]int{MISA: in.TopK, MISADagger: m.Stage1}[m.Kind])
				if m.Kind == MISA {
					set = sub
				} else {
					cand := make([]int, len(sub))
					for i, v := range sub {
						cand[i] = int(v)
					}
					set = bruteTopK(scoreAll, cand, in.TopK)
				}
			case HISA:
				B := m.HisaBlock
				own := pt / B
				bs := make([]float64, own+1)
				blocks := make([]int, own+1)
				for b := 0; b <= own; b++ {
					blocks[b] = b
					hi := min((b+1)*B, pt+1)
					kb := bruteMean(in, b*B, hi)
					var v float32
					for h := 0; h < H; h++ {
						v += w[h] * max(0, bruteDot(q(h), kb))
					}
					bs[b] = float64(v)
				}
				bs[0], bs[own] = math.Inf(1), math.Inf(1)
				chosen := bruteTopK(func(b int) float64 { return bs[b] }, blocks, m.HisaBlocks)
				var cand []int
				for _, b := range chosen {
					for s := int(b) * B; s < min(int(b+1)*B, L); s++ {
						cand = append(cand, s)
					}
				}
				set = bruteTopK(scoreAll, cand, in.TopK)
			}
			row.sets = append(row.sets, set)
			row.heads = append(row.heads, heads)
		}
		rows[t] = row
	}
	return rows
}

// randomInput builds an input; integer-valued data (small integers) makes
// every token score exact in fp32 whatever the summation order, and full of
// ties, so selections can be compared bit for bit.
func randomInput(rng *rand.Rand, H, D, N, nq, topk int, integer bool) *Input {
	kind := "normal"
	if integer {
		kind = "int"
	}
	l := indextest.Random(rng, H, D, N, nq, kind)
	return &Input{H: H, D: D, TopK: topk, N: N, QPos: l.QPos, Q: l.Q, K: l.K, W: l.W}
}
