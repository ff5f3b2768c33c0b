package report

import (
	"fmt"
	"io"
	"slices"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/misabench/misabench/eval"
)

// Style is the look of a text table.
type Style int

// Table styles.
const (
	// StyleUnicode draws borders with box-drawing characters (the default).
	StyleUnicode Style = iota
	// StyleASCII draws borders with + - |, for logs and plain terminals.
	StyleASCII
	// StyleMarkdown writes a GitHub-flavoured Markdown table, for
	// BENCHMARKS.md and review comments.
	StyleMarkdown
)

// TableOptions configures Table and DiffTable.
type TableOptions struct {
	Style Style
	// Caption is printed under the table, e.g. the synthetic-data warning.
	Caption string
}

// dash stands for a value that does not exist (no non-trivial rows, or no
// router), as opposed to a measured zero.
const dash = "—"

// Table writes one line per Stats: layer ("all" for an overall row), group
// (only when some row has one), method, rows with the trivial ones in
// parentheses, recall mean/p5/min, IoU mean, mass mean, router precision
// mean, and cost ratio.
func Table(w io.Writer, stats []eval.Stats, opts TableOptions) error {
	grouped := slices.ContainsFunc(stats, func(s eval.Stats) bool { return s.Group != "" })
	header := []string{"layer"}
	if grouped {
		header = append(header, "group")
	}
	header = append(header, "method", "rows (trivial)",
		"recall", "recall p5", "recall min", "IoU", "mass", "router prec", "cost")
	left := len(header) - 8 // layer, group?, method: text; the rest: numbers

	rows := make([][]string, 0, len(stats))
	for _, s := range stats {
		row := []string{layerLabel(s.Layer)}
		if grouped {
			row = append(row, s.Group)
		}
		router := dash
		if s.RouterPrecision != nil {
			router = mean(*s.RouterPrecision)
		}
		row = append(row, s.Method, fmt.Sprintf("%d (%d)", s.Rows, s.Trivial),
			mean(s.Recall), p5(s.Recall), minOf(s.Recall),
			mean(s.IoU), mean(s.Mass), router, fmt.Sprintf("%.4f", s.CostRatio))
		rows = append(rows, row)
	}
	return render(w, header, rows, left, opts)
}

// DiffTable writes a regression check: one line per compared metric, then
// the comparison's notes.
func DiffTable(w io.Writer, d eval.Diff) error {
	header := []string{"layer", "method", "metric", "base", "current", "delta", "status", "note"}
	rows := make([][]string, 0, len(d.Rows))
	for _, r := range d.Rows {
		base, cur := fmt.Sprintf("%.4f", r.Base), fmt.Sprintf("%.4f", r.Current)
		delta := fmt.Sprintf("%+.4f", r.Delta)
		switch r.Note {
		case eval.NoteMissing:
			cur, delta = dash, dash
		case eval.NoteNew:
			base, delta = dash, dash
		}
		status := "ok"
		if r.Fail {
			status = "FAIL"
		}
		rows = append(rows, []string{layerLabel(r.Layer), r.Method, r.Metric, base, cur, delta, status, r.Note})
	}
	if err := render(w, header, rows, 3, TableOptions{}); err != nil {
		return err
	}
	for _, n := range d.Notes {
		if _, err := fmt.Fprintf(w, "note: %s\n", n); err != nil {
			return fmt.Errorf("diff table: %w", err)
		}
	}
	return nil
}

// render draws a table whose first left columns are text (left-aligned) and
// whose other columns are numbers (right-aligned, so decimals line up).
func render(w io.Writer, header []string, rows [][]string, left int, opts TableOptions) error {
	align := make([]tw.Align, len(header))
	for i := range align {
		align[i] = tw.AlignRight
		if i < left {
			align[i] = tw.AlignLeft
		}
	}
	// The last column of a diff (the note) is text too.
	if len(header) > 0 && header[len(header)-1] == "note" {
		align[len(align)-1] = tw.AlignLeft
	}

	options := []tablewriter.Option{
		// Keep headers as written: auto-format would upper-case "IoU".
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}),
	}
	switch opts.Style {
	case StyleASCII:
		options = append(options, tablewriter.WithRenderer(
			renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleASCII)})))
	case StyleMarkdown:
		options = append(options, tablewriter.WithRenderer(renderer.NewMarkdown()))
	}
	t := tablewriter.NewTable(w, options...)
	t.Header(header)
	if err := t.Bulk(rows); err != nil {
		return fmt.Errorf("table: %w", err)
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("table: %w", err)
	}
	if opts.Caption != "" {
		if _, err := fmt.Fprintln(w, opts.Caption); err != nil {
			return fmt.Errorf("table: %w", err)
		}
	}
	return nil
}

func layerLabel(l int) string {
	if l < 0 {
		return "all"
	}
	return fmt.Sprint(l)
}

func mean(s eval.Summary) string  { return num(s, s.Mean) }
func p5(s eval.Summary) string    { return num(s, s.P5) }
func minOf(s eval.Summary) string { return num(s, s.Min) }

// num prints a summary value with four decimals, or a dash when the summary
// is empty.
func num(s eval.Summary, x float64) string {
	if s.N == 0 {
		return dash
	}
	return fmt.Sprintf("%.4f", x)
}
