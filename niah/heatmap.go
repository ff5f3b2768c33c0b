package niah

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The heatmap palette of the reference NIAH figures (gkamradt's notebook,
// DeepSeek's README figures): red-pink, amber, green. Here the scale is
// fixed to 0..1 and green is reserved for exactly 1: scores in [0, 1) run
// from red-pink (0) to amber (just under 1), so that a 0.9 cell is amber,
// never green.
var (
	heatRed   = color.RGBA{R: 0xF0, G: 0x49, B: 0x6E, A: 0xFF}
	heatAmber = color.RGBA{R: 0xEB, G: 0xB8, B: 0x39, A: 0xFF}
	heatGreen = color.RGBA{R: 0x0C, G: 0xD7, B: 0x9F, A: 0xFF}
	heatEmpty = color.RGBA{R: 0xDD, G: 0xDD, B: 0xDD, A: 0xFF}
	heatText  = color.RGBA{R: 0x1E, G: 0x1E, B: 0x1E, A: 0xFF}
	heatLine  = color.White
)

// HeatColor is the colour of a score: green at 1 (and above), else a
// linear blend from red-pink at 0 to amber just under 1. NaN is grey.
func HeatColor(score float64) color.RGBA {
	switch {
	case math.IsNaN(score):
		return heatEmpty
	case Green(score):
		return heatGreen
	}
	t := min(max(score, 0), 1)
	lerp := func(a, b uint8) uint8 { return uint8(math.Round(float64(a) + t*(float64(b)-float64(a)))) }
	return color.RGBA{R: lerp(heatRed.R, heatAmber.R), G: lerp(heatRed.G, heatAmber.G), B: lerp(heatRed.B, heatAmber.B), A: 0xFF}
}

// CellText is what a heatmap cell shows: "1" when green, else the score
// truncated (not rounded) to two decimals, so that 0.999 reads 0.99 and
// never passes for 1; an em dash for a cell without data.
func CellText(c Cell) string {
	switch {
	case !c.HasData():
		return dash
	case Green(c.Score):
		return "1"
	}
	return fmt.Sprintf("%.2f", math.Floor(max(c.Score, 0)*100)/100)
}

// Heatmap geometry: a cell is heatCellW × heatCellH; the figure adds room
// for the title, the axes and the colour bar.
const (
	heatCellW   = 0.62 * vg.Inch
	heatCellH   = 0.34 * vg.Inch
	heatLeft    = 1.25 * vg.Inch // y tick labels and axis label
	heatBottom  = 0.85 * vg.Inch // x tick labels and axis label
	heatCbarW   = 1.45 * vg.Inch // colour bar, its labels and a gap
	heatPad     = 0.15 * vg.Inch
	heatDPI     = 150
	heatMinData = 2.6 * vg.Inch // smallest data area side, so that titles fit
)

// heatFigure is one grid's heatmap with its colour bar, under a title
// centred on the whole figure.
type heatFigure struct {
	g       *Grid
	p       *plot.Plot
	w, h    vg.Length
	label   string // colour bar label
	title   string
	titleTS text.Style
	titleH  vg.Length
}

func newHeatFigure(g *Grid, title string) (*heatFigure, error) {
	nr, nc := len(g.Depths), len(g.Contexts)
	if nr == 0 || nc == 0 {
		return nil, fmt.Errorf("heatmap %s: empty grid (%d depths × %d contexts)", g.Method, nr, nc)
	}
	if len(g.Cells) != nr {
		return nil, fmt.Errorf("heatmap %s: %d rows of cells for %d depths", g.Method, len(g.Cells), nr)
	}
	for i, row := range g.Cells {
		if len(row) != nc {
			return nil, fmt.Errorf("heatmap %s: row %d has %d cells for %d contexts", g.Method, i, len(row), nc)
		}
	}
	p := plot.New()
	p.X.Label.Text = "context length (tokens)"
	p.Y.Label.Text = "needle depth (% of the context)"
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = 11
		a.Tick.Label.Font.Size = 9.5
		a.Tick.Length = vg.Points(3)
		a.Padding = 0
	}
	p.X.Min, p.X.Max = -0.5, float64(nc)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(nr)-0.5
	var xt, yt []plot.Tick
	for j, l := range CtxLabels(g.Contexts) {
		xt = append(xt, plot.Tick{Value: float64(j), Label: l})
	}
	for i, l := range DepthLabels(g.Depths) {
		// Depth 0 at the top, as in the reference figures.
		yt = append(yt, plot.Tick{Value: float64(nr - 1 - i), Label: l})
	}
	p.X.Tick.Marker = plot.ConstantTicks(xt)
	p.Y.Tick.Marker = plot.ConstantTicks(yt)
	p.Add(heatCells{g: g})

	f := &heatFigure{g: g, p: p, label: "needle retention (min over layers)", title: title}
	if g.Level == LevelModel {
		f.label = "score (mean over samples)"
	}
	f.titleTS = p.X.Label.TextStyle
	f.titleTS.Font = font.From(f.titleTS.Font, 12.5)
	f.titleTS.XAlign, f.titleTS.YAlign = draw.XCenter, draw.YTop
	if title != "" {
		f.titleH = f.titleTS.Height(title) + 2*heatPad
	}
	dataW := max(vg.Length(nc)*heatCellW, heatMinData)
	dataH := max(vg.Length(nr)*heatCellH, heatMinData*0.75)
	f.w = heatLeft + dataW + heatCbarW + heatPad
	f.h = f.titleH + dataH + heatBottom + heatPad
	if w := f.titleTS.Width(title) + 4*heatPad; w > f.w {
		f.w = w
	}
	return f, nil
}

