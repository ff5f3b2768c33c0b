package report

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/misabench/misabench/eval"
)

// PaperClaim is the per-layer recall the MISA paper reports (">92% of
// DSA-selected tokens per layer"), drawn as a reference line.
const PaperClaim = 0.92

// Figure geometry. 150 dpi makes an 8-inch figure 1200 pixels wide: sharp
// on a screen and in a pull request without being heavy.
const (
	plotWidth  = 8 * vg.Inch
	plotHeight = 4.5 * vg.Inch
	pngDPI     = 150
)

// RecallPlot draws per-layer mean recall against layer, one line with points
// per method, with a dashed line at PaperClaim, and writes it as PNG to
// pngPath and SVG to svgPath (either may be "" to skip it). Stats without a
// layer (Layer < 0) or without non-trivial rows are left out. The legend
// sits under the axes so that it never hides a curve.
func RecallPlot(stats []eval.Stats, title, pngPath, svgPath string) error {
	if pngPath == "" && svgPath == "" {
		return errors.New("recall plot: no output path")
	}
	series := recallSeries(stats)
	if len(series) == 0 {
		return errors.New("recall plot: no per-layer stats with non-trivial rows")
	}
	if pngPath != "" {
		err := WriteAtomic(pngPath, func(w io.Writer) error {
			fig, err := newRecallFigure(series, title)
			if err != nil {
				return err
			}
			c := vgimg.NewWith(vgimg.UseWH(plotWidth, fig.height()), vgimg.UseDPI(pngDPI))
			fig.draw(draw.New(c))
			_, err = vgimg.PngCanvas{Canvas: c}.WriteTo(w)
			return err
		})
		if err != nil {
			return fmt.Errorf("recall plot: %w", err)
		}
	}
	if svgPath != "" {
		err := WriteAtomic(svgPath, func(w io.Writer) error {
			// A fresh figure: gonum plots are not documented as reusable
			// across canvases.
			fig, err := newRecallFigure(series, title)
			if err != nil {
				return err
			}
			c := vgsvg.New(plotWidth, fig.height())
			fig.draw(draw.New(c))
			_, err = c.WriteTo(w)
			return err
		})
		if err != nil {
			return fmt.Errorf("recall plot: %w", err)
		}
	}
	return nil
}

// series is one method's curve.
type series struct {
	method string
	xys    plotter.XYs
}

// recallSeries groups per-layer means by method, in order of first
// appearance.
func recallSeries(stats []eval.Stats) []series {
	var out []series
	idx := map[string]int{}
	for _, s := range stats {
		if s.Layer < 0 || s.Recall.N == 0 {
			continue
		}
		i, ok := idx[s.Method]
		if !ok {
			i = len(out)
			idx[s.Method] = i
			out = append(out, series{method: s.Method})
		}
		out[i].xys = append(out[i].xys, plotter.XY{X: float64(s.Layer), Y: s.Recall.Mean})
	}
	return out
}

// Figure margins around the axes, and around and beside the legend.
const (
	margin       = 0.12 * vg.Inch
	legendIndent = 0.9 * vg.Inch // lines the legend up with the y axis
	legendFont   = 10 * vg.Length(1)
	legendGap    = 3 * vg.Length(1) // between legend entries
)

// recallFigure is the plot and its legend, which is drawn under the axes
// rather than over the curves.
type recallFigure struct {
	p   *plot.Plot
	leg plot.Legend
}

// height is the figure height: the axes plus the legend block.
func (f *recallFigure) height() vg.Length {
	return plotHeight + f.leg.Rectangle(draw.Canvas{}).Size().Y + 2*margin
}

func (f *recallFigure) draw(c draw.Canvas) {
	lh := f.leg.Rectangle(draw.Canvas{}).Size().Y + 2*margin
	f.p.Draw(draw.Crop(c, margin, -2*margin, lh, -margin))
	f.leg.Draw(draw.Crop(c, legendIndent, 0, margin, -(plotHeight + margin)))
}

func newRecallFigure(series []series, title string) (*recallFigure, error) {
	if title == "" {
		title = "Per-layer token recall against DSA"
	}
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 14
	p.Title.Padding = 0.1 * vg.Inch
	p.X.Label.Text = "layer"
	p.Y.Label.Text = "mean recall of DSA's top-k"
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = 12
		a.Tick.Label.Font.Size = 10
	}

	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, xy := range s.xys {
			lo, hi = min(lo, xy.X), max(hi, xy.X)
		}
	}
	// Half a layer of margin keeps the first and last points off the frame.
	p.X.Min, p.X.Max = lo-0.5, hi+0.5
	p.X.Tick.Marker = layerTicks{}
	p.Y.Min, p.Y.Max = 0, 1.02
	p.Y.Tick.Marker = plot.ConstantTicks(recallTicks())

	grid := plotter.NewGrid()
	grid.Vertical.Color = color.Gray{Y: 225}
	grid.Horizontal.Color = color.Gray{Y: 225}
	p.Add(grid)

	claim, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: PaperClaim}, {X: p.X.Max, Y: PaperClaim}})
	if err != nil {
		return nil, err
	}
	claim.Color = color.Gray{Y: 90}
	claim.Width = vg.Points(1.2)
	claim.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
	p.Add(claim)

	leg := plot.NewLegend()
	leg.TextStyle.Font = font.From(leg.TextStyle.Font, legendFont)
	leg.Top, leg.Left = true, true
	leg.ThumbnailWidth = vg.Points(28)
	leg.Padding = legendGap
	for i, s := range series {
		line, points, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.method, err)
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.5)
		// plotutil cycles through seven colours; dash the second cycle so
		// that an eighth method does not pass for the first.
		line.Dashes = plotutil.Dashes(i / 7)
		points.Color = plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		points.Radius = vg.Points(2.5)
		p.Add(line, points)
		leg.Add(s.method, line, points)
	}
	leg.Add(fmt.Sprintf("paper's claim: >%.0f%% recall per layer", 100*PaperClaim), claim)
	p.Legend = plot.NewLegend() // empty: the figure draws leg under the axes
	return &recallFigure{p: p, leg: leg}, nil
}

// recallTicks labels recall every 0.1 and marks every 0.05.
func recallTicks() []plot.Tick {
	var ts []plot.Tick
	for i := 0; i <= 20; i++ {
		v := float64(i) / 20
		t := plot.Tick{Value: v}
		if i%2 == 0 {
			t.Label = fmt.Sprintf("%.1f", v)
		}
		ts = append(ts, t)
	}
	return ts
}

// layerTicks puts labelled ticks on whole layers only, every 1, 2, 5, 10,
// … layers so that at most about a dozen labels fit, with unlabelled ticks on
// the layers between when there are not too many.
type layerTicks struct{}

func (layerTicks) Ticks(lo, hi float64) []plot.Tick {
	first, last := int(math.Ceil(lo)), int(math.Floor(hi))
	if last < first {
		return nil
	}
	step := 1
	for _, s := range []int{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000} {
		step = s
		if (last-first)/s <= 12 {
			break
		}
	}
	var ts []plot.Tick
	for l := first; l <= last; l++ {
		switch {
		case l%step == 0:
			ts = append(ts, plot.Tick{Value: float64(l), Label: fmt.Sprint(l)})
		case last-first <= 100:
			ts = append(ts, plot.Tick{Value: float64(l)})
		}
	}
	return ts
}
