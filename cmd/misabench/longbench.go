package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/misabench/misabench/longbench"
)

// LongBenchScoreOptions are the options of `misabench longbench score`.
type LongBenchScoreOptions struct {
	// Data is an optional directory of the official v1 JSONL files; when
	// set, every prediction is checked against it.
	Data string
	// Preds are official prediction directories (pred/<model>/ as pred.py
	// writes them); the first is the baseline of the differences.
	Preds []string
	// E scores LongBench-E (length buckets).
	E bool
	// RougeIterative scores long sentence pairs that pltrdy/rouge 1.0.1
	// scores 0 (RecursionError).
	RougeIterative bool
	// JiebaDir holds gojieba's jieba.dict.utf8 and hmm_model.utf8 (default:
	// gojieba's directory in the build machine's module cache).
	JiebaDir string
	// JiebaDict and JiebaHMM override the jieba dictionary (e.g. Python
	// jieba's dict.txt) and HMM model (cppjieba's hmm_model.utf8 layout).
	JiebaDict, JiebaHMM string
	// FuzzBackend is fuzz.ratio's backend for code_sim_score: "difflib"
	// or "levenshtein" (python-Levenshtein installed).
	FuzzBackend string
	// Python310 matches CPython ≤ 3.10's RecursionError boundary in ROUGE.
	Python310 bool
	// Samples keeps the per-sample scores in the JSON output.
	Samples        bool
	Format         string
	Stdout, Stderr io.Writer
}

func newLongBenchCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "longbench",
		Short: "Run LongBench v1 and LongBench-E against a server, and score predictions as the official eval.py does",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	opts := &LongBenchScoreOptions{}
	score := &cobra.Command{
		Use:   "score",
		Short: "Score prediction directories and compare them",
		Long: `score reads official LongBench prediction directories (one <dataset>.jsonl per
data set, lines with "pred", "answers", "all_classes" and "length", as
LongBench/pred.py writes them) and scores them exactly as LongBench/eval.py
does: one column per --pred (named after its directory), the difference to
the first, then the category means and the average over categories per
language (English + code, Chinese + code).

Chinese data sets scored on jieba tokens (multifieldqa_zh, dureader, vcsum)
are segmented by a Go port of Python jieba's accurate mode on gojieba's
dictionary, edited into Python jieba 0.42.1's dict.txt; it cut 123,915 test
texts exactly as Python jieba does (docs/longbench.md). gojieba's files are
read from its directory in the module cache of the machine that built
misabench: elsewhere (or without cgo) copy jieba.dict.utf8 and hmm_model.utf8
from there and give --jieba-dir (or MISABENCH_JIEBA_DIR). lcc and
repobench-p use fuzzywuzzy's difflib backend, as LongBench/requirements.txt
installs it; --fuzz-backend levenshtein matches an install that has
python-Levenshtein.
--rouge-iterative scores long sentence pairs that the official ROUGE package
(pltrdy/rouge 1.0.1) scores 0 through a RecursionError; the default matches it.`,
		Example: `  misabench longbench score --pred pred/llama --pred pred/llama-misa
  misabench longbench score --e --data data/ --pred pred_e/llama --format json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			opts.Format = a.global.Format
			opts.Stdout, opts.Stderr = a.out, a.errOut
			return runLongBenchScore(cmd.Context(), opts)
		}),
	}
	f := score.Flags()
	f.StringVar(&opts.Data, "data", "", "`dir`ectory of the official <dataset>.jsonl (and <dataset>_e.jsonl) files, to check the predictions against (optional)")
	f.StringArrayVar(&opts.Preds, "pred", nil, "prediction `dir`ectory (repeat to compare; the first is the baseline)")
	f.BoolVar(&opts.E, "e", false, "score LongBench-E (0-4k, 4-8k, 8k+ length buckets)")
	f.BoolVar(&opts.RougeIterative, "rouge-iterative", false, "score long sentence pairs that pltrdy/rouge 1.0.1 scores 0 (RecursionError) instead of matching it")
	f.StringVar(&opts.JiebaDir, "jieba-dir", "", "`dir`ectory holding gojieba's "+longbench.JiebaDictFile+" and "+longbench.JiebaHMMFile+" (default: gojieba's directory in the module cache of the machine that built misabench)")
	f.StringVar(&opts.JiebaDict, "jieba-dict", "", "jieba dictionary `file` (\"word freq tag\" lines, e.g. Python jieba's dict.txt), read as it is (default: --jieba-dir's, edited into Python jieba's dict.txt)")
	f.StringVar(&opts.FuzzBackend, "fuzz-backend", "difflib", "fuzzywuzzy's fuzz.ratio backend for lcc and repobench-p: difflib (what LongBench/requirements.txt installs) or levenshtein (python-Levenshtein installed)")
	f.BoolVar(&opts.Python310, "python310", false, "place pltrdy/rouge's RecursionError boundary where CPython 3.10 and older raise it (one frame earlier than 3.11+, the default)")
	f.BoolVar(&opts.Samples, "samples", false, "with --format json, also write each data set's per-sample scores (in file order)")
	f.StringVar(&opts.JiebaHMM, "jieba-hmm", "", "jieba HMM model `file` in cppjieba's hmm_model.utf8 layout (default: --jieba-dir's)")
	cmd.AddCommand(score, newLongBenchRunCmd(a), newLongBenchCutCmd(a))
	return cmd
}

// longBenchResult is the JSON output.
type longBenchResult struct {
	E        bool                 `json:"e"`
	Variants []*longbench.Variant `json:"variants"`
	Rows     []longbench.Row      `json:"rows"`
	Notes    []string             `json:"notes,omitempty"`
}

func runLongBenchScore(_ context.Context, opts *LongBenchScoreOptions) error {
	format, err := parseFormat(opts.Format, "table", "json", "csv")
	if err != nil {
		return err
	}
	if len(opts.Preds) == 0 {
		return usageErrorf("longbench score: give at least one --pred directory")
	}
	var lev bool
	switch opts.FuzzBackend {
	case "", "difflib":
	case "levenshtein":
		lev = true
	default:
		return usageErrorf("longbench score: --fuzz-backend %q: want difflib or levenshtein", opts.FuzzBackend)
	}
	sc := &longbench.Scorer{Metrics: longbench.Metrics{RougeIterative: opts.RougeIterative, FuzzLevenshtein: lev, Python310: opts.Python310}}
	res := &longBenchResult{E: opts.E}
	seen := map[string]bool{}
	for _, dir := range opts.Preds {
		preds, err := longbench.ReadPredDir(dir, opts.E)
		if err != nil {
			return badInput(err)
		}
		if sc.Metrics.Jieba == nil && needsJieba(preds) {
			seg, dict, err := loadJieba(opts)
			if err != nil {
				return err
			}
			sc.Metrics.Jieba = seg
			res.Notes = append(res.Notes, "Chinese data sets are segmented by a Go port of Python jieba (accurate mode, HMM) on "+dict)
		}
		name := filepath.Base(filepath.Clean(dir))
		if seen[name] {
			name = filepath.Clean(dir)
		}
		seen[name] = true
		v, err := sc.ScorePreds(name, dir, preds, opts.E)
		if errors.Is(err, longbench.ErrNoJieba) {
			return err // not the input's fault: exit 1
		}
		if err != nil {
			return badInput(err)
		}
		if opts.Data != "" {
			notes, err := longbench.CheckAgainstData(v, opts.Data, opts.E, preds)
			if err != nil {
				return badInput(err)
			}
			res.Notes = append(res.Notes, notes...)
		}
		if !opts.Samples {
			for _, sc := range v.Scores {
				sc.Samples = nil
			}
		}
		res.Variants = append(res.Variants, v)
	}
	if longbench.Mismatched(res.Variants) {
		res.Notes = append(res.Notes, "the directories hold different data sets: category means and their differences compare unlike sets")
	}
	res.Notes = append(res.Notes, "category means and averages are plain means of the rounded data set scores (the README's rounding is unknown)")
	res.Rows = longbench.Compare(res.Variants, opts.E)
	out := writerOr(opts.Stdout)
	switch format {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	case "csv":
		return longBenchCSV(out, res)
	}
	return longBenchTables(out, res)
}

// loadJieba loads the jieba port: the dictionary and HMM model in
// --jieba-dir (default: gojieba's directory), gojieba's dictionary edited into
// Python jieba's dict.txt (longbench.LoadJiebaPy); --jieba-dict and
// --jieba-hmm override either file, a --jieba-dict file read as it is. It
// also says which dictionary it loaded, for the notes. A missing file is bad
// input (exit 2), named with the flag that fixes it; so is no directory at
// all (built without cgo): Chinese data then needs --jieba-dir.
func loadJieba(opts *LongBenchScoreOptions) (longbench.Segmenter, string, error) {
	dir := opts.JiebaDir
	hint := fmt.Sprintf("the --jieba-dir (or MISABENCH_JIEBA_DIR) directory must hold %s and %s", longbench.JiebaDictFile, longbench.JiebaHMMFile)
	if dir == "" {
		dir = longbench.DefaultJiebaDir()
		hint = fmt.Sprintf("the default is gojieba's directory in the module cache of the machine that built misabench: copy %s and %s from there (gojieba v1.4.6's deps/cppjieba/dict) and give --jieba-dir DIR or set MISABENCH_JIEBA_DIR",
			longbench.JiebaDictFile, longbench.JiebaHMMFile)
	}
	if dir == "" && (opts.JiebaDict == "" || opts.JiebaHMM == "") {
		return nil, "", badInput(fmt.Errorf("%w: built without cgo, so no default jieba files; give --jieba-dir DIR holding %s and %s (or --jieba-dict and --jieba-hmm)",
			longbench.ErrNoJieba, longbench.JiebaDictFile, longbench.JiebaHMMFile))
	}
	dict, hmm := longbench.JiebaFiles(dir)
	load, desc := longbench.LoadJiebaPy, dict+" edited into Python jieba 0.42.1's dict.txt"
	if opts.JiebaDict != "" {
		dict, load, desc = opts.JiebaDict, longbench.LoadJieba, opts.JiebaDict
	}
	if opts.JiebaHMM != "" {
		hmm = opts.JiebaHMM
	}
	for _, f := range []struct{ path, flag string }{{dict, opts.JiebaDict}, {hmm, opts.JiebaHMM}} {
		if f.flag != "" {
			continue // the load names the file the user gave
		}
		if _, err := os.Stat(f.path); err != nil {
			return nil, "", badInput(fmt.Errorf("jieba: %w; %s", err, hint))
		}
	}
	seg, err := load(dict, hmm)
	if err != nil {
		return nil, "", fmt.Errorf("jieba: %w", err)
	}
	return seg, desc, nil
}

// needsJieba reports whether some data set needs Chinese segmentation.
func needsJieba(preds map[string][]longbench.Record) bool {
	for name := range preds {
		if d, err := longbench.Lookup(name); err == nil && (d.Metric == "qa_f1_zh_score" || d.Metric == "rouge_zh_score") {
			return true
		}
	}
	return false
}

func fmtScore(v *float64) string {
	if v == nil {
		return "—"
	}
	return strconv.FormatFloat(*v, 'f', 2, 64)
}

func fmtDelta(v *float64) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%+.2f", *v)
}

func longBenchHeader(res *longBenchResult, first string) ([]string, int) {
	h := []string{"lang", first}
	if res.E {
		h = append(h, "bucket")
	}
	left := len(h)
	for i, v := range res.Variants {
		h = append(h, v.Name+" (n)")
		if i > 0 {
			h = append(h, "Δ "+v.Name)
		}
	}
	return h, left
}

func longBenchLine(r longbench.Row, e bool) []string {
	line := []string{r.Lang, r.Name}
	if e {
		line = append(line, r.Bucket)
	}
	for i := range r.Values {
		line = append(line, fmt.Sprintf("%s (%d)", fmtScore(r.Values[i]), r.Counts[i]))
		if i > 0 {
			line = append(line, fmtDelta(r.Deltas[i]))
		}
	}
	return line
}

func longBenchTables(w io.Writer, res *longBenchResult) error {
	var ds, cat [][]string
	for _, r := range res.Rows {
		if r.Kind == "dataset" {
			ds = append(ds, longBenchLine(r, res.E))
		} else {
			cat = append(cat, longBenchLine(r, res.E))
		}
	}
	h, left := longBenchHeader(res, "dataset")
	if err := renderPlain(w, h, ds, left); err != nil {
		return err
	}
	fmt.Fprintln(w)
	h, left = longBenchHeader(res, "category (data sets)")
	if err := renderPlain(w, h, cat, left); err != nil {
		return err
	}
	for _, n := range res.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
	return nil
}

func renderPlain(w io.Writer, header []string, rows [][]string, left int) error {
	align := make([]tw.Align, len(header))
	for i := range align {
		align[i] = tw.AlignRight
		if i < left {
			align[i] = tw.AlignLeft
		}
	}
	t := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}))
	t.Header(header)
	if err := t.Bulk(rows); err != nil {
		return fmt.Errorf("table: %w", err)
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("table: %w", err)
	}
	return nil
}

func longBenchCSV(w io.Writer, res *longBenchResult) error {
	cw := csv.NewWriter(w)
	h := []string{"kind", "lang", "name", "bucket"}
	for _, v := range res.Variants {
		h = append(h, v.Name, v.Name+" n", "delta "+v.Name)
	}
	if err := cw.Write(h); err != nil {
		return err
	}
	num := func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v, 'f', -1, 64)
	}
	for _, r := range res.Rows {
		line := []string{r.Kind, r.Lang, r.Name, r.Bucket}
		for i := range r.Values {
			line = append(line, num(r.Values[i]), strconv.Itoa(r.Counts[i]), num(r.Deltas[i]))
		}
		if err := cw.Write(line); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
