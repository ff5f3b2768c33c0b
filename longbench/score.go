package longbench

import (
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Buckets are the LongBench-E length buckets (§A.3 scorer_e).
var Buckets = []string{"0-4k", "4-8k", "8k+"}

// BucketOf is the bucket of a record's length field (words or characters,
// not tokens): < 4000, < 8000, else 8k+ (§A.3).
func BucketOf(length int) string {
	switch {
	case length < 4000:
		return "0-4k"
	case length < 8000:
		return "4-8k"
	}
	return "8k+"
}

// firstLineSets get the first-line cut before scoring (§A.3 step 1).
var firstLineSets = map[string]bool{"trec": true, "triviaqa": true, "samsum": true, "lsht": true}

// Score is one data set's score for one prediction directory.
type Score struct {
	Dataset string `json:"dataset"`
	N       int    `json:"n"`
	// Score is round(100 * total / n, 2) (v1, §A.3); nil for LongBench-E.
	Score *float64 `json:"score,omitempty"`
	// Buckets are the LongBench-E scores, round(100 * np.mean(bucket), 2);
	// nil for an empty bucket (NaN in eval.py).
	Buckets map[string]*float64 `json:"buckets,omitempty"`
	// BucketN are the bucket sizes (LongBench-E only).
	BucketN map[string]int `json:"bucket_n,omitempty"`
	// Samples are the per-sample scores in file order (max over answers,
	// before the ×100 and rounding); `longbench score` writes them only
	// with --samples.
	Samples []float64 `json:"samples,omitempty"`
}

// Scorer scores prediction files.
type Scorer struct {
	Metrics Metrics
}

// ScoreRecords scores one data set's prediction records as eval.py's
// scorer (or scorer_e with e) does.
func (s *Scorer) ScoreRecords(name string, recs []Record, e bool) (*Score, error) {
	d, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	if e && !d.E {
		return nil, fmt.Errorf("%w: %q has no LongBench-E config", ErrUnknownDataset, name)
	}
	if len(recs) == 0 {
		// 100 * total / len(predictions) raises ZeroDivisionError.
		return nil, fmt.Errorf("%s: no predictions", name)
	}
	metric, err := s.Metrics.Func(d.Metric)
	if err != nil {
		return nil, err
	}
	// all_classes is the value from the last line read (§A.3 step 3).
	allClasses := recs[len(recs)-1].AllClasses
	res := &Score{Dataset: d.Name, N: len(recs), Samples: make([]float64, len(recs))}
	total := 0.0
	for i, r := range recs {
		if r.Pred == nil {
			return nil, fmt.Errorf("%s: record %d has no \"pred\" field", name, i+1)
		}
		pred := *r.Pred
		if firstLineSets[d.Name] {
			pred = FirstLine(pred)
		}
		score := 0.0
		for _, gt := range r.Answers {
			v, err := metric(pred, gt, allClasses)
			if err != nil {
				return nil, fmt.Errorf("%s: record %d: %w", name, i+1, err)
			}
			score = math.Max(score, v)
		}
		res.Samples[i] = score
		total += score
	}
	if !e {
		v := PyRound2(100 * total / float64(len(recs)))
		res.Score = &v
		return res, nil
	}
	groups := map[string][]float64{}
	for i, r := range recs {
		b := BucketOf(r.Length)
		groups[b] = append(groups[b], res.Samples[i])
	}
	res.Buckets, res.BucketN = map[string]*float64{}, map[string]int{}
	for _, b := range Buckets {
		res.BucketN[b] = len(groups[b])
		if len(groups[b]) == 0 {
			res.Buckets[b] = nil // np.mean([]) is NaN
			continue
		}
		v := NPRound2(100 * NPMean(groups[b]))
		res.Buckets[b] = &v
	}
	return res, nil
}

// NPMean is np.mean of a float64 list: numpy's pairwise summation (from the
// add identity 0.0), then one division.
func NPMean(x []float64) float64 {
	return (0.0 + pairwiseSum(x)) / float64(len(x))
}

// pairwiseSum is numpy's DOUBLE_pairwise_sum (PW_BLOCKSIZE 128).
func pairwiseSum(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		res := 0.0
		for _, v := range a {
			res += v
		}
		return res
	case n <= 128:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for k := range 8 {
				r[k] += a[i+k]
			}
		}
		res := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			res += a[i]
		}
		return res
	}
	n2 := n / 2
	n2 -= n2 % 8
	return pairwiseSum(a[:n2]) + pairwiseSum(a[n2:])
}

