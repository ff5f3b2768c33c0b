package longbench

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
)

// TestPythonReference compares the English metrics with testdata/pyref.jsonl:
// random cases scored on CPython 3.11 with its own str.lower/split, re and
// difflib, by a throwaway script written from research/evals.md's account of
// metrics.py, pltrdy/rouge's ROUGE-L and fuzzywuzzy's ratio (not shipped: it
// restated upstream code). It checks Python's string and regex behaviour, not
// the upstream scorer itself; TestOfficialCorpus compares with eval.py.
func TestPythonReference(t *testing.T) {
	f, err := os.Open("testdata/pyref.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n, bad := 0, 0
	for sc.Scan() {
		var c struct {
			P, G, Gcls, Digit, Norm          string
			Classes                          []string
			QAF1, Rouge, Cls, Count, Code, R float64
		}
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(sc.Bytes(), &c)
		c.QAF1, c.R = raw["qa_f1"].(float64), raw["pyround"].(float64)
		n++
		check := func(what string, got, want float64) {
			if got != want && bad < 20 {
				bad++
				t.Errorf("case %d %s(%q, %q): got %v, want %v", n, what, c.P, c.G, got, want)
			}
		}
		if got := NormalizeAnswer(c.P); got != c.Norm && bad < 20 {
			bad++
			t.Errorf("case %d NormalizeAnswer(%q) = %q, want %q", n, c.P, got, c.Norm)
		}
		check("qa_f1", QAF1(c.P, c.G), c.QAF1)
		check("rouge", Rouge(c.P, c.G), c.Rouge)
		check("classification", Classification(c.P, c.Gcls, c.Classes), c.Cls)
		check("count", Count(c.P, c.Digit), c.Count)
		check("code_sim", CodeSim(c.P, c.G), c.Code)
		check("round", PyRound2(QAF1(c.P, c.G)*100/3), c.R)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 1000 {
		t.Fatalf("only %d cases", n)
	}
}
