package report

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/misabench/misabench/kernels"
)

// PaperSpeedupClaim is the indexer speedup over DSA the MISA paper reports
// on an H200, drawn as a reference line on the speedup plot.
const PaperSpeedupClaim = 3.82

// kernelStages are the stage columns of the kernel table and CSV, in
// pipeline order.
var kernelStages = []string{"pooling", "router", "logits", "topk"}

// KernelHeader is the line above the kernel table: the card and the
// measured copy bandwidth that the GB/s column is compared with.
func KernelHeader(r *kernels.CompareReport) string {
	d := r.Device
	var facts []string
	if d.SMs > 0 {
		facts = append(facts, fmt.Sprintf("%d SMs", d.SMs))
	}
	if d.MemoryBytes > 0 {
		facts = append(facts, FormatBytes(d.MemoryBytes))
	}
	if d.Arch != "" {
		facts = append(facts, d.Arch)
	}
	name := d.Name
	if name == "" {
		name = "unknown device"
	}
	if len(facts) > 0 {
		name += " (" + strings.Join(facts, ", ") + ")"
	}
	copyBW := dash
	if r.CopyGBs > 0 {
		copyBW = fmt.Sprintf("%.0f GB/s", r.CopyGBs)
	}
	line := fmt.Sprintf("device %d: %s; measured device-to-device copy: %s", d.Index, name, copyBW)
	if r.TensorTFLOPs > 0 {
		line += fmt.Sprintf("; measured FP8 tensor rate: %.0f TFLOP/s", r.TensorTFLOPs)
	}
	if r.LogitsKernel > 0 {
		line += fmt.Sprintf("; FP8 logits kernel v%d", r.LogitsKernel)
	}
	return line
}

// KernelTable writes the header line (KernelHeader), then one table row per
// case: model, H, mode, context, query rows, method, median end-to-end time
// with min–max, the median of each stage timed on its own (a dash where the
// method has no such stage), the logits stage's TFLOP/s, the pipeline's
// GB/s and its share of the measured copy bandwidth, recall against DSA and
// speedup over DSA; then a short legend of those columns.
func KernelTable(w io.Writer, r *kernels.CompareReport) error {
	if r == nil {
		return errors.New("kernel table: no report")
	}
	if _, err := fmt.Fprintln(w, KernelHeader(r)); err != nil {
		return fmt.Errorf("kernel table: %w", err)
	}
	header := []string{"model", "H", "mode", "ctx", "rows", "method", "median ms (min–max)"}
	header = append(header, kernelStages...)
	header = append(header, "logits TFLOP/s", "% tensor", "GB/s", "% copy", "recall", "speedup", "vs best DSA")
	text := map[int]bool{0: true, 2: true, 5: true} // model, mode, method
	align := make([]tw.Align, len(header))
	for i := range align {
		align[i] = tw.AlignRight
		if text[i] {
			align[i] = tw.AlignLeft
		}
	}
	rows := make([][]string, 0, len(r.Cases))
	for _, c := range r.Cases {
		method := c.Method
		if c.Fallbacks > 0 {
			method += fmt.Sprintf(" [fallback: %d rows]", c.Fallbacks)
		}
		row := []string{c.Model, strconv.Itoa(c.H), c.Mode, CtxLabel(c.Ctx), strconv.Itoa(c.Rows), method,
			fmt.Sprintf("%s (%s–%s)", fmtMs(c.MedianMs), fmtMs(c.MinMs), fmtMs(c.MaxMs))}
		for _, s := range kernelStages {
			if ms, ok := stageMs(c.Stages, s); ok {
				row = append(row, fmtMs(ms))
			} else {
				row = append(row, dash)
			}
		}
		row = append(row, positive(c.LogitsTFLOPs, "%.1f"))
		if pct, ok := share(c.LogitsTFLOPs, r.TensorTFLOPs); ok {
			row = append(row, fmt.Sprintf("%.0f%%", pct))
		} else {
			row = append(row, dash)
		}
		row = append(row, positive(c.GBs, "%.0f"))
		if pct, ok := copyShare(c, r.CopyGBs); ok {
			row = append(row, fmt.Sprintf("%.0f%%", pct))
		} else {
			row = append(row, dash)
		}
		row = append(row, finite(c.Recall, "%.4f"), positive(c.Speedup, "%.2f×"), positive(c.SpeedupBest, "%.2f×"))
		rows = append(rows, row)
	}
	t := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}))
	t.Header(header)
	if err := t.Bulk(rows); err != nil {
		return fmt.Errorf("kernel table: %w", err)
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("kernel table: %w", err)
	}
	const legend = "times are medians over the repetitions (CUDA events); stages are timed one by one, so they need not add up to the median\n" +
		"recall: mean share of DSA's top-k each method keeps on the same synthetic FP8 inputs; speedup: DSA's median over the method's;\n" +
		"vs best DSA: the same against the faster of dsa and dsa+fused; +fused: the logits are filtered against a sampled threshold instead of written (kernels/fp8select.cu), same sets\n" +
		"% tensor: logits TFLOP/s over the measured FP8 tensor rate; GB/s: the fewest bytes the pipeline must move over its median; % copy: that over the measured copy bandwidth"
	if _, err := fmt.Fprintln(w, legend); err != nil {
		return fmt.Errorf("kernel table: %w", err)
	}
	return nil
}

