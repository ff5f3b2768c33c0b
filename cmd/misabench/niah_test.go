package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/misabench/misabench/indexer"
	"github.com/misabench/misabench/niah"
)

// niahFakeGPU is a backend that is not the CPU's, for the grid defaults.
type niahFakeGPU struct{ *indexer.CPU }

func (niahFakeGPU) Name() string { return "gpu(fake)" }

// resolveNiah runs a command line through the real cobra tree with the
// niah run function replaced, and returns the options it resolved to.
func resolveNiah(t *testing.T, args ...string) (*NiahOptions, int, string) {
	t.Helper()
	var got *NiahOptions
	var stdout, stderr bytes.Buffer
	a := newApp(&stdout, &stderr)
	a.niahF = func(_ context.Context, o *NiahOptions) error { got = o; return nil }
	root := newRootCmd(a)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	return got, exitCode(err), msg
}

func TestNiahFlags(t *testing.T) {
	o, code, msg := resolveNiah(t, "niah")
	if code != 0 || o == nil {
		t.Fatalf("code %d (%s)", code, msg)
	}
	if o.deviceGiven || o.device() != "cpu" { // a CPU-only build: cpu, silently
		t.Errorf("default device %q (given %v)", o.device(), o.deviceGiven)
	}
	if !slices.Equal(o.Methods, []string{"dsa", "misa", "misa-dagger", "hisa"}) || o.Heads != 8 || o.Block != 1024 ||
		o.Stage1 != 8192 || o.HisaBlock != 128 || o.HisaBlocks != 64 || o.RouterPool != "causal" ||
		o.NeedleFocus != 4 || o.NeedleScale != 24 || o.NeedleLen != 24 || o.Format != "table" {
		t.Errorf("defaults: %+v", o)
	}
	// The device defaults of the grid.
	for _, tc := range []struct {
		def    niahDefaults
		ctxs   []int
		depths int
	}{
		{niahCPUDefaults, []int{2048, 6144, 11264, 15360, 19456, 23552, 28672, 32768}, 8},
		{niahGPUDefaults, niah.ContextAxis(2048, 131072, 15), 15},
	} {
		ctxs, depths, err := o.grid(tc.def)
		if err != nil || !slices.Equal(ctxs, tc.ctxs) || len(depths) != tc.depths || depths[0] != 0 || depths[len(depths)-1] != 1 {
			t.Errorf("grid: %v %v %v", ctxs, depths, err)
		}
	}
	if got := niahGPUDefaults; got.ctx != 131072 || len(got.layers) != 3 || got.queries != 64 {
		t.Errorf("GPU defaults %+v", got)
	}

	// --ctx parsed like kernel's, --depths in percent, and the method flags.
	o, code, msg = resolveNiah(t, "niah", "--ctx", "128K", "--ctx-points", "5", "--depths", "0, 25%,100", "--device", "cpu",
		"--methods", "dsa,misa", "--router", "pooled,oracle", "--heads", "16", "--block", "512", "--layers", "3,1")
	if code != 0 {
		t.Fatalf("code %d (%s)", code, msg)
	}
	ctxs, depths, err := o.grid(niahCPUDefaults)
	if err != nil || !slices.Equal(ctxs, []int{2048, 34816, 66560, 99328, 131072}) || !slices.Equal(depths, []float64{0, 0.25, 1}) {
		t.Errorf("grid: %v %v %v", ctxs, depths, err)
	}
	if !o.deviceGiven || o.device() != "cpu" || !slices.Equal(o.Layers, []int{3, 1}) {
		t.Errorf("device %q given %v layers %v", o.device(), o.deviceGiven, o.Layers)
	}
	ms, err := o.methods()
	if err != nil || len(ms) != 3 || ms[1].Name() != "misa(h=16,pooled,B=512)" || ms[2].Name() != "misa(h=16,oracle)" {
		t.Errorf("methods %v %v", ms, err)
	}

	// --contexts, unsorted, with repeats.
	o, _, _ = resolveNiah(t, "niah", "--contexts", "16k,4096,4k", "--depth-points", "3")
	if ctxs, depths, err := o.grid(niahCPUDefaults); err != nil || !slices.Equal(ctxs, []int{4096, 16384}) || !slices.Equal(depths, []float64{0, 0.5, 1}) {
		t.Errorf("--contexts grid: %v %v %v", ctxs, depths, err)
	}

	// The plan picks the grid by the backend it gets: the CPU's, or the
	// GPU's for any other backend.
	for _, gpu := range []bool{false, true} {
		o := defaultNiahOptions()
		o.newBackend = func(string, int, io.Writer) (indexer.Backend, error) {
			if gpu {
				return niahFakeGPU{indexer.NewCPU(1)}, nil
			}
			return indexer.NewCPU(1), nil
		}
		p, err := o.plan(io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		want, rows := niahCPUDefaults, 16
		if gpu {
			want, rows = niahGPUDefaults, 64
		}
		if len(p.contexts) != want.ctxPoints || p.contexts[len(p.contexts)-1] != want.ctx || len(p.depths) != want.depthPoints ||
			p.synth.Base.Queries != rows || !slices.Equal(p.synth.Base.Layers, []int{0, 1, 2}) || p.cells != want.ctxPoints*want.depthPoints ||
			p.synth.Needle.Focus != 4 || p.synth.Needle.Scale != 24 || p.synth.Needle.Len != 24 {
			t.Errorf("gpu %v: plan %v × %v, synth %+v needle %+v", gpu, p.contexts, p.depths, p.synth.Base, p.synth.Needle)
		}
		p.close()
	}

	// The environment counts as giving --device; so does the config.
	t.Setenv("MISABENCH_DEVICE", "auto")
	o, _, _ = resolveNiah(t, "niah")
	if !o.deviceGiven || o.device() != "auto" {
		t.Errorf("MISABENCH_DEVICE=auto: device %q given %v", o.device(), o.deviceGiven)
	}
}

func TestNiahGridErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"ctx below 2K":       {[]string{"--ctx", "1k"}, "at least 2K"},
		"ctx not a number":   {[]string{"--ctx", "big"}, "want a context length"},
		"empty depths":       {[]string{"--depths", ""}, "--depths is empty"},
		"bad depth":          {[]string{"--depths", "0,120"}, "percentage in [0, 100]"},
		"empty contexts":     {[]string{"--contexts", ""}, "--contexts is empty"},
		"contexts and ctx":   {[]string{"--contexts", "4k", "--ctx", "8k"}, "not both"},
		"depths and points":  {[]string{"--depths", "0", "--depth-points", "3"}, "not both"},
		"negative points":    {[]string{"--ctx-points", "-1"}, "negative"},
		"needle too long":    {[]string{"--contexts", "4k", "--needle-len", "5000"}, "does not fit"},
		"negative focus":     {[]string{"--needle-focus", "-1"}, "--needle-focus"},
		"needle len zero":    {[]string{"--needle-len", "0"}, "--needle-len"},
		"heads over H":       {[]string{"--heads", "65"}, "out of range [1, 64]"},
		"unknown method":     {[]string{"--methods", "dsa,nsa"}, "nsa"},
		"bad device":         {[]string{"--device", "tpu"}, "tpu"},
		"gpu without cuda":   {[]string{"--device", "gpu"}, "built without CUDA"},
		"model without name": {[]string{"--endpoint", "http://localhost:1"}, "--served-model"},
		"model and trace":    {[]string{"--endpoint", "http://localhost:1", "--served-model", "m", "--trace", "x"}, "one or the other"},
		"--model and trace":  {[]string{"--endpoint", "http://localhost:1", "--model", "m", "--trace", "x"}, "one or the other"},
		"bad format":         {[]string{"--format", "xml"}, "xml"},
	} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			code, stdout, stderr := cli(t, append(append([]string{"niah"}, tc.args...), "--out", out)...)
			if code != exitUsage {
				t.Fatalf("code %d, want 2; stderr: %s", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q does not mention %q in one line", stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
			assertNoDir(t, out)
		})
	}
}

