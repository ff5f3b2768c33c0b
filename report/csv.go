package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"github.com/misabench/misabench/eval"
)

// csvHeader is the header row CSV writes.
var csvHeader = []string{
	"method", "kind", "heads", "block", "router", "pool", "stage1", "hisa_block", "hisa_blocks",
	"layer", "group", "rows", "trivial",
	"recall_mean", "recall_p5", "recall_min", "recall_n",
	"iou_mean", "iou_p5", "iou_min", "iou_n",
	"mass_mean", "mass_p5", "mass_min", "mass_n",
	"router_precision_mean", "router_precision_p5", "router_precision_min", "router_precision_n",
	"cost_ratio",
}

// CSV writes one record per Stats after a header row. Layer is -1 for
// overall and group rows; the router precision fields are empty for methods
// without a router. Numbers keep full precision (shortest exact form).
func CSV(w io.Writer, stats []eval.Stats) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	for _, s := range stats {
		p := s.Params
		rec := []string{
			s.Method, string(p.Kind), itoa(p.Heads), itoa(p.Block), string(p.Router), string(p.Pool),
			itoa(p.Stage1), itoa(p.HisaBlock), itoa(p.HisaBlocks),
			strconv.Itoa(s.Layer), s.Group, strconv.Itoa(s.Rows), strconv.Itoa(s.Trivial),
		}
		rec = appendSummary(rec, &s.Recall)
		rec = appendSummary(rec, &s.IoU)
		rec = appendSummary(rec, &s.Mass)
		rec = appendSummary(rec, s.RouterPrecision)
		rec = append(rec, ftoa(s.CostRatio))
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	return nil
}

// appendSummary appends mean, p5, min and n; all empty for a nil summary.
func appendSummary(rec []string, s *eval.Summary) []string {
	if s == nil {
		return append(rec, "", "", "", "")
	}
	return append(rec, ftoa(s.Mean), ftoa(s.P5), ftoa(s.Min), strconv.Itoa(s.N))
}

func ftoa(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// itoa leaves parameters a method does not use empty rather than 0.
func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// JSON writes the result as indented JSON, exactly as Result.WriteFile does.
func JSON(w io.Writer, r *eval.Result) error {
	return r.Encode(w)
}
