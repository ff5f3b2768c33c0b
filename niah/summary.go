package niah

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// Green reports whether a score is green: the whole needle kept (indexer
// level) or every sample right (model level), i.e. exactly 1.
func Green(score float64) bool { return score >= 1 }

// HasData reports whether a cell was measured (N > 0); a grid built from
// traces may have (context, depth) pairs no trace covers.
func (c Cell) HasData() bool { return c.N > 0 }

// Summary condenses one grid.
type Summary struct {
	Method string `json:"method"`
	Level  string `json:"level"`
	// Cells counts the cells with data; Green those scoring 1.
	Cells int `json:"cells"`
	Green int `json:"green"`
	// Mean and Min are over the cells with data (0 when there is none).
	Mean float64 `json:"mean"`
	Min  float64 `json:"min"`
	// Worst is the lowest-scoring cell (ties: the longest context, then
	// the smallest depth), nil when no cell has data.
	Worst *Cell `json:"worst,omitempty"`
}

// Summarize computes a grid's summary.
func Summarize(g *Grid) Summary {
	s := Summary{Method: g.Method, Level: g.Level}
	sum := 0.0
	for _, row := range g.Cells {
		for _, c := range row {
			if !c.HasData() {
				continue
			}
			s.Cells++
			sum += c.Score
			if Green(c.Score) {
				s.Green++
			}
			if w := s.Worst; w == nil || c.Score < w.Score ||
				(c.Score == w.Score && (c.Ctx > w.Ctx || (c.Ctx == w.Ctx && c.Depth < w.Depth))) {
				cc := c
				cc.PerLayer = slices.Clone(c.PerLayer)
				s.Worst = &cc
			}
		}
	}
	if s.Cells > 0 {
		s.Mean = sum / float64(s.Cells)
		s.Min = s.Worst.Score
	}
	return s
}

// dash stands for a value that does not exist.
const dash = "—"

func fmtScore(x float64) string { return fmt.Sprintf("%.4f", x) }

// worstLabel describes a summary's worst cell: "0.8333 at 32K, 57%".
func worstLabel(s Summary) string {
	if s.Worst == nil {
		return dash
	}
	return fmt.Sprintf("%s at %s, depth %s", fmtScore(s.Worst.Score), CtxLabel(s.Worst.Ctx), DepthLabel(s.Worst.Depth))
}

// SummaryTable writes one line per grid: method, green cells / cells with
// data, mean, min and the worst cell; then caption, if any.
func SummaryTable(w io.Writer, res *Result, caption string) error {
	header := []string{"method", "level", "green", "mean", "min", "worst cell"}
	align := []tw.Align{tw.AlignLeft, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignLeft}
	var rows [][]string
	for i := range res.Grids {
		s := Summarize(&res.Grids[i])
		mean, lo := fmtScore(s.Mean), fmtScore(s.Min)
		if s.Cells == 0 {
			mean, lo = dash, dash
		}
		rows = append(rows, []string{s.Method, s.Level, fmt.Sprintf("%d/%d", s.Green, s.Cells), mean, lo, worstLabel(s)})
	}
	t := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}))
	t.Header(header)
	if err := t.Bulk(rows); err != nil {
		return fmt.Errorf("niah table: %w", err)
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("niah table: %w", err)
	}
	if caption != "" {
		if _, err := fmt.Fprintln(w, caption); err != nil {
			return fmt.Errorf("niah table: %w", err)
		}
	}
	return nil
}

// WriteJSON writes the result as indented JSON.
func WriteJSON(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return fmt.Errorf("niah json: %w", err)
	}
	return nil
}

// ReadJSON reads a result written by WriteJSON and checks its schema.
func ReadJSON(r io.Reader) (*Result, error) {
	var res Result
	if err := json.NewDecoder(r).Decode(&res); err != nil {
		return nil, fmt.Errorf("niah json: %w", err)
	}
	if res.Schema != SchemaV1 {
		return nil, fmt.Errorf("niah json: schema %q, want %q", res.Schema, SchemaV1)
	}
	return &res, nil
}

// CSVHeader is the fixed part of the CSV header; one column "layer_<L>"
// per layer of any grid follows, holding that layer's retention (empty
// where the grid has no such layer, and for model-level grids).
var CSVHeader = []string{"method", "level", "ctx", "depth", "depth_percent", "score", "green", "n"}

// WriteCSV writes one record per cell of every grid (cells without data
// are left out).
func WriteCSV(w io.Writer, res *Result) error {
	if res == nil {
		return errors.New("niah csv: no result")
	}
	var layers []int
	for _, g := range res.Grids {
		for _, l := range g.Layers {
			if !slices.Contains(layers, l) {
				layers = append(layers, l)
			}
		}
	}
	slices.Sort(layers)
	header := slices.Clone(CSVHeader)
	for _, l := range layers {
		header = append(header, "layer_"+strconv.Itoa(l))
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("niah csv: %w", err)
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	for _, g := range res.Grids {
		col := map[int]int{}
		for i, l := range g.Layers {
			col[l] = i
		}
		for _, row := range g.Cells {
			for _, c := range row {
				if !c.HasData() {
					continue
				}
				rec := []string{g.Method, g.Level, strconv.Itoa(c.Ctx), f(c.Depth), f(c.Depth * 100), f(c.Score),
					strconv.FormatBool(Green(c.Score)), strconv.Itoa(c.N)}
				for _, l := range layers {
					v := ""
					if i, ok := col[l]; ok && i < len(c.PerLayer) {
						v = f(c.PerLayer[i])
					}
					rec = append(rec, v)
				}
				if err := cw.Write(rec); err != nil {
					return fmt.Errorf("niah csv: %w", err)
				}
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("niah csv: %w", err)
	}
	return nil
}