// kernelCSVHeader is the header row of KernelCSV.
var kernelCSVHeader = []string{
	"device", "model", "heads", "mode", "ctx", "rows", "method",
	"median_ms", "min_ms", "max_ms",
	"pooling_ms", "router_ms", "logits_ms", "topk_ms",
	"logits_tflops", "tensor_pct", "gbs", "copy_pct", "recall", "speedup", "speedup_best_dsa", "fallback_rows",
}

// KernelCSV writes one record per case after a header row. Stage times a
// method does not have, and shares of an unmeasured copy bandwidth, are
// empty; numbers keep full precision.
func KernelCSV(w io.Writer, r *kernels.CompareReport) error {
	if r == nil {
		return errors.New("kernel csv: no report")
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(kernelCSVHeader); err != nil {
		return fmt.Errorf("kernel csv: %w", err)
	}
	for _, c := range r.Cases {
		rec := []string{r.Device.Name, c.Model, strconv.Itoa(c.H), c.Mode, strconv.Itoa(c.Ctx), strconv.Itoa(c.Rows), c.Method,
			ftoa(c.MedianMs), ftoa(c.MinMs), ftoa(c.MaxMs)}
		for _, s := range kernelStages {
			if ms, ok := stageMs(c.Stages, s); ok {
				rec = append(rec, ftoa(ms))
			} else {
				rec = append(rec, "")
			}
		}
		pct := ""
		if p, ok := copyShare(c, r.CopyGBs); ok {
			pct = ftoa(p)
		}
		tpct := ""
		if p, ok := share(c.LogitsTFLOPs, r.TensorTFLOPs); ok {
			tpct = ftoa(p)
		}
		rec = append(rec, ftoa(c.LogitsTFLOPs), tpct, ftoa(c.GBs), pct, ftoa(c.Recall), ftoa(c.Speedup), ftoa(c.SpeedupBest),
			strconv.Itoa(c.Fallbacks))
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("kernel csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("kernel csv: %w", err)
	}
	return nil
}

// KernelJSON writes the report as indented JSON (kernel.json).
func KernelJSON(w io.Writer, r *kernels.CompareReport) error {
	if r == nil {
		return errors.New("kernel json: no report")
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("kernel json: %w", err)
	}
	return nil
}

// DevicesTable writes one line per CUDA device: index, name, compute
// capability, the NVRTC target, memory, SMs, L2, and the driver and NVRTC
// versions (or why NVRTC cannot be loaded).
func DevicesTable(w io.Writer, devs []kernels.DeviceInfo) error {
	header := []string{"#", "name", "cc", "arch", "memory", "SMs", "L2", "driver", "NVRTC"}
	align := []tw.Align{tw.AlignRight, tw.AlignLeft, tw.AlignLeft, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignLeft, tw.AlignLeft}
	rows := make([][]string, 0, len(devs))
	for _, d := range devs {
		nvrtc := d.NVRTC
		switch {
		case d.NVRTCError != "":
			nvrtc = "not loaded: " + d.NVRTCError
		case nvrtc == "":
			nvrtc = dash
		}
		rows = append(rows, []string{
			strconv.Itoa(d.Index), d.Name, fmt.Sprintf("%d.%d", d.Major, d.Minor), orDash(d.Arch),
			FormatBytes(d.MemoryBytes), strconv.Itoa(d.SMs), FormatBytes(int64(d.L2Bytes)), orDash(d.Driver), nvrtc,
		})
	}
	t := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}))
	t.Header(header)
	if err := t.Bulk(rows); err != nil {
		return fmt.Errorf("devices table: %w", err)
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("devices table: %w", err)
	}
	return nil
}

