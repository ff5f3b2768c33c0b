package eval

import (
	"fmt"
	"slices"
)

// Notes on diff rows whose method/layer exists on one side only. Views use
// them to print a dash instead of the zero that stands for the absent side.
const (
	NoteMissing = "missing in current run"
	NoteNew     = "new in current run (not in baseline)"
)

// slack absorbs floating-point rounding in "drop > tolerance", so that a drop
// of exactly the tolerance (0.93 − 0.92 is 0.010000000000000009) passes.
const slack = 1e-9

// Tolerance bounds how far per-layer and overall means may fall below the
// baseline before Compare fails.
type Tolerance struct {
	// Recall is the largest allowed drop of mean recall. It is always
	// checked; zero means any drop fails, and a negative value counts as zero.
	Recall float64
	// IoU and Mass are the largest allowed drops of mean IoU and mean mass.
	// These are checked only when positive, so the zero Tolerance checks
	// recall alone — what the regression job gates on.
	IoU, Mass float64
}

// DiffRow is one metric of one method on one layer (Layer = -1: overall).
// Delta is Current − Base; on a row with NoteMissing or NoteNew the absent
// side and Delta are zero.
type DiffRow struct {
	Method  string  `json:"method"`
	Layer   int     `json:"layer"`
	Metric  string  `json:"metric"` // "recall", "iou" or "mass"
	Base    float64 `json:"base"`
	Current float64 `json:"current"`
	Delta   float64 `json:"delta"`
	Fail    bool    `json:"fail"`
	Note    string  `json:"note,omitempty"`
}

// Diff is the outcome of a regression check.
type Diff struct {
	Rows   []DiffRow `json:"rows"`
	Failed bool      `json:"failed"`
	// Notes are caveats about the comparison as a whole (different inputs,
	// a different backend); they never fail it.
	Notes []string `json:"notes,omitempty"`
}

type statsKey struct {
	method string
	layer  int
	group  string
}

func keyOf(s *Stats) statsKey { return statsKey{s.Method, s.Layer, s.Group} }

// Compare checks cur against base, per method per layer and overall. A
// mean that drops by more than its tolerance fails; a method/layer in the
// baseline that the current run lacks fails; one the baseline lacks is
// reported but passes. Groups are not compared: they pool the same rows as
// the layers.
func Compare(base, cur *Result, tol Tolerance) Diff {
	var d Diff
	if base == nil || cur == nil {
		d.Failed = true
		d.Notes = append(d.Notes, "nothing to compare: a result is missing")
		return d
	}
	d.Notes = resultNotes(base, cur)
	tol.Recall = max(tol.Recall, 0)
	compareStats(&d, base.Layers, cur.Layers, tol)
	compareStats(&d, base.Overall, cur.Overall, tol)
	d.Failed = slices.ContainsFunc(d.Rows, func(r DiffRow) bool { return r.Fail })
	return d
}

func compareStats(d *Diff, base, cur []Stats, tol Tolerance) {
	idx := make(map[statsKey]*Stats, len(cur))
	for i := range cur {
		idx[keyOf(&cur[i])] = &cur[i]
	}
	inBase := make(map[statsKey]bool, len(base))
	for i := range base {
		b := &base[i]
		inBase[keyOf(b)] = true
		c, ok := idx[keyOf(b)]
		if !ok {
			d.Rows = append(d.Rows, DiffRow{
				Method: b.Method, Layer: b.Layer, Metric: "recall",
				Base: b.Recall.Mean, Fail: true, Note: NoteMissing,
			})
			continue
		}
		row := compareMetric(b, c, "recall", b.Recall, c.Recall, tol.Recall)
		if b.Rows != c.Rows || b.Trivial != c.Trivial {
			row.Note = joinNotes(row.Note, fmt.Sprintf("rows differ: base %d (%d trivial), current %d (%d trivial)",
				b.Rows, b.Trivial, c.Rows, c.Trivial))
		}
		d.Rows = append(d.Rows, row)
		if tol.IoU > 0 {
			d.Rows = append(d.Rows, compareMetric(b, c, "iou", b.IoU, c.IoU, tol.IoU))
		}
		if tol.Mass > 0 {
			d.Rows = append(d.Rows, compareMetric(b, c, "mass", b.Mass, c.Mass, tol.Mass))
		}
	}
	for i := range cur {
		c := &cur[i]
		if !inBase[keyOf(c)] {
			d.Rows = append(d.Rows, DiffRow{
				Method: c.Method, Layer: c.Layer, Metric: "recall",
				Current: c.Recall.Mean, Note: NoteNew,
			})
		}
	}
}

// compareMetric compares one summary's mean. A side with no non-trivial
// rows has no mean; that fails only when the baseline had one.
func compareMetric(b, c *Stats, metric string, bs, cs Summary, tol float64) DiffRow {
	r := DiffRow{
		Method: b.Method, Layer: b.Layer, Metric: metric,
		Base: bs.Mean, Current: cs.Mean, Delta: cs.Mean - bs.Mean,
	}
	switch {
	case bs.N == 0 && cs.N == 0:
		r.Delta = 0
		r.Note = "no non-trivial rows on either side"
	case bs.N == 0:
		r.Delta = 0
		r.Note = "baseline has no non-trivial rows"
	case cs.N == 0:
		r.Delta = 0
		r.Fail = true
		r.Note = "current run has no non-trivial rows"
	default:
		if drop := bs.Mean - cs.Mean; drop > tol+slack {
			r.Fail = true
			r.Note = fmt.Sprintf("dropped %.4f, tolerance %.4f", drop, tol)
		}
	}
	return r
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// resultNotes flags comparisons whose numbers are not like for like.
func resultNotes(base, cur *Result) []string {
	var notes []string
	if base.Backend != cur.Backend {
		notes = append(notes, fmt.Sprintf("backend differs: baseline %q, current %q", base.Backend, cur.Backend))
	}
	bi, ci := inputSet(base.Inputs), inputSet(cur.Inputs)
	if !slices.Equal(bi, ci) {
		common := 0
		for _, x := range ci {
			if _, ok := slices.BinarySearch(bi, x); ok {
				common++
			}
		}
		notes = append(notes, fmt.Sprintf("inputs differ: %d in the baseline, %d in the current run, %d in common",
			len(bi), len(ci), common))
	}
	return notes
}

// inputSet identifies inputs by content hash (by name where a hash is
// missing), sorted, so that the same traces at another path or read in
// another order compare equal.
func inputSet(in []InputInfo) []string {
	out := make([]string, 0, len(in))
	for _, x := range in {
		if x.Hash != "" {
			out = append(out, "hash:"+x.Hash)
		} else {
			out = append(out, "name:"+x.Name)
		}
	}
	slices.Sort(out)
	return out
}
