package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/misabench/misabench/configs"
	"github.com/misabench/misabench/trace"
)

// captured runs a command line through the real cobra tree, with the run
// functions replaced so that only option resolution happens.
type captured struct {
	recall   *RecallOptions
	regress  *RegressOptions
	traceGen *TraceGenOptions
	code     int
	stderr   string
}

func resolve(t *testing.T, args ...string) captured {
	t.Helper()
	var c captured
	var stdout, stderr bytes.Buffer
	a := newApp(&stdout, &stderr)
	a.recallF = func(_ context.Context, o *RecallOptions) error { c.recall = o; return nil }
	a.regressF = func(_ context.Context, o *RegressOptions) error { c.regress = o; return nil }
	a.traceGenF = func(_ context.Context, o *TraceGenOptions) error { c.traceGen = o; return nil }
	root := newRootCmd(a)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	c.code = exitCode(err)
	if err != nil {
		c.stderr = err.Error()
	}
	return c
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c := resolve(t, "recall")
	if c.code != 0 || c.recall == nil {
		t.Fatalf("recall: code %d (%s)", c.code, c.stderr)
	}
	o := c.recall
	if o.Preset != "deepseek-v3.2" || o.Heads != 8 || o.Block != 1024 || o.Stage1 != 8192 ||
		o.HisaBlock != 128 || o.HisaBlocks != 64 || o.RouterPool != "causal" || o.Format != "table" || o.Device != "cpu" {
		t.Errorf("defaults: %+v", o)
	}
	if !slices.Equal(o.Methods, []string{"misa", "misa-dagger", "hisa"}) || !slices.Equal(o.Routers, []string{"pooled"}) {
		t.Errorf("default methods %v routers %v", o.Methods, o.Routers)
	}
	if len(o.Traces) != 0 || o.Out != "" {
		t.Errorf("default traces %v out %q", o.Traces, o.Out)
	}
	// No subcommand runs recall.
	if c := resolve(t); c.code != 0 || c.recall == nil {
		t.Fatalf("misabench with no command: code %d (%s), recall ran: %v", c.code, c.stderr, c.recall != nil)
	}
}

func TestConfigEnvFlagPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "exp.yaml", `
heads: 16
queries: 32
ctx: 4096
router: [pooled, qnorm]
methods: misa,hisa
layers: [0, 2]
router-pool: reference
format: csv
tolerance: 0.05
`)
	t.Setenv("MISABENCH_QUERIES", "24")     // env beats the file
	t.Setenv("MISABENCH_HISA_BLOCKS", "32") // dashes become underscores
	c := resolve(t, "recall", "--config", cfg, "--heads", "4")
	if c.code != 0 {
		t.Fatalf("code %d: %s", c.code, c.stderr)
	}
	o := c.recall
	if o.Heads != 4 {
		t.Errorf("heads = %d, want 4 (flag beats config)", o.Heads)
	}
	if o.Queries != 24 {
		t.Errorf("queries = %d, want 24 (env beats config)", o.Queries)
	}
	if o.HisaBlocks != 32 {
		t.Errorf("hisa-blocks = %d, want 32 (from MISABENCH_HISA_BLOCKS)", o.HisaBlocks)
	}
	if o.Ctx != 4096 || o.RouterPool != "reference" || o.Format != "csv" {
		t.Errorf("config values not applied: ctx %d router-pool %q format %q", o.Ctx, o.RouterPool, o.Format)
	}
	if !slices.Equal(o.Routers, []string{"pooled", "qnorm"}) || !slices.Equal(o.Methods, []string{"misa", "hisa"}) ||
		!slices.Equal(o.Layers, []int{0, 2}) {
		t.Errorf("lists: routers %v methods %v layers %v", o.Routers, o.Methods, o.Layers)
	}

	// The root with no command reads the config for recall as well.
	c = resolve(t, "--config", cfg, "--format", "json")
	if c.code != 0 || c.recall == nil {
		t.Fatalf("root: code %d: %s", c.code, c.stderr)
	}
	if c.recall.Heads != 16 || c.recall.Format != "json" || !slices.Equal(c.recall.Routers, []string{"pooled", "qnorm"}) {
		t.Errorf("root: heads %d format %q routers %v", c.recall.Heads, c.recall.Format, c.recall.Routers)
	}

	// regress reads tolerance from the same file; a flag still wins.
	c = resolve(t, "regress", "--config", cfg, "--baseline", "b.json")
	if c.code != 0 || c.regress.Tolerance != 0.05 || c.regress.Heads != 16 {
		t.Errorf("regress: code %d tolerance %g heads %d", c.code, c.regress.Tolerance, c.regress.Heads)
	}
	c = resolve(t, "regress", "--config", cfg, "--baseline", "b.json", "--tolerance", "0.2", "--layers", "1")
	if c.regress.Tolerance != 0.2 || !slices.Equal(c.regress.Layers, []int{1}) {
		t.Errorf("regress flags: tolerance %g layers %v", c.regress.Tolerance, c.regress.Layers)
	}

	// MISABENCH_CONFIG names the config file.
	t.Setenv("MISABENCH_CONFIG", cfg)
	c = resolve(t, "recall")
	if c.code != 0 || c.recall.Heads != 16 {
		t.Errorf("MISABENCH_CONFIG: code %d heads %d", c.code, c.recall.Heads)
	}
}