func (f *heatFigure) draw(c draw.Canvas) {
	c.SetColor(color.White)
	c.FillPolygon(color.White, []vg.Point{c.Min, {X: c.Max.X, Y: c.Min.Y}, c.Max, {X: c.Min.X, Y: c.Max.Y}})
	if f.title != "" {
		c.FillText(f.titleTS, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: c.Max.Y - heatPad}, f.title)
	}
	area := draw.Crop(c, heatPad, -heatCbarW, heatPad, -max(f.titleH, heatPad))
	f.p.Draw(area)
	data := f.p.DataCanvas(area)
	f.drawColorBar(c, data)
}

// drawColorBar draws the scale to the right of the data area: a gradient
// for [0, 1) and, above it and apart, a green box for 1.
func (f *heatFigure) drawColorBar(c, data draw.Canvas) {
	x0 := data.Max.X + 0.3*vg.Inch
	x1 := x0 + 0.22*vg.Inch
	y0, y1 := data.Min.Y, data.Max.Y
	h := y1 - y0
	gradTop := y0 + 0.82*h
	boxBot, boxTop := y0+0.88*h, y1

	const slices = 100
	for i := range slices {
		a := y0 + (gradTop-y0)*vg.Length(i)/slices
		b := y0 + (gradTop-y0)*vg.Length(i+1)/slices
		col := HeatColor((float64(i) + 0.5) / slices)
		c.FillPolygon(col, []vg.Point{{X: x0, Y: a}, {X: x1, Y: a}, {X: x1, Y: b + 0.3}, {X: x0, Y: b + 0.3}})
	}
	c.FillPolygon(heatGreen, []vg.Point{{X: x0, Y: boxBot}, {X: x1, Y: boxBot}, {X: x1, Y: boxTop}, {X: x0, Y: boxTop}})
	frame := draw.LineStyle{Color: color.Gray{Y: 120}, Width: vg.Points(0.5)}
	c.StrokeLines(frame, []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: gradTop}, {X: x0, Y: gradTop}, {X: x0, Y: y0}})
	c.StrokeLines(frame, []vg.Point{{X: x0, Y: boxBot}, {X: x1, Y: boxBot}, {X: x1, Y: boxTop}, {X: x0, Y: boxTop}, {X: x0, Y: boxBot}})

	ts := f.p.Y.Tick.Label
	ts.Font = font.From(ts.Font, 9)
	ts.Rotation = 0
	ts.XAlign, ts.YAlign = draw.XLeft, draw.YCenter
	tick := draw.LineStyle{Color: color.Gray{Y: 80}, Width: vg.Points(0.5)}
	for _, v := range []float64{0, 0.2, 0.4, 0.6, 0.8} {
		y := y0 + (gradTop-y0)*vg.Length(v)
		c.StrokeLine2(tick, x1, y, x1+vg.Points(3), y)
		c.FillText(ts, vg.Point{X: x1 + vg.Points(5), Y: y}, fmt.Sprintf("%.1f", v))
	}
	c.FillText(ts, vg.Point{X: x1 + vg.Points(5), Y: gradTop}, "<1")
	c.FillText(ts, vg.Point{X: x1 + vg.Points(5), Y: (boxBot + boxTop) / 2}, "1")

	ls := f.p.Y.Label.TextStyle
	ls.Font = font.From(ls.Font, 10)
	ls.Rotation = math.Pi / 2
	ls.XAlign, ls.YAlign = draw.XCenter, draw.YTop
	c.FillText(ls, vg.Point{X: x1 + 0.5*vg.Inch, Y: (y0 + y1) / 2}, f.label)
}

