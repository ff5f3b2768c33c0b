package niah

import (
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestAxes(t *testing.T) {
	k := func(xs ...int) []int {
		for i := range xs {
			xs[i] <<= 10
		}
		return xs
	}
	for _, tc := range []struct {
		lo, hi, n int
		want      []int
	}{
		{2048, 131072, 15, k(2, 11, 20, 29, 38, 47, 56, 65, 74, 83, 92, 101, 110, 119, 128)},
		{2048, 32768, 8, k(2, 6, 11, 15, 19, 23, 28, 32)},
		{2048, 131072, 1, k(128)},
		{2048, 2048, 5, k(2)},
		{2048, 4096, 3, []int{2048, 3072, 4096}},
		{2048, 2050, 5, []int{2048, 2049, 2050}}, // whole tokens, repeats dropped
	} {
		if got := ContextAxis(tc.lo, tc.hi, tc.n); !slices.Equal(got, tc.want) {
			t.Errorf("ContextAxis(%d, %d, %d) = %v, want %v", tc.lo, tc.hi, tc.n, got, tc.want)
		}
	}
	if got := CtxLabels(ContextAxis(2048, 131072, 15)); got[0] != "2K" || got[1] != "11K" || got[14] != "128K" {
		t.Errorf("labels %v", got)
	}
	if got := CtxLabels([]int{1000, 2048, 2560, 2600}); !slices.Equal(got, []string{"1000", "2.0K", "2.5K", "2.5K"}) &&
		!slices.Equal(got, []string{"1000", "2K", "2.50K", "2.54K"}) {
		t.Errorf("distinct labels %v", got)
	}
	if got := CtxLabels([]int{2048, 2560, 3000}); !slices.Equal(got, []string{"2K", "2.5K", "2.9K"}) {
		t.Errorf("labels with a decimal: %v", got)
	}
	d := DepthAxis(15)
	if len(d) != 15 || d[0] != 0 || d[14] != 1 || math.Abs(d[7]-0.5) > 1e-15 {
		t.Errorf("DepthAxis(15) = %v", d)
	}
	if got := DepthLabels(d); got[0] != "0%" || got[1] != "7%" || got[4] != "29%" || got[14] != "100%" {
		t.Errorf("depth labels %v", got)
	}
	if got := DepthAxis(1); !slices.Equal(got, []float64{0.5}) {
		t.Errorf("DepthAxis(1) = %v", got)
	}
	if got := DepthLabels([]float64{0.5, 0.501, 0.502}); !slices.Equal(got, []string{"50.0%", "50.1%", "50.2%"}) {
		t.Errorf("close depths: %v", got)
	}
}

func TestHeatColor(t *testing.T) {
	dist := func(a, b color.RGBA) float64 {
		return math.Abs(float64(a.R)-float64(b.R)) + math.Abs(float64(a.G)-float64(b.G)) + math.Abs(float64(a.B)-float64(b.B))
	}
	if HeatColor(1) != heatGreen || HeatColor(1.5) != heatGreen {
		t.Error("1 is not green")
	}
	for _, s := range []float64{0, 0.5, 0.9, 0.99, 0.99999} {
		c := HeatColor(s)
		if dist(c, heatGreen) < 150 {
			t.Errorf("score %v is %v, too close to green", s, c)
		}
		if c.G > c.R {
			t.Errorf("score %v is %v: more green than red", s, c)
		}
	}
	if HeatColor(0) != heatRed || dist(HeatColor(0.999999), heatAmber) > 3 {
		t.Errorf("ends of the scale: %v %v", HeatColor(0), HeatColor(0.999999))
	}
	for _, tc := range []struct {
		c    Cell
		want string
	}{
		{Cell{Score: 1, N: 4}, "1"},
		{Cell{Score: 0.999, N: 4}, "0.99"},
		{Cell{Score: 0.5, N: 4}, "0.50"},
		{Cell{Score: 0, N: 4}, "0.00"},
		{Cell{}, "—"},
	} {
		if got := CellText(tc.c); got != tc.want {
			t.Errorf("CellText(%v) = %q, want %q", tc.c.Score, got, tc.want)
		}
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"dsa":                              "dsa",
		"misa(h=8,pooled,B=1024)":          "misa-h8-pooled-b1024",
		"misa†(h=8,pooled,B=1024,k1=8192)": "misa-dagger-h8-pooled-b1024-k1-8192",
		"hisa(B=128,m=64)":                 "hisa-b128-m64",
		"model:deepseek-ai/DeepSeek-V3.2":  "model-deepseek-ai-deepseek-v3-2",
		"()":                               "grid",
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
	res := &Result{Grids: []Grid{{Method: "a(b)"}, {Method: "a.b"}, {Method: "a-b"}}}
	png, svg := HeatmapFiles(res)
	if !slices.Equal(png, []string{"heatmap-a-b.png", "heatmap-a-b-2.png", "heatmap-a-b-3.png"}) || svg[2] != "heatmap-a-b-3.svg" {
		t.Errorf("heatmap files %v %v", png, svg)
	}
}

// heatTestResult is a 3 × 4 grid of two methods, with an empty cell.
func heatTestResult() *Result {
	ctxs := []int{2048, 4096, 16384, 131072}
	depths := []float64{0, 0.5, 1}
	mk := func(method string, score func(i, j int) float64) Grid {
		g := Grid{Method: method, Level: LevelIndexer, Contexts: ctxs, Depths: depths, Layers: []int{0, 5}}
		for i, d := range depths {
			var row []Cell
			for j, c := range ctxs {
				s := score(i, j)
				cell := Cell{Ctx: c, Depth: d, Score: s, PerLayer: []float64{s, min(1, s+0.1)}, N: 16}
				if s < 0 {
					cell = Cell{Ctx: c, Depth: d}
				}
				row = append(row, cell)
			}
			g.Cells = append(g.Cells, row)
		}
		return g
	}
	return &Result{Schema: SchemaV1, Version: "test", Backend: "cpu(2 workers)", Grids: []Grid{
		mk("dsa", func(int, int) float64 { return 1 }),
		mk("misa†(h=8,pooled,B=1024,k1=8192)", func(i, j int) float64 {
			if i == 2 && j == 3 {
				return -1
			}
			return 1 - float64(i*j)/8
		}),
	}, Notes: []string{"synthetic <data>"}, Config: map[string]any{"methods": []string{"dsa"}}}
}

func TestHeatmapFiles(t *testing.T) {
	res := heatTestResult()
	dir := t.TempDir()
	names, err := WriteFiles(dir, res, "synthetic data")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"niah.json", "niah.csv", "heatmap-dsa.png", "heatmap-dsa.svg",
		"heatmap-misa-dagger-h8-pooled-b1024-k1-8192.png", "heatmap-misa-dagger-h8-pooled-b1024-k1-8192.svg", "niah.html"}
	if !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != len(want) {
		t.Errorf("%d entries in the directory (temporary files left?)", len(ents))
	}

	// PNG: the signature, a decodable image, and a green pixel in the
	// middle of the DSA map.
	b, err := os.ReadFile(filepath.Join(dir, "heatmap-dsa.png"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("not a PNG: % x", b[:8])
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	bd := img.Bounds()
	if bd.Dx() < 600 || bd.Dy() < 400 {
		t.Errorf("PNG is %dx%d", bd.Dx(), bd.Dy())
	}
	greens := 0
	for y := bd.Min.Y; y < bd.Max.Y; y += 4 {
		for x := bd.Min.X; x < bd.Max.X; x += 4 {
			if r, g, bb, _ := img.At(x, y).RGBA(); r>>8 == uint32(heatGreen.R) && g>>8 == uint32(heatGreen.G) && bb>>8 == uint32(heatGreen.B) {
				greens++
			}
		}
	}
	if greens < 1000 {
		t.Errorf("only %d green samples in the all-green DSA map", greens)
	}

	// SVG: well-formed XML with an <svg> root, the cell values and the
	// labels.
	sv, err := os.ReadFile(filepath.Join(dir, "heatmap-misa-dagger-h8-pooled-b1024-k1-8192.svg"))
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(sv))
	root := ""
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("SVG does not parse: %v", err)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("SVG root %q", root)
	}
	for _, s := range []string{">0.75<", ">1<", ">—<", ">128K<", ">2K<", ">50%<", "context length", "synthetic data"} {
		if !bytes.Contains(sv, []byte(s)) {
			t.Errorf("SVG lacks %q", s)
		}
	}

	// CSV: one record per cell with data, per-layer columns.
	f, err := os.Open(filepath.Join(dir, "niah.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := recs[0]; !slices.Equal(got, append(slices.Clone(CSVHeader), "layer_0", "layer_5")) {
		t.Errorf("csv header %v", got)
	}
	if len(recs) != 1+12+11 {
		t.Errorf("%d csv records, want 24", len(recs))
	}
	last := recs[len(recs)-1] // misa†, depth 100%, 16K: 1 - 2*2/8
	if last[0] != "misa†(h=8,pooled,B=1024,k1=8192)" || last[2] != "16384" || last[3] != "1" || last[4] != "100" ||
		last[5] != "0.5" || last[6] != "false" || last[7] != "16" || last[8] != "0.5" || last[9] != "0.6" {
		t.Errorf("last record %v", last)
	}

	// JSON: reads back to the same result.
	jf, err := os.Open(filepath.Join(dir, "niah.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer jf.Close()
	back, err := ReadJSON(jf)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Grids) != 2 || back.Grids[1].Cells[1][2].Score != res.Grids[1].Cells[1][2].Score ||
		!slices.Equal(back.Grids[1].Cells[2][1].PerLayer, res.Grids[1].Cells[2][1].PerLayer) || back.Grids[1].Cells[2][3].HasData() {
		t.Errorf("json round trip: %+v", back.Grids[1].Cells)
	}
	if _, err := ReadJSON(strings.NewReader(`{"schema": "other"}`)); err == nil {
		t.Error("a foreign schema was accepted")
	}

	// HTML: self-contained (embedded PNGs), the summary, escaped notes.
	h, err := os.ReadFile(filepath.Join(dir, "niah.html"))
	if err != nil {
		t.Fatal(err)
	}
	hs := string(h)
	if strings.Count(hs, `src="data:image/png;base64,iVBORw0KGgo`) != 2 {
		t.Error("HTML does not embed the two PNGs")
	}
	for _, s := range []string{"12/12", "6/11", "heatmap-dsa.svg", "synthetic &lt;data&gt;", "misa†(h=8,pooled,B=1024,k1=8192)", "0.5000 at 16K, depth 100%"} {
		if !strings.Contains(hs, s) {
			t.Errorf("HTML lacks %q", s)
		}
	}
}

func TestSummaryTable(t *testing.T) {
	res := heatTestResult()
	var b bytes.Buffer
	if err := SummaryTable(&b, res, "note: synthetic"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, s := range []string{"dsa", "12/12", "1.0000", "6/11", "0.5000 at 16K, depth 100%", "note: synthetic"} {
		if !strings.Contains(out, s) {
			t.Errorf("table lacks %q:\n%s", s, out)
		}
	}
	empty := &Result{Grids: []Grid{{Method: "x", Contexts: []int{1}, Depths: []float64{0}, Cells: [][]Cell{{{}}}}}}
	b.Reset()
	if err := SummaryTable(&b, empty, ""); err != nil || !strings.Contains(b.String(), "0/0") {
		t.Errorf("empty grid: %v\n%s", err, b.String())
	}
}

func TestHeatmapBadGrid(t *testing.T) {
	var b bytes.Buffer
	for _, g := range []*Grid{
		{Method: "x"},
		{Method: "x", Contexts: []int{1}, Depths: []float64{0}},
		{Method: "x", Contexts: []int{1, 2}, Depths: []float64{0}, Cells: [][]Cell{{{}}}},
	} {
		if err := HeatmapPNG(&b, g, "t"); err == nil {
			t.Errorf("grid %+v rendered", g)
		}
	}
}