// FormatBytes prints a byte count in binary units: 139.8 GiB, 60 MiB.
func FormatBytes(n int64) string {
	if n <= 0 {
		return dash
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	x, u := float64(n), 0
	for x >= 1024 && u < len(units)-1 {
		x /= 1024
		u++
	}
	if x == math.Trunc(x) || u == 0 {
		return fmt.Sprintf("%.0f %s", x, units[u])
	}
	return fmt.Sprintf("%.1f %s", x, units[u])
}

// CtxLabel prints a context length: 8K for 8192, 128K for 131072, 1M for
// 1048576, and other lengths as they are.
func CtxLabel(n int) string {
	switch {
	case n > 0 && n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n > 0 && n%(1<<10) == 0:
		return fmt.Sprintf("%dK", n>>10)
	}
	return strconv.Itoa(n)
}

// stageMs is the summed time of the stages named name.
func stageMs(stages []kernels.Stage, name string) (float64, bool) {
	var ms float64
	found := false
	for _, s := range stages {
		if s.Name == name {
			ms += s.Ms
			found = true
		}
	}
	return ms, found
}

// copyShare is a case's GB/s as a percentage of the copy bandwidth.
func copyShare(c kernels.CaseResult, copyGBs float64) (float64, bool) {
	return share(c.GBs, copyGBs)
}

// share is 100·v/ceiling, when both are positive and finite.
func share(v, ceiling float64) (float64, bool) {
	if !(ceiling > 0) || !(v > 0) || math.IsInf(v, 0) || math.IsInf(ceiling, 0) {
		return 0, false
	}
	return 100 * v / ceiling, true
}

// fmtMs prints milliseconds with about four significant digits.
func fmtMs(ms float64) string {
	switch {
	case math.IsNaN(ms) || math.IsInf(ms, 0):
		return dash
	case ms >= 100:
		return fmt.Sprintf("%.1f", ms)
	case ms >= 10:
		return fmt.Sprintf("%.2f", ms)
	}
	return fmt.Sprintf("%.3f", ms)
}

// positive prints x, or a dash when it is not a positive finite number
// (not measured).
func positive(x float64, format string) string {
	if !(x > 0) || math.IsInf(x, 0) {
		return dash
	}
	return fmt.Sprintf(format, x)
}

func finite(x float64, format string) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return dash
	}
	return fmt.Sprintf(format, x)
}

func orDash(s string) string {
	if s == "" {
		return dash
	}
	return s
}

// Speedup figure geometry: one panel per model, side by side.
const (
	panelWidth      = 5.5 * vg.Inch
	panelHeight     = 4.5 * vg.Inch
	figTitleSize    = 14 * vg.Length(1)
	legendColumnGap = 0.35 * vg.Inch
)

