package indexer

import (
	"math"
	"slices"
)

// rankKey orders (score, index) pairs as DESIGN.md §1 requires: higher score
// first, ties to the lower index. Packing both into one uint64 gives every
// candidate a distinct key, so selection needs no tie handling of its own.
func rankKey(score float32, idx int32) uint64 {
	if score == 0 {
		score = 0 // -0 and +0 are the same score
	}
	b := math.Float32bits(score)
	if b&0x8000_0000 != 0 {
		b = ^b
	} else {
		b |= 0x8000_0000
	}
	return uint64(b)<<32 | uint64(^uint32(idx))
}

func keyIndex(k uint64) int32 { return int32(^uint32(k)) }

// selector holds scratch space for repeated top-k selections by one worker.
type selector struct {
	keys []uint64
}

// topK returns the k best of scores[0:n] as ascending indices, appended to dst.
func (s *selector) topK(dst []int32, scores []float32, n, k int) []int32 {
	if k >= n {
		for i := 0; i < n; i++ {
			dst = append(dst, int32(i))
		}
		return dst
	}
	keys := s.keys[:0]
	for i := 0; i < n; i++ {
		keys = append(keys, rankKey(scores[i], int32(i)))
	}
	s.keys = keys
	return s.finish(dst, keys, k)
}

// topKOf returns the k best of the candidates cand (token indices) by
// scores[cand[i]], as ascending indices appended to dst.
func (s *selector) topKOf(dst []int32, scores []float32, cand []int32, k int) []int32 {
	if k >= len(cand) {
		start := len(dst)
		dst = append(dst, cand...)
		slices.Sort(dst[start:])
		return dst
	}
	keys := s.keys[:0]
	for _, c := range cand {
		keys = append(keys, rankKey(scores[c], c))
	}
	s.keys = keys
	return s.finish(dst, keys, k)
}

func (s *selector) finish(dst []int32, keys []uint64, k int) []int32 {
	selectLargest(keys, k)
	start := len(dst)
	for _, key := range keys[:k] {
		dst = append(dst, keyIndex(key))
	}
	slices.Sort(dst[start:])
	return dst
}

// selectLargest reorders keys so that keys[:k] are the k largest (in no
// particular order). Keys are distinct. Quickselect with a median-of-three
// pivot; the expected cost is linear.
func selectLargest(keys []uint64, k int) {
	lo, hi := 0, len(keys) // the k-th largest lies in keys[lo:hi]
	for hi-lo > 16 {
		mid := lo + (hi-lo)/2
		a, b, c := keys[lo], keys[mid], keys[hi-1]
		pivot := max(min(a, b), min(max(a, b), c))
		// Partition descending: [lo, i) > pivot, [i, j) == pivot, rest < pivot.
		i, j := lo, lo
		for x := lo; x < hi; x++ {
			v := keys[x]
			if v > pivot {
				keys[x] = keys[j]
				keys[j] = keys[i]
				keys[i] = v
				i++
				j++
			} else if v == pivot {
				keys[x] = keys[j]
				keys[j] = v
				j++
			}
		}
		switch {
		case k <= i:
			hi = i
		case k <= j:
			return
		default:
			lo = j
		}
	}
	sub := keys[lo:hi]
	slices.SortFunc(sub, func(a, b uint64) int {
		switch {
		case a > b:
			return -1
		case a < b:
			return 1
		}
		return 0
	})
}
