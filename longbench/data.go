// Package longbench scores LongBench v1 and LongBench-E predictions exactly
// as the official LongBench/eval.py and LongBench/metrics.py do (THUDM/LongBench
// @ 2e00731f), quirks included, and makes predictions as LongBench/pred.py
// does, against an OpenAI-compatible server (Run: official prompts,
// truncation, chat template rule, generation lengths). The specification is
// shared/research/evals.md part A; comments cite its sections (e.g. §A.4).
package longbench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Language of a data set (§A.2).
const (
	LangEN   = "en"
	LangZH   = "zh"
	LangCode = "code"
)

// Categories (§A.2, README "Task Type" table).
const (
	CatSingleDocQA = "Single-doc QA"
	CatMultiDocQA  = "Multi-doc QA"
	CatSummary     = "Summarization"
	CatFewShot     = "Few-shot"
	CatSynthetic   = "Synthetic"
	CatCode        = "Code completion"
)

// Categories in the order of the README tables.
var Categories = []string{CatSingleDocQA, CatMultiDocQA, CatSummary, CatFewShot, CatSynthetic, CatCode}

// Dataset describes one v1 data set (§A.2).
type Dataset struct {
	Name     string // dataset key, e.g. "trec"
	Lang     string // LangEN, LangZH or LangCode
	Category string
	// Metric is the name of the dataset2metric function in eval.py.
	Metric string
	// Samples is the v1 sample count (task.md).
	Samples int
	// MaxGen is max new tokens (dataset2maxlen.json).
	MaxGen int
	// E reports whether a LongBench-E config <Name>_e exists.
	E bool
}

// Datasets are the 21 v1 data sets in the order of §A.2.
var Datasets = []Dataset{
	{"narrativeqa", LangEN, CatSingleDocQA, "qa_f1_score", 200, 128, false},
	{"qasper", LangEN, CatSingleDocQA, "qa_f1_score", 200, 128, true},
	{"multifieldqa_en", LangEN, CatSingleDocQA, "qa_f1_score", 150, 64, true},
	{"multifieldqa_zh", LangZH, CatSingleDocQA, "qa_f1_zh_score", 200, 64, false},
	{"hotpotqa", LangEN, CatMultiDocQA, "qa_f1_score", 200, 32, true},
	{"2wikimqa", LangEN, CatMultiDocQA, "qa_f1_score", 200, 32, true},
	{"musique", LangEN, CatMultiDocQA, "qa_f1_score", 200, 32, false},
	{"dureader", LangZH, CatMultiDocQA, "rouge_zh_score", 200, 128, false},
	{"gov_report", LangEN, CatSummary, "rouge_score", 200, 512, true},
	{"qmsum", LangEN, CatSummary, "rouge_score", 200, 512, false},
	{"multi_news", LangEN, CatSummary, "rouge_score", 200, 512, true},
	{"vcsum", LangZH, CatSummary, "rouge_zh_score", 200, 512, false},
	{"trec", LangEN, CatFewShot, "classification_score", 200, 64, true},
	{"triviaqa", LangEN, CatFewShot, "qa_f1_score", 200, 32, true},
	{"samsum", LangEN, CatFewShot, "rouge_score", 200, 128, true},
	{"lsht", LangZH, CatFewShot, "classification_score", 200, 64, false},
	{"passage_count", LangEN, CatSynthetic, "count_score", 200, 32, true},
	{"passage_retrieval_en", LangEN, CatSynthetic, "retrieval_score", 200, 32, true},
	{"passage_retrieval_zh", LangZH, CatSynthetic, "retrieval_zh_score", 200, 32, false},
	{"lcc", LangCode, CatCode, "code_sim_score", 500, 64, true},
	{"repobench-p", LangCode, CatCode, "code_sim_score", 500, 64, true},
}

// ESets are the 13 LongBench-E data sets (base keys; files are <key>_e.jsonl).
var ESets = func() []string {
	var s []string
	for _, d := range Datasets {
		if d.E {
			s = append(s, d.Name)
		}
	}
	return s
}()

// ErrUnknownDataset is returned for a data set name that is not one of the 21.
var ErrUnknownDataset = errors.New("unknown LongBench data set")

// Lookup returns the data set with this key (a trailing "_e" is accepted
// for the 13 LongBench-E sets).
func Lookup(name string) (Dataset, error) {
	base, e := name, false
	if len(name) > 2 && name[len(name)-2:] == "_e" {
		base, e = name[:len(name)-2], true
	}
	for _, d := range Datasets {
		if d.Name == base {
			if e && !d.E {
				return Dataset{}, fmt.Errorf("%w: %q (%s has no LongBench-E config)", ErrUnknownDataset, name, base)
			}
			return d, nil
		}
	}
	return Dataset{}, fmt.Errorf("%w: %q", ErrUnknownDataset, name)
}

// Record is one JSONL line: a data record (§A.8) or a prediction record as
// pred.py writes it (§A.7 step 7: pred, answers, all_classes, length; the
// files `longbench run` writes add _id). Context and Input, the prompt's
// fields, are nil when the line has no such key (prediction files).
type Record struct {
	ID         string   `json:"_id,omitempty"`
	Pred       *string  `json:"pred,omitempty"`
	Answers    []string `json:"answers"`
	AllClasses []string `json:"all_classes"`
	Length     int      `json:"length"`
	Dataset    string   `json:"dataset,omitempty"`
	Language   string   `json:"language,omitempty"`
	Context    *string  `json:"context,omitempty"`
	Input      *string  `json:"input,omitempty"`
}

// LineError is a JSONL line that does not parse.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// FileName is the file of a data set in a v1 directory: <key>.jsonl, or
// <key>_e.jsonl for LongBench-E (§A.2, §A.3).
func FileName(name string, e bool) string {
	if e {
		return name + "_e.jsonl"
	}
	return name + ".jsonl"
}

// ReadDataset reads dir/<name>.jsonl (or <name>_e.jsonl with e). A missing
// file is an error wrapping fs.ErrNotExist.
func ReadDataset(dir, name string, e bool) ([]Record, error) {
	d, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	if e && !d.E {
		return nil, fmt.Errorf("%w: %q has no LongBench-E config", ErrUnknownDataset, name)
	}
	return ReadFile(filepath.Join(dir, FileName(d.Name, e)))
}

// ReadFile reads a JSONL file of records. Blank lines are skipped (Python's
// json.loads would reject them, but pred.py never writes one).
func ReadFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := Read(f, path)
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// Read reads JSONL records from r; name is used in errors.
func Read(r io.Reader, name string) ([]Record, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var recs []Record
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			var rec Record
			if jerr := json.Unmarshal(b, &rec); jerr != nil {
				return nil, &LineError{File: name, Line: line, Err: jerr}
			}
			recs = append(recs, rec)
		}
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
	}
}
