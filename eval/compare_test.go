package eval

import (
	"strings"
	"testing"
)

func findRow(d Diff, method string, layer int, metric string) *DiffRow {
	for i := range d.Rows {
		r := &d.Rows[i]
		if r.Method == method && r.Layer == layer && r.Metric == metric {
			return r
		}
	}
	return nil
}

func TestCompareEqual(t *testing.T) {
	base, cur := sampleResult(t), sampleResult(t)
	d := Compare(base, cur, Tolerance{IoU: 0.01, Mass: 0.01})
	if d.Failed {
		t.Fatalf("equal results failed: %+v", d.Rows)
	}
	// Four layer stats and two overall, three metrics each.
	if len(d.Rows) != 18 {
		t.Errorf("%d rows, want 18", len(d.Rows))
	}
	if len(d.Notes) != 0 {
		t.Errorf("notes on equal results: %v", d.Notes)
	}
	// The zero tolerance checks recall only, and any drop fails it.
	if d := Compare(base, cur, Tolerance{}); d.Failed || len(d.Rows) != 6 {
		t.Errorf("zero tolerance on equal results: failed %v, %d rows", d.Failed, len(d.Rows))
	}
}

func TestCompareRecallDrop(t *testing.T) {
	base := sampleResult(t)
	name := base.Layers[2].Method // misa, layer 0, recall mean 0.75

	cur := sampleResult(t)
	cur.Layers[2].Recall.Mean -= 0.02
	d := Compare(base, cur, Tolerance{Recall: 0.01})
	if !d.Failed {
		t.Fatal("a drop of 0.02 passed a tolerance of 0.01")
	}
	r := findRow(d, name, 0, "recall")
	if r == nil || !r.Fail || !near(r.Delta, -0.02) || !near(r.Base, 0.75) || !near(r.Current, 0.73) {
		t.Errorf("row %+v", r)
	}
	if r := findRow(d, name, 1, "recall"); r == nil || r.Fail {
		t.Errorf("unchanged layer failed: %+v", r)
	}

	// Within tolerance, and exactly at it despite rounding.
	if d := Compare(base, cur, Tolerance{Recall: 0.03}); d.Failed {
		t.Errorf("a drop of 0.02 failed a tolerance of 0.03: %+v", d.Rows)
	}
	if d := Compare(base, cur, Tolerance{Recall: 0.02}); d.Failed {
		t.Errorf("a drop of exactly the tolerance failed: %+v", d.Rows)
	}
	// Improvements never fail.
	up := sampleResult(t)
	up.Layers[2].Recall.Mean += 0.1
	if d := Compare(base, up, Tolerance{}); d.Failed {
		t.Errorf("an improvement failed")
	}
}

func TestCompareOverallAndMass(t *testing.T) {
	base, cur := sampleResult(t), sampleResult(t)
	cur.Overall[1].Mass.Mean -= 0.05
	if d := Compare(base, cur, Tolerance{}); d.Failed {
		t.Error("mass was checked with a zero mass tolerance")
	}
	d := Compare(base, cur, Tolerance{Mass: 0.01})
	if r := findRow(d, cur.Overall[1].Method, -1, "mass"); !d.Failed || r == nil || !r.Fail {
		t.Errorf("overall mass drop not caught: %+v", d.Rows)
	}
}

func TestCompareMissingAndNew(t *testing.T) {
	base, cur := sampleResult(t), sampleResult(t)
	name := base.Layers[2].Method
	// Drop misa from the current run; add a method the baseline lacks.
	cur.Layers = cur.Layers[:2]
	cur.Overall = cur.Overall[:1]
	extra := base.Layers[0]
	extra.Method = "hisa(B=128,m=64)"
	cur.Layers = append(cur.Layers, extra)

	d := Compare(base, cur, Tolerance{Recall: 0.5})
	if !d.Failed {
		t.Fatal("a missing method passed")
	}
	for _, layer := range []int{0, 1, -1} {
		r := findRow(d, name, layer, "recall")
		if r == nil || !r.Fail || r.Note != NoteMissing {
			t.Errorf("missing %s layer %d: %+v", name, layer, r)
		}
	}
	r := findRow(d, "hisa(B=128,m=64)", 0, "recall")
	if r == nil || r.Fail || r.Note != NoteNew || r.Current != 1 {
		t.Errorf("new method row: %+v", r)
	}

	// A new method alone does not fail.
	only := sampleResult(t)
	only.Layers = append(only.Layers, extra)
	if d := Compare(base, only, Tolerance{}); d.Failed {
		t.Errorf("a new method failed the check: %+v", d.Rows)
	}
}

func TestCompareNotes(t *testing.T) {
	base, cur := sampleResult(t), sampleResult(t)
	cur.Backend = "gpu"
	cur.Inputs[0].Hash = "def"
	cur.Inputs[0].Name = "/elsewhere/a.safetensors"
	cur.Layers[3].Rows = 30
	d := Compare(base, cur, Tolerance{})
	if d.Failed {
		t.Error("notes failed the check")
	}
	joined := strings.Join(d.Notes, "\n")
	if !strings.Contains(joined, "backend differs") || !strings.Contains(joined, "inputs differ") {
		t.Errorf("notes %q", joined)
	}
	if r := findRow(d, cur.Layers[3].Method, 1, "recall"); r == nil || !strings.Contains(r.Note, "rows differ") {
		t.Errorf("row note %+v", r)
	}

	// The same content at another path is the same input.
	moved := sampleResult(t)
	moved.Inputs[0].Name = "/elsewhere/a.safetensors"
	if d := Compare(base, moved, Tolerance{}); len(d.Notes) != 0 {
		t.Errorf("moved input noted: %v", d.Notes)
	}
}

func TestCompareNoRows(t *testing.T) {
	base, cur := sampleResult(t), sampleResult(t)
	cur.Layers[2].Recall = Summary{}
	d := Compare(base, cur, Tolerance{Recall: 1})
	if r := findRow(d, cur.Layers[2].Method, 0, "recall"); !d.Failed || r == nil || !r.Fail {
		t.Errorf("current run without non-trivial rows passed: %+v", r)
	}
	if d := Compare(nil, cur, Tolerance{}); !d.Failed {
		t.Error("nil baseline passed")
	}
}