// SpeedupPlot draws each method's speedup over DSA (y) against context
// length (x, log2 axis labelled 8K, 16K, …), one line per (method, mode),
// one panel per model, with dashed reference lines at 1 (DSA) and at
// PaperSpeedupClaim, and writes it as PNG to pngPath and SVG to svgPath
// (either may be "" to skip it). DSA's own rows (speedup 1) are the
// reference line rather than a curve. The legend sits under the panels.
func SpeedupPlot(r *kernels.CompareReport, pngPath, svgPath string) error {
	if pngPath == "" && svgPath == "" {
		return errors.New("speedup plot: no output path")
	}
	if r == nil {
		return errors.New("speedup plot: no report")
	}
	panels := speedupPanels(r.Cases)
	if len(panels) == 0 {
		return errors.New("speedup plot: no case with a speedup to plot")
	}
	title := "Indexer speedup over DSA"
	if r.Device.Name != "" {
		title += " — " + r.Device.Name
	}
	title += " (synthetic FP8 inputs)"
	if pngPath != "" {
		err := WriteAtomic(pngPath, func(w io.Writer) error {
			fig, err := newSpeedupFigure(panels, title)
			if err != nil {
				return err
			}
			c := vgimg.NewWith(vgimg.UseWH(fig.width(), fig.height()), vgimg.UseDPI(pngDPI))
			fig.draw(draw.New(c))
			_, err = vgimg.PngCanvas{Canvas: c}.WriteTo(w)
			return err
		})
		if err != nil {
			return fmt.Errorf("speedup plot: %w", err)
		}
	}
	if svgPath != "" {
		err := WriteAtomic(svgPath, func(w io.Writer) error {
			fig, err := newSpeedupFigure(panels, title)
			if err != nil {
				return err
			}
			c := vgsvg.New(fig.width(), fig.height())
			fig.draw(draw.New(c))
			_, err = c.WriteTo(w)
			return err
		})
		if err != nil {
			return fmt.Errorf("speedup plot: %w", err)
		}
	}
	return nil
}

// speedupCurve is one (method, mode) line of one panel.
type speedupCurve struct {
	method, mode string
	xys          plotter.XYs
}

// speedupPanel is one model's curves.
type speedupPanel struct {
	model  string
	heads  int
	curves []speedupCurve
}

// speedupPanels groups the non-DSA cases with a positive finite speedup by
// model, then by (method, mode), in order of first appearance, each curve
// sorted by context length.
func speedupPanels(cases []kernels.CaseResult) []speedupPanel {
	var out []speedupPanel
	pidx := map[string]int{}
	cidx := map[[3]string]int{}
	for _, c := range cases {
		if c.Method == "dsa" || !(c.Speedup > 0) || math.IsInf(c.Speedup, 0) || c.Ctx <= 0 {
			continue
		}
		p, ok := pidx[c.Model]
		if !ok {
			p = len(out)
			pidx[c.Model] = p
			out = append(out, speedupPanel{model: c.Model, heads: c.H})
		}
		key := [3]string{c.Model, c.Method, c.Mode}
		i, ok := cidx[key]
		if !ok {
			i = len(out[p].curves)
			cidx[key] = i
			out[p].curves = append(out[p].curves, speedupCurve{method: c.Method, mode: c.Mode})
		}
		out[p].curves[i].xys = append(out[p].curves[i].xys, plotter.XY{X: float64(c.Ctx), Y: c.Speedup})
	}
	for _, p := range out {
		for _, cv := range p.curves {
			slices.SortStableFunc(cv.xys, func(a, b plotter.XY) int {
				switch {
				case a.X < b.X:
					return -1
				case a.X > b.X:
					return 1
				}
				return 0
			})
		}
	}
	return out
}

// speedupFigure is a title, one plot per model, and a legend in columns
// under them (one column per mode, then the reference lines), wrapped
// onto more rows when the columns do not fit the figure's width.
type speedupFigure struct {
	title   string
	titleTS text.Style
	plots   []*plot.Plot
	legends []plot.Legend
	// legendAt is each legend's top-left corner, relative to the top-left
	// of the legend block; legendH is the block's height.
	legendAt []vg.Point
	legendH  vg.Length
}

