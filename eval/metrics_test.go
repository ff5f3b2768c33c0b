package eval

import (
	"math"
	"slices"
	"testing"
)

const eps = 1e-12

func near(a, b float64) bool { return math.Abs(a-b) <= eps }

func TestRowRecallIoU(t *testing.T) {
	tests := []struct {
		name        string
		ref, got    []int32
		recall, iou float64
	}{
		// ∩ = {3,5}: recall 2/4; ∪ = {1,3,4,5,7,8}: IoU 2/6.
		{"half", []int32{1, 3, 5, 7}, []int32{3, 4, 5, 8}, 0.5, 1.0 / 3},
		{"same", []int32{0, 2, 9}, []int32{0, 2, 9}, 1, 1},
		{"disjoint", []int32{0, 1}, []int32{2, 3}, 0, 0},
		// A superset recalls everything but is penalised by IoU: 2/5.
		{"superset", []int32{2, 4}, []int32{1, 2, 3, 4, 5}, 1, 0.4},
		{"got empty", []int32{1, 2}, nil, 0, 0},
		{"ref empty", nil, []int32{1}, 1, 0},
		{"both empty", nil, nil, 1, 1},
	}
	for _, tc := range tests {
		if got := RowRecall(tc.ref, tc.got); !near(got, tc.recall) {
			t.Errorf("%s: RowRecall = %v, want %v", tc.name, got, tc.recall)
		}
		if got := RowIoU(tc.ref, tc.got); !near(got, tc.iou) {
			t.Errorf("%s: RowIoU = %v, want %v", tc.name, got, tc.iou)
		}
	}
}

func TestSummarize(t *testing.T) {
	// 20 values, shuffled: 0.2, 0.6 and eighteen 1s.
	// Mean = (0.2+0.6+18)/20 = 0.94. P5: rank r = 0.05·19 = 0.95, so
	// 0.2 + 0.95·(0.6−0.2) = 0.58 (numpy.percentile agrees). Min = 0.2.
	xs := make([]float64, 20)
	for i := range xs {
		xs[i] = 1
	}
	xs[7], xs[13] = 0.6, 0.2
	orig := slices.Clone(xs)
	s := Summarize(xs)
	want := Summary{Mean: 0.94, P5: 0.58, Min: 0.2, N: 20}
	if !near(s.Mean, want.Mean) || !near(s.P5, want.P5) || s.Min != want.Min || s.N != want.N {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
	if !slices.Equal(xs, orig) {
		t.Error("Summarize reordered its argument")
	}

	if s := Summarize(nil); s != (Summary{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", s)
	}
	if s := Summarize([]float64{0.7}); s != (Summary{Mean: 0.7, P5: 0.7, Min: 0.7, N: 1}) {
		t.Errorf("Summarize one value = %+v", s)
	}
	// Two values: r = 0.05, so 0 + 0.05·1.
	if s := Summarize([]float64{1, 0}); !near(s.P5, 0.05) || s.Min != 0 || !near(s.Mean, 0.5) {
		t.Errorf("Summarize two values = %+v", s)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{4, 1, 3, 2}
	for _, tc := range []struct{ p, want float64 }{
		{0, 1}, {100, 4}, {50, 2.5}, {25, 1.75}, {-3, 1}, {140, 4},
	} {
		if got := Percentile(xs, tc.p); !near(got, tc.want) {
			t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := Percentile(nil, 5); !math.IsNaN(got) {
		t.Errorf("Percentile(nil) = %v, want NaN", got)
	}
}

func TestSummarizeOrderIndependent(t *testing.T) {
	// Values whose naive sum depends on the order of addition.
	xs := []float64{1e-17, 1, 1e-17, 0.3, 0.1, 0.2, 1e-16}
	a := Summarize(xs)
	slices.Reverse(xs)
	b := Summarize(xs)
	if a != b {
		t.Errorf("order changed the summary: %+v vs %+v", a, b)
	}
}
