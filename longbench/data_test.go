package longbench

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDatasets(t *testing.T) {
	total, e := 0, 0
	langs := map[string]int{}
	for _, d := range Datasets {
		total += d.Samples
		langs[d.Lang]++
		if d.E {
			e++
		}
	}
	// §A.2: 21 data sets, 4,750 samples, 14 English (incl. the 2 code),
	// 5 Chinese, 13 LongBench-E sets.
	if len(Datasets) != 21 || total != 4750 || e != 13 || len(ESets) != 13 ||
		langs[LangEN] != 14 || langs[LangZH] != 5 || langs[LangCode] != 2 {
		t.Errorf("datasets %d, samples %d, e %d, langs %v", len(Datasets), total, e, langs)
	}
	if _, err := Lookup("qasper_e"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"nq", "narrativeqa_e"} {
		if _, err := Lookup(bad); !errors.Is(err, ErrUnknownDataset) {
			t.Errorf("Lookup(%q) = %v", bad, err)
		}
	}
}

func TestReadDataset(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "trec.jsonl"), []byte(
		`{"input": "q", "context": "c", "answers": ["Location"], "length": 5177, "dataset": "trec", "language": "en", "all_classes": ["Location", "Number"], "_id": "ab"}`+"\n\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "lcc_e.jsonl"), []byte(`{"answers": ["x"], "length": 1}`+"\n"+`{"answers": [1]}`+"\n"), 0o644)
	recs, err := ReadDataset(dir, "trec", false)
	if err != nil || len(recs) != 1 || recs[0].ID != "ab" || recs[0].Length != 5177 || recs[0].AllClasses[1] != "Number" {
		t.Fatalf("ReadDataset = %+v, %v", recs, err)
	}
	_, err = ReadDataset(dir, "lcc", true)
	var le *LineError
	if !errors.As(err, &le) || le.Line != 2 || !strings.HasSuffix(le.File, "lcc_e.jsonl") {
		t.Errorf("bad line: %v", err)
	}
	if _, err := ReadDataset(dir, "qasper", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadDataset(dir, "nq", false); !errors.Is(err, ErrUnknownDataset) {
		t.Errorf("unknown: %v", err)
	}
}

func TestScoreRecords(t *testing.T) {
	p := func(s string) *string { return &s }
	recs := []Record{
		{Pred: p("3"), Answers: []string{"3"}, Length: 3999},
		{Pred: p("3 4"), Answers: []string{"4", "3"}, Length: 4000}, // max over answers: 0.5
		{Pred: p("1"), Answers: []string{"2"}, Length: 8000},
	}
	s := &Scorer{}
	got, err := s.ScoreRecords("passage_count", recs, false)
	if err != nil || *got.Score != PyRound2(100*1.5/3) {
		t.Fatalf("v1 = %+v, %v", got, err)
	}
	got, err = s.ScoreRecords("passage_count", recs, true)
	if err != nil || *got.Buckets["0-4k"] != 100 || *got.Buckets["4-8k"] != 50 || *got.Buckets["8k+"] != 0 {
		t.Fatalf("e = %+v, %v", got, err)
	}
	if _, err := s.ScoreRecords("narrativeqa", recs, true); !errors.Is(err, ErrUnknownDataset) {
		t.Errorf("narrativeqa_e: %v", err)
	}
	if _, err := s.ScoreRecords("trec", nil, false); err == nil {
		t.Error("no predictions: no error")
	}
	// all_classes comes from the last record (§A.3 step 3).
	cls := []Record{
		{Pred: p("Number"), Answers: []string{"Number"}, AllClasses: nil},
		{Pred: p("Number"), Answers: []string{"Number"}, AllClasses: []string{"Number"}},
	}
	if got, err := s.ScoreRecords("trec", cls, false); err != nil || *got.Score != 100 {
		t.Errorf("last all_classes: %+v, %v", got, err)
	}
}

func TestNPMean(t *testing.T) {
	x := make([]float64, 300)
	for i := range x {
		x[i] = float64(i%7) / 7
	}
	// numpy's blocks: 300 → 144 + 156 → (72+72) + (72+84); each ≤128 block
	// uses 8 accumulators. Check against the definition, not a plain sum.
	want := (pairwiseSum(x[:72]) + pairwiseSum(x[72:144])) + (pairwiseSum(x[144:216]) + pairwiseSum(x[216:]))
	if got := pairwiseSum(x); got != want {
		t.Errorf("pairwiseSum = %v, want %v", got, want)
	}
	if got := NPMean([]float64{1, 0, 0.5}); got != 0.5 {
		t.Errorf("NPMean = %v", got)
	}
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0-4k"}, {3999, "0-4k"}, {4000, "4-8k"}, {7999, "4-8k"}, {8000, "8k+"}} {
		if got := BucketOf(c.n); got != c.want {
			t.Errorf("BucketOf(%d) = %s", c.n, got)
		}
	}
}
