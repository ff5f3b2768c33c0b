package longbench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// TestOfficialCorpus scores testdata/official (tools/longbench/make_corpus.py:
// all 21 v1 data sets and the 13 LongBench-E sets, three prediction
// variants) and compares every printed value with expected_pred.json and
// expected_pred_e.json, written by tools/longbench/check_official.py
// --write-official from the official LongBench/eval.py (THUDM/LongBench
// @ 2e00731f, pltrdy/rouge 1.0.1, jieba 0.42.1, fuzzywuzzy 0.18.0 on difflib,
// CPython 3.11). The Chinese sets need the jieba dictionary (cgo); without it
// they are skipped.
func TestOfficialCorpus(t *testing.T) {
	seg, free, err := NewJieba()
	if err != nil {
		t.Logf("Chinese data sets skipped: %v", err)
	} else {
		defer free()
	}
	root := filepath.Join("testdata", "official")
	for _, e := range []bool{false, true} {
		sub := "pred"
		if e {
			sub = "pred_e"
		}
		b, err := os.ReadFile(filepath.Join(root, "expected_"+sub+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]map[string]json.RawMessage
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		variants := make([]string, 0, len(want))
		for v := range want {
			variants = append(variants, v)
		}
		sort.Strings(variants)
		compared := 0
		for _, v := range variants {
			dir := filepath.Join(root, sub, v)
			preds, err := ReadPredDir(dir, e)
			if err != nil {
				t.Fatal(err)
			}
			sc := &Scorer{Metrics: Metrics{Jieba: seg}}
			if seg == nil {
				for name := range preds {
					if d, _ := Lookup(name); d.Metric == "qa_f1_zh_score" || d.Metric == "rouge_zh_score" {
						delete(preds, name)
						delete(want[v], name)
					}
				}
			}
			got, err := sc.ScorePreds(v, dir, preds, e)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := CheckAgainstData(got, filepath.Join(root, "data"), e, preds); err != nil {
				t.Fatal(err)
			}
			if len(got.Scores) != len(want[v]) {
				t.Errorf("%s: %d data sets scored, %d expected", dir, len(got.Scores), len(want[v]))
			}
			for name, raw := range want[v] {
				s := got.Scores[name]
				if s == nil {
					t.Errorf("%s: %s not scored", dir, name)
					continue
				}
				if !e {
					var w float64
					if err := json.Unmarshal(raw, &w); err != nil {
						t.Fatal(err)
					}
					compared++
					if s.Score == nil || *s.Score != w {
						t.Errorf("%s %s: got %v, official %v", dir, name, fmtPtr(s.Score), w)
					}
					continue
				}
				var w map[string]*float64
				if err := json.Unmarshal(raw, &w); err != nil {
					t.Fatal(err)
				}
				for _, bk := range Buckets {
					compared++
					g, x := s.Buckets[bk], w[bk]
					if (g == nil) != (x == nil) || (g != nil && *g != *x) {
						t.Errorf("%s %s %s: got %v, official %v", dir, name, bk, fmtPtr(g), fmtPtr(x))
					}
				}
			}
		}
		t.Logf("%s: %d printed values compared", sub, compared)
	}
}

func fmtPtr(p *float64) any {
	if p == nil {
		return "NaN"
	}
	return *p
}
