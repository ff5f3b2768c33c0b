package eval

import (
	"math"
	"slices"
)

// Summary describes a distribution of per-row values.
type Summary struct {
	Mean float64 `json:"mean"`
	// P5 is the 5th percentile, linearly interpolated (see Percentile).
	P5  float64 `json:"p5"`
	Min float64 `json:"min"`
	// N is the number of values; Mean, P5 and Min are zero when N is zero.
	N int `json:"n"`
}

// Summarize returns the mean, 5th percentile and minimum of xs.
//
// The mean is summed over the sorted values, so the result does not depend
// on the order in which rows were collected (sources may be processed
// concurrently) down to the last bit.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return summarizeSorted(s)
}

// summarizeSorted is Summarize for values already sorted ascending; it may
// be handed a slice it owns, so it does not copy.
func summarizeSorted(s []float64) Summary {
	if len(s) == 0 {
		return Summary{}
	}
	return Summary{
		Mean: sortedSum(s) / float64(len(s)),
		P5:   percentileSorted(s, 5),
		Min:  s[0],
		N:    len(s),
	}
}

// sortedSum adds values in the given order with Neumaier compensation, so
// that the mean of millions of rows keeps all the digits a result prints.
func sortedSum(s []float64) float64 {
	var sum, c float64
	for _, x := range s {
		t := sum + x
		if math.Abs(sum) >= math.Abs(x) {
			c += (sum - t) + x
		} else {
			c += (x - t) + sum
		}
		sum = t
	}
	return sum + c
}

// Percentile returns the p-th percentile (p in [0, 100], clamped) of xs by
// linear interpolation between the closest ranks: with xs sorted and
// r = p/100·(n−1), the result is xs[⌊r⌋] + (r−⌊r⌋)·(xs[⌊r⌋+1] − xs[⌊r⌋]).
// This is NumPy's default. It returns NaN for an empty slice.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return percentileSorted(s, p)
}

func percentileSorted(s []float64, p float64) float64 {
	p = min(max(p, 0), 100)
	// p·(n−1)/100 rather than p/100·(n−1): the former is exact for whole
	// ranks (e.g. p = 50 with odd n), the latter is not.
	r := p * float64(len(s)-1) / 100
	i := int(math.Floor(r))
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	f := r - float64(i)
	if f == 0 {
		return s[i]
	}
	return s[i] + f*(s[i+1]-s[i])
}

// intersect counts the common elements of two strictly ascending sets.
func intersect(a, b []int32) int {
	n, i, j := 0, 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			n++
			i++
			j++
		}
	}
	return n
}

// RowRecall is |A∩G| / |G| for the reference set G (DSA's) and a method's
// set A, both strictly ascending. An empty reference is recalled fully.
func RowRecall(ref, got []int32) float64 {
	if len(ref) == 0 {
		return 1
	}
	return float64(intersect(ref, got)) / float64(len(ref))
}

// RowIoU is |A∩G| / |A∪G| for strictly ascending sets; two empty sets agree
// fully.
func RowIoU(ref, got []int32) float64 {
	n := intersect(ref, got)
	u := len(ref) + len(got) - n
	if u == 0 {
		return 1
	}
	return float64(n) / float64(u)
}