// Variant is the scores of one prediction directory.
type Variant struct {
	Name   string            `json:"name"`
	Dir    string            `json:"dir"`
	Scores map[string]*Score `json:"scores"`
}

// ScoreDir scores every <dataset>.jsonl in a prediction directory as
// eval.py does (see ReadPredDir); the variant is named after the directory.
func (s *Scorer) ScoreDir(dir string, e bool) (*Variant, error) {
	preds, err := ReadPredDir(dir, e)
	if err != nil {
		return nil, err
	}
	return s.ScorePreds(filepath.Base(filepath.Clean(dir)), dir, preds, e)
}

// CheckAgainstData checks a variant's prediction files against the data
// files in dataDir: every prediction's (answers, length) must occur in the
// data set (pred.py reorders lines, so they are matched as a multiset). It
// returns notes for prediction files that cover only part of a data set.
func CheckAgainstData(v *Variant, dataDir string, e bool, preds map[string][]Record) ([]string, error) {
	var notes []string
	names := make([]string, 0, len(preds))
	for n := range preds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		data, err := ReadDataset(dataDir, name, e)
		if err != nil {
			return nil, err
		}
		key := func(r Record) string { return fmt.Sprintf("%d\x00%q", r.Length, r.Answers) }
		have := map[string]int{}
		for _, r := range data {
			have[key(r)]++
		}
		for i, r := range preds[name] {
			k := key(r)
			if have[k] == 0 {
				return nil, fmt.Errorf("%s: prediction %d (length %d) matches no record of %s in %s (or is a duplicate)",
					v.Dir, i+1, r.Length, FileName(name, e), dataDir)
			}
			have[k]--
		}
		if len(preds[name]) < len(data) {
			notes = append(notes, fmt.Sprintf("%s: %s covers %d of %d samples", v.Name, name, len(preds[name]), len(data)))
		}
	}
	return notes, nil
}

// ReadPredDir reads the prediction files of a directory, keyed by data set:
// the data set is the file name up to the first '.' (eval.py); for
// LongBench-E pred.py writes the base key, and <key>_e.jsonl is accepted
// too. A .jsonl file that names no data set is an error, as it is in
// eval.py (KeyError).
func ReadPredDir(dir string, e bool) (map[string][]Record, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string][]Record{}
	for _, ent := range entries {
		fn := ent.Name()
		if ent.IsDir() || !strings.HasSuffix(fn, "jsonl") {
			continue
		}
		name, _, _ := strings.Cut(fn, ".")
		if e {
			name = strings.TrimSuffix(name, "_e")
		}
		if _, err := Lookup(name); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, fn), err)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s: two prediction files for %s", dir, name)
		}
		recs, err := ReadFile(filepath.Join(dir, fn))
		if err != nil {
			return nil, err
		}
		out[name] = recs
	}
	return out, nil
}

