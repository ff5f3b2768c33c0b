package niah

import (
	"math"
	"slices"
	"strconv"
)

// MinContext is the shortest context of a default grid (2K tokens, as in
// the DeepSeek-V3 figure: 2K, 11K, …, 128K).
const MinContext = 2048

// ContextAxis returns n context lengths evenly spaced from lo to hi, both
// included (n == 1: just hi). They are rounded to whole multiples of 1024
// tokens when the spacing is at least that, else to whole tokens, and
// repeats are dropped: ContextAxis(2048, 131072, 15) is 2K, 11K, 20K, …,
// 128K in steps of 9K.
func ContextAxis(lo, hi, n int) []int {
	if n < 1 || hi < 1 {
		return nil
	}
	lo = min(max(lo, 1), hi)
	if n == 1 || lo == hi {
		return []int{hi}
	}
	step := float64(hi-lo) / float64(n-1)
	unit := 1.0
	if step >= 1024 {
		unit = 1024
	}
	var out []int
	for i := range n {
		x := float64(lo) + step*float64(i)
		v := int(math.Round(x/unit) * unit)
		if i == 0 {
			v = lo
		} else if i == n-1 {
			v = hi
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// DepthAxis returns n depths evenly spaced over [0, 1], both included
// (n == 1: the middle, 0.5).
func DepthAxis(n int) []float64 {
	if n < 1 {
		return nil
	}
	if n == 1 {
		return []float64{0.5}
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(i) / float64(n-1)
	}
	return out
}

// CtxLabel writes a context length the way NIAH figures do: 2K, 128K
// (multiples of 1024 tokens), 2.5K, or the plain count below 1024.
func CtxLabel(n int) string { return ctxLabel(n, 0) }

func ctxLabel(n, decimals int) string {
	if n < 1024 {
		return strconv.Itoa(n)
	}
	k := float64(n) / 1024
	if n%1024 == 0 {
		return strconv.Itoa(n/1024) + "K"
	}
	if decimals == 0 {
		return strconv.Itoa(int(math.Round(k))) + "K"
	}
	return strconv.FormatFloat(k, 'f', decimals, 64) + "K"
}

// CtxLabels labels an axis of context lengths with CtxLabel, using one or
// two decimals where whole K would give two lengths the same label.
func CtxLabels(ctxs []int) []string {
	return distinctLabels(len(ctxs), func(i, dec int) string { return ctxLabel(ctxs[i], dec) })
}

// DepthLabel writes a depth (0..1) as a whole percentage: 0%, 7%, 100%.
func DepthLabel(d float64) string { return depthLabel(d, 0) }

func depthLabel(d float64, decimals int) string {
	return strconv.FormatFloat(d*100, 'f', decimals, 64) + "%"
}

// DepthLabels labels an axis of depths with DepthLabel, using decimals
// where whole percentages would give two depths the same label.
func DepthLabels(depths []float64) []string {
	return distinctLabels(len(depths), func(i, dec int) string { return depthLabel(depths[i], dec) })
}

// distinctLabels returns the labels of n items with the fewest decimals
// (0 to 3) that keep them distinct.
func distinctLabels(n int, label func(i, decimals int) string) []string {
	var out []string
	for dec := 0; dec <= 3; dec++ {
		out = make([]string, n)
		seen := map[string]bool{}
		ok := true
		for i := range out {
			out[i] = label(i, dec)
			if seen[out[i]] {
				ok = false
			}
			seen[out[i]] = true
		}
		if ok {
			break
		}
	}
	return out
}
