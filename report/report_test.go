package report

import (
	"bytes"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/misabench/misabench/eval"
	"github.com/misabench/misabench/indexer"
)

var misa = indexer.Method{Kind: indexer.MISA, Heads: 8, Router: indexer.RouterPooled, Block: 1024, Pool: indexer.PoolCausal}

func sampleStats() []eval.Stats {
	return []eval.Stats{
		{
			Method: "dsa", Params: indexer.Method{Kind: indexer.DSA}, Layer: 0, Rows: 512, Trivial: 2,
			Recall: eval.Summary{Mean: 1, P5: 1, Min: 1, N: 510}, IoU: eval.Summary{Mean: 1, P5: 1, Min: 1, N: 510},
			Mass: eval.Summary{Mean: 1, P5: 1, Min: 1, N: 510}, CostRatio: 1,
		},
		{
			Method: misa.Name(), Params: misa, Layer: 0, Rows: 512, Trivial: 2,
			Recall:          eval.Summary{Mean: 0.93456, P5: 0.81234, Min: 0.5, N: 510},
			IoU:             eval.Summary{Mean: 0.88, P5: 0.7, Min: 0.33, N: 510},
			Mass:            eval.Summary{Mean: 0.97, P5: 0.9, Min: 0.8, N: 510},
			RouterPrecision: &eval.Summary{Mean: 0.625, P5: 0.25, Min: 0, N: 510},
			CostRatio:       0.140625,
		},
		{
			Method: misa.Name(), Params: misa, Layer: -1, Rows: 4, Trivial: 4, CostRatio: 2.5,
		},
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	if err := Table(&b, sampleStats(), TableOptions{Caption: "synthetic data: not a claim about real models"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"layer", "method", "rows (trivial)", "IoU", "router prec",
		"misa(h=8,pooled,B=1024)", "512 (2)", "0.9346", "0.8123", "0.5000", "0.8800", "0.9700", "0.6250", "0.1406",
		"all", "4 (4)", "2.5000", "—", "synthetic data",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "group") {
		t.Errorf("table has a group column without groups:\n%s", out)
	}

	// The dsa line has no router: a dash, not 0.
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, " dsa ") && !strings.Contains(line, "—") {
			t.Errorf("dsa line without a dash for router precision: %q", line)
		}
	}

	b.Reset()
	g := sampleStats()
	g[2].Group = "narrativeqa"
	if err := Table(&b, g, TableOptions{Style: StyleMarkdown}); err != nil {
		t.Fatal(err)
	}
	// Text columns left-aligned, numbers right-aligned: |:--- and ---:|.
	if md := b.String(); !strings.Contains(md, " group ") || !strings.Contains(md, "narrativeqa") ||
		!strings.Contains(md, "|:--") || !strings.Contains(md, "-:|") {
		t.Errorf("markdown table:\n%s", md)
	}

	b.Reset()
	if err := Table(&b, sampleStats(), TableOptions{Style: StyleASCII}); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "+-") || strings.Contains(out, "┌") {
		t.Errorf("ascii table:\n%s", out)
	}
}

func TestDiffTable(t *testing.T) {
	d := eval.Diff{
		Rows: []eval.DiffRow{
			{Method: "misa", Layer: 3, Metric: "recall", Base: 0.95, Current: 0.9, Delta: -0.05, Fail: true, Note: "dropped 0.0500, tolerance 0.0100"},
			{Method: "hisa", Layer: -1, Metric: "recall", Base: 0.9, Note: eval.NoteMissing, Fail: true},
			{Method: "dsa", Layer: 0, Metric: "recall", Base: 1, Current: 1},
		},
		Failed: true,
		Notes:  []string{"backend differs"},
	}
	var b bytes.Buffer
	if err := DiffTable(&b, d); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"FAIL", "ok", "-0.0500", "0.9500", "0.9000", eval.NoteMissing, "all", "note: backend differs"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff table lacks %q:\n%s", want, out)
		}
	}
}