func (f *speedupFigure) width() vg.Length {
	return vg.Length(len(f.plots))*panelWidth + 2*margin
}

// layoutLegends places the legend columns left to right from legendIndent,
// starting a new row when the next one would cross the right margin.
func (f *speedupFigure) layoutLegends() {
	f.legendAt = make([]vg.Point, len(f.legends))
	x, y, rowH := vg.Length(legendIndent), vg.Length(0), vg.Length(0)
	for i, l := range f.legends {
		sz := l.Rectangle(draw.Canvas{}).Size()
		if x > legendIndent && x+sz.X > f.width()-margin {
			x, y, rowH = legendIndent, y+rowH+legendGap, 0
		}
		f.legendAt[i] = vg.Point{X: x, Y: y}
		x += sz.X + legendColumnGap
		rowH = max(rowH, sz.Y)
	}
	f.legendH = y + rowH
}

func (f *speedupFigure) titleHeight() vg.Length {
	return f.titleTS.Height(f.title) + 2*margin
}

func (f *speedupFigure) height() vg.Length {
	return f.titleHeight() + panelHeight + f.legendH + 4*margin
}

func (f *speedupFigure) draw(c draw.Canvas) {
	th, lh := f.titleHeight(), f.legendH+3*margin
	c.FillText(f.titleTS, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: c.Max.Y - margin}, f.title)

	area := draw.Crop(c, margin, -margin, lh, -th)
	tiles := draw.Tiles{Rows: 1, Cols: len(f.plots), PadX: 0.3 * vg.Inch}
	cs := plot.Align([][]*plot.Plot{f.plots}, tiles, area)
	for i, p := range f.plots {
		p.Draw(cs[0][i])
	}

	// The legend block's top is lh - margin above the bottom, leaving two
	// margins under it.
	top := c.Min.Y + lh - margin
	for i, l := range f.legends {
		sz := l.Rectangle(draw.Canvas{}).Size()
		at := f.legendAt[i]
		lc := c
		lc.Min = vg.Point{X: c.Min.X + at.X, Y: top - at.Y - sz.Y}
		lc.Max = vg.Point{X: c.Min.X + at.X + sz.X, Y: top - at.Y}
		l.Draw(lc)
	}
}

// modeDashes draws decode dashed and prefill solid, so that a method keeps
// its colour in both modes.
func modeDashes(mode string) []vg.Length {
	if mode == "decode" {
		return []vg.Length{vg.Points(5), vg.Points(2.5)}
	}
	return nil
}

