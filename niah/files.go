package niah

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/misabench/misabench/eval"
)

// Files written by WriteFiles.
const (
	JSONFile = "niah.json"
	CSVFile  = "niah.csv"
	HTMLFile = "niah.html"
)

// HeatmapFiles returns the base names of the PNG and SVG heatmaps of each
// grid of res, in order: heatmap-<slug>.png and .svg, with a numeric
// suffix when two methods give the same slug.
func HeatmapFiles(res *Result) (png, svg []string) {
	seen := map[string]int{}
	for _, g := range res.Grids {
		s := Slug(g.Method)
		seen[s]++
		if n := seen[s]; n > 1 {
			s += "-" + strconv.Itoa(n)
		}
		png = append(png, "heatmap-"+s+".png")
		svg = append(svg, "heatmap-"+s+".svg")
	}
	return png, svg
}

// WriteFiles writes a run's files into dir, each atomically: niah.json (the
// Result), niah.csv (every cell), one PNG and one SVG heatmap per grid, and
// niah.html, a self-contained page (the PNGs embedded as data: URIs) with
// the heatmaps side by side and the summary table. note goes under every
// heatmap's title (e.g. "synthetic data"). It returns the names written.
func WriteFiles(dir string, res *Result, note string) ([]string, error) {
	var names []string
	write := func(name string, f func(io.Writer) error) error {
		if err := eval.WriteAtomic(filepath.Join(dir, name), f); err != nil {
			return err
		}
		names = append(names, name)
		return nil
	}
	if err := write(JSONFile, func(w io.Writer) error { return WriteJSON(w, res) }); err != nil {
		return nil, err
	}
	if err := write(CSVFile, func(w io.Writer) error { return WriteCSV(w, res) }); err != nil {
		return nil, err
	}
	pngs, svgs := HeatmapFiles(res)
	images := make([][]byte, len(res.Grids))
	for i := range res.Grids {
		g := &res.Grids[i]
		title := HeatmapTitle(g, note)
		b, err := heatmapBytes(g, title)
		if err != nil {
			return nil, err
		}
		images[i] = b
		if err := write(pngs[i], func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
			return nil, err
		}
		if err := write(svgs[i], func(w io.Writer) error { return HeatmapSVG(w, g, title) }); err != nil {
			return nil, err
		}
	}
	if err := write(HTMLFile, func(w io.Writer) error { return writeHTML(w, res, images, svgs) }); err != nil {
		return nil, err
	}
	return names, nil
}

type htmlRow struct {
	Method, Level, Green, Mean, Min, Worst string
	AllGreen                               bool
}

type htmlMap struct {
	Method string
	PNG    template.URL
	SVG    string
}

type htmlPage struct {
	Title   string
	Rows    []htmlRow
	Maps    []htmlMap
	Notes   []string
	Meta    []string
	Config  string
	Palette []htmlSwatch
}

type htmlSwatch struct {
	Color template.CSS
	Label string
}

func cssColor(score float64) template.CSS {
	c := HeatColor(score)
	return template.CSS(fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B))
}

// writeHTML writes the page: summary table, heatmaps side by side, notes
// and the configuration.
func writeHTML(w io.Writer, res *Result, images [][]byte, svgs []string) error {
	pg := htmlPage{Title: "misabench — needle in a haystack", Notes: res.Notes}
	for i := range res.Grids {
		g := &res.Grids[i]
		s := Summarize(g)
		row := htmlRow{Method: s.Method, Level: s.Level, Green: fmt.Sprintf("%d/%d", s.Green, s.Cells), Mean: dash, Min: dash, Worst: worstLabel(s),
			AllGreen: s.Cells > 0 && s.Green == s.Cells}
		if s.Cells > 0 {
			row.Mean, row.Min = fmtScore(s.Mean), fmtScore(s.Min)
		}
		pg.Rows = append(pg.Rows, row)
		pg.Maps = append(pg.Maps, htmlMap{
			Method: g.Method,
			PNG:    template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(images[i])),
			SVG:    svgs[i],
		})
	}
	if res.Backend != "" {
		pg.Meta = append(pg.Meta, "backend: "+res.Backend)
	}
	if res.Version != "" {
		pg.Meta = append(pg.Meta, "misabench "+res.Version)
	}
	if !res.Created.IsZero() {
		pg.Meta = append(pg.Meta, "finished "+res.Created.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	if res.WallSeconds > 0 {
		pg.Meta = append(pg.Meta, fmt.Sprintf("wall time %.1f s", res.WallSeconds))
	}
	if len(res.Config) > 0 {
		b, err := json.MarshalIndent(res.Config, "", "  ")
		if err != nil {
			return fmt.Errorf("niah html: config: %w", err)
		}
		pg.Config = string(b)
	}
	for _, v := range []float64{0, 0.25, 0.5, 0.75, 0.9, 0.99} {
		pg.Palette = append(pg.Palette, htmlSwatch{Color: cssColor(v), Label: strings.TrimSuffix(fmt.Sprintf("%.2f", v), "0")})
	}
	pg.Palette = append(pg.Palette, htmlSwatch{Color: cssColor(1), Label: "1 (green)"})
	return htmlTemplate.Execute(w, pg)
}

var htmlTemplate = template.Must(template.New("niah").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #1e1e1e; }
h1 { font-size: 1.4em; margin: 0 0 4px 0; }
.meta { color: #555; font-size: 0.9em; margin-bottom: 16px; }
.note { background: #fff6dd; border-left: 4px solid #ebb839; padding: 6px 10px; margin: 10px 0; }
table.summary { border-collapse: collapse; margin: 12px 0 20px 0; }
table.summary th, table.summary td { border: 1px solid #ccc; padding: 4px 10px; }
table.summary th { background: #f3f3f3; text-align: left; }
table.summary td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.allgreen { background: #0cd79f; }
.maps { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.map { flex: 1 1 560px; max-width: 100%; }
.map img { width: 100%; height: auto; border: 1px solid #ddd; }
.map .cap { font-size: 0.85em; color: #555; }
.palette span { display: inline-block; padding: 2px 8px; margin-right: 2px; font-size: 0.85em; }
pre { background: #f7f7f7; padding: 8px; overflow-x: auto; font-size: 0.85em; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<div class="meta">{{range $i, $m := .Meta}}{{if $i}} · {{end}}{{$m}}{{end}}</div>
{{range .Notes}}<div class="note">note: {{.}}</div>
{{end}}
<table class="summary">
<tr><th>method</th><th>level</th><th>green cells</th><th>mean</th><th>min</th><th>worst cell</th></tr>
{{range .Rows}}<tr><td>{{.Method}}</td><td>{{.Level}}</td><td class="num{{if .AllGreen}} allgreen{{end}}">{{.Green}}</td><td class="num">{{.Mean}}</td><td class="num">{{.Min}}</td><td>{{.Worst}}</td></tr>
{{end}}</table>
<div class="palette">scale (fixed): {{range .Palette}}<span style="background: {{.Color}}">{{.Label}}</span>{{end}}
— a cell is green only when its score is exactly 1; cell values are truncated, so 0.999 reads 0.99.</div>
<p></p>
<div class="maps">
{{range .Maps}}<div class="map"><img alt="heatmap of {{.Method}}" src="{{.PNG}}"><div class="cap">{{.Method}} · <a href="{{.SVG}}">SVG</a></div></div>
{{end}}</div>
{{if .Config}}<details><summary>configuration</summary><pre>{{.Config}}</pre></details>{{end}}
</body>
</html>
`))