// niahTiny keeps real runs fast: two 4K/8K contexts, two depths, one
// layer, eight question rows.
var niahTiny = []string{"niah", "--contexts", "4k,8k", "--depths", "0,100", "--layers", "0", "--queries", "8"}

func TestNiahRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	code, stdout, stderr := cli(t, args(niahTiny, "--format", "csv", "--out", out)...)
	if code != 0 {
		t.Fatalf("code %d: %s", code, stderr)
	}
	recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatalf("stdout csv: %v\n%s", err, stdout)
	}
	if len(recs) != 1+4*4 || !slices.Equal(recs[0][:3], []string{"method", "level", "ctx"}) || recs[0][len(recs[0])-1] != "layer_0" {
		t.Errorf("csv: %d records, header %v", len(recs), recs[0])
	}
	for _, r := range recs[1:] {
		if r[0] == "dsa" && (r[5] != "1" || r[6] != "true") {
			t.Errorf("DSA not green: %v", r)
		}
	}
	if !strings.Contains(stderr, "misabench: niah: 4 cells (2 contexts × 2 depths) × 4 methods, 1 layer, 8 question rows per cell, on cpu(") ||
		!strings.Contains(stderr, "misabench: wrote "+out) {
		t.Errorf("stderr: %s", stderr)
	}

	// The files.
	b, err := os.ReadFile(filepath.Join(out, "niah.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := niah.ReadJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Grids) != 4 || res.WallSeconds <= 0 || res.Created.IsZero() || res.Version == "" || !strings.HasPrefix(res.Backend, "cpu") {
		t.Errorf("result: %d grids, wall %v, created %v, version %q, backend %q", len(res.Grids), res.WallSeconds, res.Created, res.Version, res.Backend)
	}
	if g := res.Grids[0]; g.Method != "dsa" || !slices.Equal(g.Contexts, []int{4096, 8192}) || !slices.Equal(g.Depths, []float64{0, 1}) || g.Cells[1][1].N != 8 {
		t.Errorf("dsa grid: %+v", g)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &struct {
		Config *map[string]any `json:"config"`
	}{&cfg}); err != nil || cfg["level"] != "indexer" || cfg["synthetic"] == nil || cfg["needle"] == nil {
		t.Errorf("config %v (%v)", cfg, err)
	}
	for _, name := range []string{"niah.csv", "niah.html", "heatmap-dsa.svg", "heatmap-hisa-b128-m64.svg",
		"heatmap-misa-h8-pooled-b1024.png", "heatmap-misa-dagger-h8-pooled-b1024-k1-8192.png"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Error(err)
			continue
		}
		switch filepath.Ext(name) {
		case ".png":
			if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
				t.Errorf("%s is not a PNG", name)
			}
		case ".svg":
			if !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("</svg>")) {
				t.Errorf("%s is not an SVG", name)
			}
		}
	}

	// Table on stdout, JSON on stdout.
	code, stdout, stderr = cli(t, args(niahTiny, "--methods", "dsa", "--out", filepath.Join(dir, "table"))...)
	if code != 0 || !strings.Contains(stdout, "dsa") || !strings.Contains(stdout, "4/4") || !strings.Contains(stdout, "note: synthetic") {
		t.Errorf("table: code %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, _ = cli(t, args(niahTiny, "--methods", "dsa", "--format", "json", "--out", filepath.Join(dir, "json"))...)
	if _, err := niah.ReadJSON(strings.NewReader(stdout)); code != 0 || err != nil {
		t.Errorf("json: code %d, %v", code, err)
	}
}

func TestNiahTraces(t *testing.T) {
	dir := t.TempDir()
	traces := filepath.Join(dir, "traces")
	if err := os.Mkdir(traces, 0o755); err != nil {
		t.Fatal(err)
	}
	gen := func(name string, extra ...string) string {
		t.Helper()
		p := filepath.Join(traces, name)
		code, _, stderr := cli(t, args([]string{"trace", "gen", "--out", p, "--queries", "8", "--layers", "0,2", "--topk", "256"}, extra...)...)
		if code != 0 {
			t.Fatalf("trace gen %s: %s", name, stderr)
		}
		return p
	}
	gen("a.safetensors", "--ctx", "4096", "--needle-depth", "0.25")
	gen("b.safetensors", "--ctx", "4096", "--needle-depth", "0.75")
	gen("c.safetensors", "--ctx", "6144", "--needle-depth", "0.25")
	gen("d.safetensors", "--ctx", "6144", "--needle-depth", "0.75")

	out := filepath.Join(dir, "out")
	code, stdout, stderr := cli(t, "niah", "--trace", traces, "--methods", "dsa,hisa", "--format", "json", "--out", out)
	if code != 0 {
		t.Fatalf("code %d: %s", code, stderr)
	}
	res, err := niah.ReadJSON(strings.NewReader(stdout))
	if err != nil {
		t.Fatal(err)
	}
	g := res.Grids[0]
	if len(res.Grids) != 2 || !slices.Equal(g.Contexts, []int{4096, 6144}) || !slices.Equal(g.Depths, []float64{0.25, 0.75}) || !slices.Equal(g.Layers, []int{0, 2}) {
		t.Fatalf("grid: %d grids, contexts %v depths %v layers %v", len(res.Grids), g.Contexts, g.Depths, g.Layers)
	}
	for _, row := range g.Cells {
		for _, c := range row {
			if c.N != 8 || len(c.PerLayer) != 2 || c.Score < 0 || c.Score > 1 || c.Score != min(c.PerLayer[0], c.PerLayer[1]) {
				t.Errorf("cell %+v", c)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(out, "heatmap-hisa-b128-m64.png")); err != nil {
		t.Error(err)
	}
	if cfg, ok := res.Config["traces"]; !ok || len(res.Notes) != 0 {
		t.Errorf("config traces %v notes %v", cfg, res.Notes)
	}

	// --layers picks common layers; a missing one is bad input.
	if code, _, stderr := cli(t, "niah", "--trace", traces, "--methods", "dsa", "--layers", "2", "--out", filepath.Join(dir, "l2")); code != 0 {
		t.Errorf("--layers 2: %s", stderr)
	}
	if code, _, stderr := cli(t, "niah", "--trace", traces, "--layers", "1", "--out", filepath.Join(dir, "l1")); code != exitUsage || !strings.Contains(stderr, "layer 1") {
		t.Errorf("--layers 1: code %d %s", code, stderr)
	}

	// A trace without needle metadata: exit 2, a clear message, no files.
	gen("plain.safetensors", "--ctx", "4096")
	out2 := filepath.Join(dir, "out2")
	code, stdout, stderr = cli(t, "niah", "--trace", traces, "--out", out2)
	if code != exitUsage || stdout != "" || !strings.Contains(stderr, "plain.safetensors has no needle metadata") ||
		!strings.Contains(stderr, "trace gen --needle-depth") {
		t.Errorf("no needle: code %d stdout %q stderr %q", code, stdout, stderr)
	}
	assertNoDir(t, out2)
}

func TestNiahModelLevel(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "model")
	var got niah.ModelOptions
	o := defaultNiahOptions()
	o.Endpoint, o.ServedModel, o.Samples, o.Contexts, o.DepthPoints = "http://localhost:8000", "m", 2, []string{"1k", "4k"}, 3
	o.Format = "table"
	var stdout, stderr bytes.Buffer
	o.Stdout, o.Stderr, o.Out = &stdout, &stderr, out
	o.Now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	o.runModel = func(_ context.Context, mo niah.ModelOptions) (*niah.Grid, error) {
		got = mo
		if fi, err := os.Stat(mo.Out); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("out %q is not there for the model's results: %v", mo.Out, err)
		}
		mo.Progress(0, 12)
		g := &niah.Grid{Method: "model:m", Level: niah.LevelModel, Contexts: mo.Contexts, Depths: mo.Depths}
		for _, d := range mo.Depths {
			var row []niah.Cell
			for _, c := range mo.Contexts {
				row = append(row, niah.Cell{Ctx: c, Depth: d, Score: 1 - d/2, N: mo.Samples})
			}
			g.Cells = append(g.Cells, row)
		}
		return g, nil
	}
	if err := runNiah(context.Background(), &o); err != nil {
		t.Fatal(err)
	}
	if got.Endpoint != o.Endpoint || got.Model != "m" || got.Samples != 2 || !slices.Equal(got.Contexts, []int{1024, 4096}) ||
		!slices.Equal(got.Depths, []float64{0, 0.5, 1}) || got.Out != out || got.Scorer != "passkey" {
		t.Errorf("model options %+v", got)
	}
	if !strings.Contains(stdout.String(), "model:m") || !strings.Contains(stdout.String(), "2/6") {
		t.Errorf("table:\n%s", stdout.String())
	}
	for _, name := range []string{"niah.json", "niah.csv", "niah.html", "heatmap-model-m.png", "heatmap-model-m.svg"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Error(err)
		}
	}

	// Errors of the model run keep their classes: bad options are exit 2.
	o.runModel = func(context.Context, niah.ModelOptions) (*niah.Grid, error) {
		return nil, fmt.Errorf("%w: no depths", niah.ErrModelOptions)
	}
	if err := runNiah(context.Background(), &o); exitCode(classify(err)) != exitUsage {
		t.Errorf("bad model options: %v (code %d)", err, exitCode(classify(err)))
	}
	// A fresh --out is not left behind empty; the one with answers stays.
	o.Out = filepath.Join(dir, "fresh")
	if err := runNiah(context.Background(), &o); err == nil {
		t.Error("no error")
	}
	assertNoDir(t, o.Out)
	if _, err := os.Stat(filepath.Join(out, "niah.json")); err != nil {
		t.Error(err)
	}
	o.runModel = func(context.Context, niah.ModelOptions) (*niah.Grid, error) { return nil, errors.New("server on fire") }
	if err := runNiah(context.Background(), &o); exitCode(classify(err)) != exitFail {
		t.Errorf("server failure: %v", err)
	}
}