// heatCells is the plotter of the cells: one coloured rectangle per cell
// with its value written in it.
type heatCells struct{ g *Grid }

func (h heatCells) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	nr := len(h.g.Depths)
	if nr == 0 || len(h.g.Contexts) == 0 {
		return
	}
	cw := trX(0.5) - trX(-0.5)
	ch := trY(0.5) - trY(-0.5)
	size := min(vg.Points(10), 0.45*ch, 0.3*cw)
	ts := text.Style{
		Color:   heatText,
		Font:    font.From(p.X.Tick.Label.Font, size),
		XAlign:  draw.XCenter,
		YAlign:  draw.YCenter,
		Handler: p.X.Tick.Label.Handler,
	}
	border := draw.LineStyle{Color: heatLine, Width: vg.Points(1)}
	for i, row := range h.g.Cells {
		y := float64(nr - 1 - i)
		for j, cell := range row {
			x := float64(j)
			x0, x1 := trX(x-0.5), trX(x+0.5)
			y0, y1 := trY(y-0.5), trY(y+0.5)
			col := heatEmpty
			if cell.HasData() {
				col = HeatColor(cell.Score)
			}
			pts := []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
			c.FillPolygon(col, pts)
			c.StrokeLines(border, append(pts, pts[0]))
			c.FillText(ts, vg.Point{X: (x0 + x1) / 2, Y: (y0 + y1) / 2}, CellText(cell))
		}
	}
}

// HeatmapTitle is the default title of a grid's heatmap: the method and
// what the score is, plus a note (e.g. "synthetic data") when not empty.
func HeatmapTitle(g *Grid, note string) string {
	var what string
	switch g.Level {
	case LevelModel:
		what = "needle in a haystack, model level (mean score)"
	default:
		what = "needle retention, indexer level"
		if len(g.Layers) > 0 {
			what += fmt.Sprintf(" (min over %d layer", len(g.Layers))
			if len(g.Layers) > 1 {
				what += "s"
			}
			what += ")"
		}
	}
	t := g.Method + "\n" + what
	if note != "" {
		t += "\n" + note
	}
	return t
}

// HeatmapPNG renders g's heatmap as PNG.
func HeatmapPNG(w io.Writer, g *Grid, title string) error {
	f, err := newHeatFigure(g, title)
	if err != nil {
		return err
	}
	c := vgimg.NewWith(vgimg.UseWH(f.w, f.h), vgimg.UseDPI(heatDPI))
	f.draw(draw.New(c))
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(w); err != nil {
		return fmt.Errorf("heatmap %s: %w", g.Method, err)
	}
	return nil
}

// HeatmapSVG renders g's heatmap as SVG.
func HeatmapSVG(w io.Writer, g *Grid, title string) error {
	f, err := newHeatFigure(g, title)
	if err != nil {
		return err
	}
	c := vgsvg.New(f.w, f.h)
	f.draw(draw.New(c))
	if _, err := c.WriteTo(w); err != nil {
		return fmt.Errorf("heatmap %s: %w", g.Method, err)
	}
	return nil
}

// heatmapBytes renders the PNG into memory (for the file and the HTML page).
func heatmapBytes(g *Grid, title string) ([]byte, error) {
	var b bytes.Buffer
	if err := HeatmapPNG(&b, g, title); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Slug turns a method name into a file-name part: letters and digits
// kept (lower case), "†" spelled "-dagger", "=" dropped after a letter
// (h=8 → h8) and anything else a single "-": "misa†(h=8,pooled,B=1024,k1=8192)"
// becomes "misa-dagger-h8-pooled-b1024-k1-8192".
func Slug(method string) string {
	s := strings.ToLower(strings.ReplaceAll(method, "†", "-dagger"))
	var b strings.Builder
	var last rune
	sep := func() {
		if b.Len() > 0 && last != '-' {
			b.WriteByte('-')
			last = '-'
		}
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			last = r
		case r == '=' && last >= 'a' && last <= 'z':
			// h=8 → h8
		default:
			sep()
		}
	}
	out := strings.TrimSuffix(b.String(), "-")
	if out == "" {
		out = "grid"
	}
	return out
}