func newSpeedupFigure(panels []speedupPanel, title string) (*speedupFigure, error) {
	// Shared axes, so that the panels compare at a glance.
	xlo, xhi, yhi := math.Inf(1), math.Inf(-1), PaperSpeedupClaim
	var ctxs []float64
	for _, p := range panels {
		for _, cv := range p.curves {
			for _, xy := range cv.xys {
				xlo, xhi, yhi = min(xlo, xy.X), max(xhi, xy.X), max(yhi, xy.Y)
				if !slices.Contains(ctxs, xy.X) {
					ctxs = append(ctxs, xy.X)
				}
			}
		}
	}
	slices.Sort(ctxs)
	xmin, xmax := xlo/1.25, xhi*1.25
	ymax := yhi * 1.1

	// Colours by method across all panels, in order of first appearance.
	var methods, modes []string
	for _, p := range panels {
		for _, cv := range p.curves {
			if !slices.Contains(methods, cv.method) {
				methods = append(methods, cv.method)
			}
			if !slices.Contains(modes, cv.mode) {
				modes = append(modes, cv.mode)
			}
		}
	}

	newLegend := func() plot.Legend {
		l := plot.NewLegend()
		l.TextStyle.Font = font.From(l.TextStyle.Font, legendFont)
		l.Top, l.Left = true, true
		l.ThumbnailWidth = vg.Points(32)
		l.Padding = legendGap
		return l
	}
	legends := make([]plot.Legend, len(modes)+1)
	for i := range legends {
		legends[i] = newLegend()
	}
	inLegend := map[[2]string]bool{}

	refLine := func(y float64, dashes []vg.Length, gray uint8) (*plotter.Line, error) {
		l, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: y}, {X: xmax, Y: y}})
		if err != nil {
			return nil, err
		}
		l.Color = color.Gray{Y: gray}
		l.Width = vg.Points(1.2)
		l.Dashes = dashes
		return l, nil
	}

	var plots []*plot.Plot
	for _, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.model
		if pn.heads > 0 {
			p.Title.Text += fmt.Sprintf(" (H=%d)", pn.heads)
		}
		p.Title.TextStyle.Font.Size = 12
		p.Title.Padding = 0.08 * vg.Inch
		p.X.Label.Text = "context length (tokens)"
		p.Y.Label.Text = "speedup over DSA (×)"
		for _, a := range []*plot.Axis{&p.X, &p.Y} {
			a.Label.TextStyle.Font.Size = 11
			a.Tick.Label.Font.Size = 10
		}
		p.X.Scale = plot.LogScale{}
		p.X.Min, p.X.Max = xmin, xmax
		var xt []plot.Tick
		for _, x := range ctxs {
			xt = append(xt, plot.Tick{Value: x, Label: CtxLabel(int(x))})
		}
		p.X.Tick.Marker = plot.ConstantTicks(xt)
		p.Y.Min, p.Y.Max = 0, ymax
		p.Y.Tick.Marker = speedupTicks{}

		grid := plotter.NewGrid()
		grid.Vertical.Color = color.Gray{Y: 225}
		grid.Horizontal.Color = color.Gray{Y: 225}
		p.Add(grid)

		claim, err := refLine(PaperSpeedupClaim, []vg.Length{vg.Points(6), vg.Points(4)}, 60)
		if err != nil {
			return nil, err
		}
		one, err := refLine(1, []vg.Length{vg.Points(2), vg.Points(3)}, 110)
		if err != nil {
			return nil, err
		}
		p.Add(claim, one)
		if len(plots) == 0 {
			ref := &legends[len(legends)-1]
			ref.Add(fmt.Sprintf("paper's H200 claim (MISA): %.2f×", PaperSpeedupClaim), claim)
			ref.Add("1× (DSA)", one)
		}

		for _, cv := range pn.curves {
			mi := slices.Index(methods, cv.method)
			line, points, err := plotter.NewLinePoints(cv.xys)
			if err != nil {
				return nil, fmt.Errorf("%s %s %s: %w", pn.model, cv.method, cv.mode, err)
			}
			line.Color = plotutil.Color(mi)
			line.Width = vg.Points(1.6)
			line.Dashes = modeDashes(cv.mode)
			points.Color = plotutil.Color(mi)
			points.Shape = plotutil.Shape(mi)
			points.Radius = vg.Points(2.5)
			p.Add(line, points)
			key := [2]string{cv.method, cv.mode}
			if !inLegend[key] {
				inLegend[key] = true
				li := slices.Index(modes, cv.mode)
				legends[li].Add(cv.method+", "+cv.mode, line, points)
			}
		}
		p.Legend = plot.NewLegend() // empty: the figure draws the legends under the panels
		plots = append(plots, p)
	}

	ts := plot.New().Title.TextStyle
	ts.Font.Size = figTitleSize
	ts.XAlign = draw.XCenter
	ts.YAlign = draw.YTop
	f := &speedupFigure{title: title, titleTS: ts, plots: plots, legends: legends}
	f.layoutLegends()
	return f, nil
}

// speedupTicks labels whole speedups (every 1, 2, 5, … so that about eight
// labels fit) and marks the halves between them when the range is small.
type speedupTicks struct{}

func (speedupTicks) Ticks(lo, hi float64) []plot.Tick {
	step := 1.0
	for _, s := range []float64{0.5, 1, 2, 5, 10, 20, 50, 100} {
		step = s
		if (hi-lo)/s <= 10 {
			break
		}
	}
	var ts []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return ts
}