func TestCSV(t *testing.T) {
	var b bytes.Buffer
	if err := CSV(&b, sampleStats()); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("%d records, want a header and 3", len(recs))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	get := func(r int, name string) string {
		i, ok := col[name]
		if !ok {
			t.Fatalf("no column %q", name)
		}
		return recs[r][i]
	}
	checks := []struct {
		row        int
		col, value string
	}{
		{2, "method", "misa(h=8,pooled,B=1024)"}, {2, "kind", "misa"}, {2, "heads", "8"}, {2, "block", "1024"},
		{2, "layer", "0"}, {2, "rows", "512"}, {2, "trivial", "2"},
		{2, "recall_mean", "0.93456"}, {2, "recall_p5", "0.81234"}, {2, "recall_min", "0.5"}, {2, "recall_n", "510"},
		{2, "iou_mean", "0.88"}, {2, "mass_p5", "0.9"}, {2, "router_precision_mean", "0.625"},
		{2, "router_precision_n", "510"}, {2, "cost_ratio", "0.140625"},
		{1, "router_precision_mean", ""}, {1, "heads", ""},
		{3, "layer", "-1"}, {3, "recall_n", "0"},
	}
	for _, c := range checks {
		if got := get(c.row, c.col); got != c.value {
			t.Errorf("record %d %s = %q, want %q", c.row, c.col, got, c.value)
		}
	}
}

func TestJSON(t *testing.T) {
	r := &eval.Result{Created: time.Unix(0, 0).UTC(), Backend: "cpu", Layers: sampleStats()}
	var b bytes.Buffer
	if err := JSON(&b, r); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, `"schema": "misabench.recall/v1"`) || !strings.Contains(out, `"router_precision"`) {
		t.Errorf("json:\n%s", out)
	}
}

// curves makes per-layer stats for a few methods over 61 layers.
func curves() []eval.Stats {
	var st []eval.Stats
	methods := []indexer.Method{
		{Kind: indexer.DSA},
		misa,
		{Kind: indexer.MISADagger, Heads: 8, Router: indexer.RouterPooled, Block: 1024, Pool: indexer.PoolCausal, Stage1: 8192},
		{Kind: indexer.HISA, HisaBlock: 128, HisaBlocks: 64},
	}
	for mi, m := range methods {
		for l := range 61 {
			r := 1 - float64(mi)*0.04*(1+math.Sin(float64(l)/5))
			st = append(st, eval.Stats{Method: m.Name(), Params: m, Layer: l, Rows: 10,
				Recall: eval.Summary{Mean: r, P5: r, Min: r, N: 10}})
		}
		st = append(st, eval.Stats{Method: m.Name(), Layer: -1, Recall: eval.Summary{Mean: 0.1, N: 1}})
	}
	return st
}

func TestRecallPlot(t *testing.T) {
	dir := t.TempDir()
	png, svg := filepath.Join(dir, "recall.png"), filepath.Join(dir, "recall.svg")
	if err := RecallPlot(curves(), "", png, svg); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(png)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 1000 || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("png: %d bytes, prefix %q", len(b), b[:min(8, len(b))])
	}
	b, err = os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(b))
	if !strings.HasPrefix(s, "<?xml") && !strings.HasPrefix(s, "<svg") {
		t.Errorf("svg starts with %q", s[:min(20, len(s))])
	}
	if !strings.Contains(s, "paper") {
		t.Error("svg lacks the paper's claim label")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d files in the output directory, want 2", len(entries))
	}

	if err := RecallPlot(curves()[:0], "", png, ""); err == nil {
		t.Error("empty stats: no error")
	}
	if err := RecallPlot(curves(), "", "", ""); err == nil {
		t.Error("no paths: no error")
	}
	// One layer, one method still draws.
	if err := RecallPlot(curves()[:1], "one layer", png, ""); err != nil {
		t.Errorf("one point: %v", err)
	}
}