// ScorePreds scores records read by ReadPredDir.
func (s *Scorer) ScorePreds(name, dir string, preds map[string][]Record, e bool) (*Variant, error) {
	if len(preds) == 0 {
		return nil, fmt.Errorf("%s: no <dataset>.jsonl prediction files: %w", dir, fs.ErrNotExist)
	}
	v := &Variant{Name: name, Dir: dir, Scores: map[string]*Score{}}
	for ds, recs := range preds {
		sc, err := s.ScoreRecords(ds, recs, e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
		v.Scores[ds] = sc
	}
	return v, nil
}

// Row is one line of a comparison: a data set, a category mean or a
// language average, for one bucket ("" in v1), with one value per variant.
type Row struct {
	Kind   string     `json:"kind"` // "dataset", "category" or "average"
	Lang   string     `json:"lang,omitempty"`
	Name   string     `json:"name"`
	Bucket string     `json:"bucket,omitempty"`
	Values []*float64 `json:"values"`         // nil: missing for that variant
	Counts []int      `json:"counts"`         // samples (dataset rows) or data sets averaged
	Deltas []*float64 `json:"delta_to_first"` // Values[i] - Values[0]
}

// Compare builds the comparison rows: every data set any variant has, in
// §A.2 order, then per language (en: English + code, zh: Chinese + code,
// §A.3 "How the README averages are formed") the mean of the data set
// scores of each category and the mean over categories (the README "Avg"
// convention of issue #19). Their rounding is UNKNOWN in the spec (§A.3):
// they are plain means of the rounded data set scores, not rounded.
func Compare(vs []*Variant, e bool) []Row {
	buckets := []string{""}
	if e {
		buckets = Buckets
	}
	get := func(v *Variant, ds, b string) (*float64, int) {
		sc, ok := v.Scores[ds]
		if !ok {
			return nil, 0
		}
		if b == "" {
			return sc.Score, sc.N
		}
		return sc.Buckets[b], sc.BucketN[b]
	}
	var rows []Row
	for _, d := range Datasets {
		present := false
		for _, v := range vs {
			if _, ok := v.Scores[d.Name]; ok {
				present = true
			}
		}
		if !present {
			continue
		}
		for _, b := range buckets {
			r := Row{Kind: "dataset", Lang: d.Lang, Name: d.Name, Bucket: b}
			for _, v := range vs {
				val, n := get(v, d.Name, b)
				r.Values, r.Counts = append(r.Values, val), append(r.Counts, n)
			}
			rows = append(rows, withDeltas(r))
		}
	}
	for _, lang := range []string{LangEN, LangZH} {
		for _, b := range buckets {
			var catMeans [][]float64 = make([][]float64, len(vs))
			for _, cat := range Categories {
				r := Row{Kind: "category", Lang: lang, Name: cat, Bucket: b}
				any := false
				for vi, v := range vs {
					sum, n := 0.0, 0
					for _, d := range Datasets {
						if d.Category != cat || (d.Lang != lang && d.Lang != LangCode) {
							continue
						}
						if val, _ := get(v, d.Name, b); val != nil {
							sum += *val
							n++
						}
					}
					if n == 0 {
						r.Values, r.Counts = append(r.Values, nil), append(r.Counts, 0)
						continue
					}
					any = true
					m := sum / float64(n)
					catMeans[vi] = append(catMeans[vi], m)
					r.Values, r.Counts = append(r.Values, &m), append(r.Counts, n)
				}
				if any {
					rows = append(rows, withDeltas(r))
				}
			}
			r := Row{Kind: "average", Lang: lang, Name: "Avg", Bucket: b}
			any := false
			for vi := range vs {
				if len(catMeans[vi]) == 0 {
					r.Values, r.Counts = append(r.Values, nil), append(r.Counts, 0)
					continue
				}
				any = true
				sum := 0.0
				for _, m := range catMeans[vi] {
					sum += m
				}
				m := sum / float64(len(catMeans[vi]))
				r.Values, r.Counts = append(r.Values, &m), append(r.Counts, len(catMeans[vi]))
			}
			if any {
				rows = append(rows, withDeltas(r))
			}
		}
	}
	return rows
}

func withDeltas(r Row) Row {
	r.Deltas = make([]*float64, len(r.Values))
	if len(r.Values) == 0 || r.Values[0] == nil {
		return r
	}
	for i, v := range r.Values {
		if v != nil {
			d := *v - *r.Values[0]
			r.Deltas[i] = &d
		}
	}
	return r
}

// Mismatched reports whether the variants score different sets of data
// sets (then the category means and their differences compare unlike sets).
func Mismatched(vs []*Variant) bool {
	for _, v := range vs[1:] {
		if len(v.Scores) != len(vs[0].Scores) {
			return true
		}
		for k := range v.Scores {
			if _, ok := vs[0].Scores[k]; !ok {
				return true
			}
		}
	}
	return false
}