func TestBuiltinConfigs(t *testing.T) {
	// The CI experiment, from the file and by its built-in name.
	for _, name := range []string{"../../configs/ci.yaml", "ci"} {
		c := resolve(t, "regress", "--config", name, "--baseline", "x.json")
		if c.code != 0 {
			t.Fatalf("--config %s: code %d: %s", name, c.code, c.stderr)
		}
		o := c.regress
		if o.Preset != "deepseek-v3.2" || o.Ctx != 16384 || o.Queries != 96 || o.Seed != 7 || o.Tolerance != 0.01 ||
			!slices.Equal(o.Routers, []string{"pooled", "selfkey", "qnorm"}) ||
			!slices.Equal(o.Methods, []string{"misa", "misa-dagger", "hisa"}) {
			t.Errorf("--config %s: %+v", name, o.ExperimentOptions)
		}
	}
	// Model presets are valid configs that pick the synthetic preset.
	c := resolve(t, "recall", "--config", "../../configs/glm-5.yaml")
	if c.code != 0 || c.recall.Preset != "glm-5" || c.recall.Heads != 8 {
		t.Errorf("glm-5 preset as config: code %d (%s) preset %q heads %d", c.code, c.stderr, c.recall.Preset, c.recall.Heads)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"unknown key":   {args: []string{"recall", "--config", writeFile(t, dir, "a.yaml", "quries: 3\n")}},
		"bad value":     {args: []string{"recall", "--config", writeFile(t, dir, "b.yaml", "heads: lots\n")}},
		"bad yaml":      {args: []string{"recall", "--config", writeFile(t, dir, "c.yaml", "heads: [1\n")}},
		"missing file":  {args: []string{"recall", "--config", filepath.Join(dir, "nope.yaml")}},
		"unknown name":  {args: []string{"recall", "--config", "nope"}},
		"bad env":       {args: []string{"recall"}, env: map[string]string{"MISABENCH_CTX": "big"}},
		"unknown flag":  {args: []string{"recall", "--hedas", "3"}},
		"bad flag":      {args: []string{"recall", "--heads", "x"}},
		"unknown cmd":   {args: []string{"recal"}},
		"extra arg":     {args: []string{"recall", "foo"}},
		"gen no out":    {args: []string{"trace", "gen", "--out"}},
		"inspect noarg": {args: []string{"trace", "inspect"}},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c := resolve(t, tc.args...)
			if c.code != exitUsage {
				t.Errorf("%v: code %d, want 2 (%s)", tc.args, c.code, c.stderr)
			}
			if c.recall != nil {
				t.Errorf("%v: recall ran", tc.args)
			}
		})
	}
}

func TestTraceGenFlags(t *testing.T) {
	c := resolve(t, "trace", "gen", "--out", "x.safetensors", "--ctx", "8192", "--layers", "0,5",
		"--needle-depth", "0.25", "--needle-len", "16", "--qtype", "bf16", "--ktype", "f8", "--placement", "tail")
	if c.code != 0 {
		t.Fatalf("code %d: %s", c.code, c.stderr)
	}
	o := c.traceGen
	if o.Out != "x.safetensors" || o.Ctx != 8192 || !slices.Equal(o.Layers, []int{0, 5}) || o.NeedleDepth != 0.25 ||
		o.NeedleLen != 16 || o.QType != "bf16" || o.KType != "f8" || o.Placement != "tail" {
		t.Errorf("trace gen options: %+v", o)
	}
	if c := resolve(t, "trace", "gen", "--out", "y"); c.traceGen.NeedleDepth >= 0 {
		t.Errorf("default needle depth %g, want none (negative)", c.traceGen.NeedleDepth)
	}
}

// The model presets in configs/ and the synthetic presets of trace agree on
// the indexer geometry.
func TestPresetsMatchSynthetic(t *testing.T) {
	presets, err := configs.Presets()
	if err != nil {
		t.Fatal(err)
	}
	if len(presets) < 2 {
		t.Fatalf("only %d model presets", len(presets))
	}
	for _, p := range presets {
		s, err := trace.SynthPreset(p.Name)
		if err != nil {
			t.Errorf("%s: no synthetic preset: %v", p.Name, err)
			continue
		}
		if s.Heads != p.Heads || s.HeadDim != p.HeadDim || s.TopK != p.TopK ||
			s.RopeDims != p.RoPE.Dims || s.RopeInterleaved != p.RoPE.Interleaved {
			t.Errorf("%s: configs says H %d D %d k %d rope %d interleaved %v; synthetic preset says H %d D %d k %d rope %d interleaved %v",
				p.Name, p.Heads, p.HeadDim, p.TopK, p.RoPE.Dims, p.RoPE.Interleaved,
				s.Heads, s.HeadDim, s.TopK, s.RopeDims, s.RopeInterleaved)
		}
	}
}
