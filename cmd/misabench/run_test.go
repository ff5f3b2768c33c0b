package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/misabench/misabench/eval"
	"github.com/misabench/misabench/trace"
)

// tiny keeps the real runs fast: 4K context, 16 query rows, one layer, k 256.
var tiny = []string{"--ctx", "4096", "--queries", "16", "--layers", "0", "--topk", "256"}

// cli runs a whole command line as main does and returns the exit code and
// the two streams.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func args(base []string, more ...string) []string {
	return append(append([]string{}, base...), more...)
}

func assertNoDir(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		t.Errorf("%s exists after a failed run", path)
	}
	// No temporary leftovers next to it either.
	ents, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	notTrace := writeFile(t, dir, "junk.safetensors", "this is not a safetensors file")
	out := filepath.Join(dir, "out")
	for name, tc := range map[string]struct {
		args []string
		want string // in stderr
	}{
		"heads over H":      {args(tiny, "recall", "--heads", "65"), "out of range [1, 64]"},
		"heads zero":        {args(tiny, "recall", "--heads", "0"), "heads"},
		"unknown router":    {args(tiny, "recall", "--router", "pooled,magic"), "magic"},
		"unknown method":    {args(tiny, "recall", "--methods", "misa,nsa"), "nsa"},
		"unknown pool":      {args(tiny, "recall", "--router-pool", "future"), "future"},
		"hisa block zero":   {args(tiny, "recall", "--hisa-block", "0"), "B_h"},
		"unknown preset":    {args(tiny, "recall", "--preset", "llama"), "llama"},
		"missing trace":     {[]string{"recall", "--trace", filepath.Join(dir, "nope.safetensors")}, "nope.safetensors"},
		"dir without trace": {[]string{"recall", "--trace", empty}, "no *.safetensors traces"},
		"not a trace":       {[]string{"recall", "--trace", notTrace}, "junk.safetensors"},
		"gpu without cuda":  {args(tiny, "recall", "--device", "gpu"), "built without CUDA"},
		"bad device":        {args(tiny, "recall", "--device", "tpu"), "tpu"},
		"bad format":        {args(tiny, "recall", "--format", "xml"), "xml"},
		"bad layer":         {args(tiny, "recall", "--layers", "-1"), "layer"},
		"layer twice":       {args(tiny, "recall", "--layers", "0,0"), "twice"},
		"queries over ctx":  {[]string{"recall", "--ctx", "100", "--queries", "400", "--layers", "0"}, "queries (400) must not exceed"},
		"negative workers":  {args(tiny, "recall", "--workers", "-2"), "workers"},
		"regress no base":   {args(tiny, "regress", "--baseline", filepath.Join(dir, "none.json")), "--update"},
		"regress bad base":  {args(tiny, "regress", "--baseline", notTrace), "--update"},
	} {
		t.Run(name, func(t *testing.T) {
			a := tc.args
			if slices.Contains(a, "recall") {
				a = args(a, "--out", out)
			}
			code, stdout, stderr := cli(t, a...)
			if code != exitUsage {
				t.Fatalf("code %d, want 2; stderr: %s", code, stderr)
			}
			if !strings.HasPrefix(stderr, "misabench: ") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr is not one \"misabench: <error>\" line: %q", stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not mention %q", stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout not empty: %q", stdout)
			}
			assertNoDir(t, out)
		})
	}
}

func TestRecallFormats(t *testing.T) {
	dir := t.TempDir()

	// CSV: parseable, with a header and one row per method per layer plus overall.
	out := filepath.Join(dir, "csv")
	code, stdout, stderr := cli(t, args(tiny, "recall", "--format", "csv", "--out", out)...)
	if code != 0 {
		t.Fatalf("csv: code %d: %s", code, stderr)
	}
	recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatalf("csv output does not parse: %v\n%s", err, stdout)
	}
	if len(recs) < 1+2*3 { // header, 3 methods × (layer 0 + overall)
		t.Errorf("csv has %d records:\n%s", len(recs), stdout)
	}
	if !strings.Contains(stderr, out) {
		t.Errorf("stderr does not name the out dir %s: %q", out, stderr)
	}
	for _, f := range []string{"result.json", "recall.png", "recall.svg"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	res, err := eval.ReadResult(filepath.Join(out, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) == 0 || res.Notes[0] != syntheticNote {
		t.Errorf("result notes %q lack the synthetic note", res.Notes)
	}
	if res.Config["preset"] != "deepseek-v3.2" || res.Version == "" || res.Created.IsZero() {
		t.Errorf("result config %v version %q created %v", res.Config, res.Version, res.Created)
	}

	// JSON: the result itself.
	code, stdout, stderr = cli(t, args(tiny, "recall", "--format", "json", "--out", filepath.Join(dir, "json"))...)
	if code != 0 {
		t.Fatalf("json: code %d: %s", code, stderr)
	}
	var r eval.Result
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("json output does not parse: %v\n%s", err, stdout)
	}
	if len(r.Layers) != 3 || len(r.Overall) != 3 {
		t.Errorf("json result has %d layer rows and %d overall rows, want 3 and 3", len(r.Layers), len(r.Overall))
	}

	// Table, into an existing directory.
	existing := filepath.Join(dir, "existing")
	if err := os.Mkdir(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = cli(t, args(tiny, "recall", "--router", "pooled,qnorm", "--out", existing)...)
	if code != 0 {
		t.Fatalf("table: code %d: %s", code, stderr)
	}
	for _, want := range []string{"misa(h=8,qnorm)", "synthetic data"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(existing, "result.json")); err != nil {
		t.Error(err)
	}
}

// A run whose rows all see at most k keys is exact by definition: it
// succeeds, with a result but no plot.
func TestAllTrivial(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := cli(t, "recall", "--ctx", "1000", "--queries", "8", "--layers", "0", "--out", out)
	if code != 0 {
		t.Fatalf("code %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "(8)") || !strings.Contains(stderr, "no plot") {
		t.Errorf("stdout %q stderr %q", stdout, stderr)
	}
	if _, err := eval.ReadResult(filepath.Join(out, "result.json")); err != nil {
		t.Error(err)
	}
}

// The run function works without cobra.
func TestRunRecallDirect(t *testing.T) {
	var stdout, stderr bytes.Buffer
	opts := &RecallOptions{
		ExperimentOptions: defaultExperimentOptions(),
		Format:            "json",
		Out:               filepath.Join(t.TempDir(), "run"),
		Stdout:            &stdout,
		Stderr:            &stderr,
		Progress:          true, // as if stderr were a terminal
	}
	opts.Ctx, opts.Queries, opts.Layers, opts.TopK = 4096, 16, []int{0}, 256
	opts.Methods = []string{"dsa", "misa"}
	if err := runRecall(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	var r eval.Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "layers") || !strings.Contains(stderr.String(), "(0/1)") {
		t.Errorf("no progress bar on stderr: %q", stderr.String())
	}
	for _, s := range r.Overall {
		if s.Method == "dsa" && s.Recall.N > 0 && s.Recall.Mean != 1 {
			t.Errorf("DSA against itself: recall %g", s.Recall.Mean)
		}
	}

	opts.Heads = 99
	err := runRecall(context.Background(), opts)
	if exitCode(classify(err)) != exitUsage {
		t.Errorf("heads 99: %v (code %d), want a usage error", err, exitCode(classify(err)))
	}
}

func TestRegress(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "baseline", "ci.json")
	exp := args(tiny, "--methods", "misa,hisa")

	code, _, stderr := cli(t, args(exp, "regress", "--baseline", base, "--update")...)
	if code != 0 {
		t.Fatalf("--update: code %d: %s", code, stderr)
	}
	res, err := eval.ReadResult(base)
	if err != nil {
		t.Fatal(err)
	}
	// The same setting passes.
	code, stdout, stderr := cli(t, args(exp, "regress", "--baseline", base)...)
	if code != 0 {
		t.Errorf("against itself: code %d: %s\n%s", code, stderr, stdout)
	}

	// A baseline from a better setting: the same methods, 0.05 more recall.
	better := filepath.Join(dir, "better.json")
	for _, ss := range [][]eval.Stats{res.Layers, res.Overall} {
		for i := range ss {
			ss[i].Recall.Mean += 0.05
		}
	}
	if err := res.WriteFile(better); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = cli(t, args(exp, "regress", "--baseline", better)...)
	if code != exitFail || !strings.Contains(stderr, "regression") || !strings.Contains(stdout, "FAIL") {
		t.Errorf("better baseline: code %d, want 1; stderr %q\n%s", code, stderr, stdout)
	}
	// JSON diff is parseable and says it failed.
	code, stdout, _ = cli(t, args(exp, "regress", "--baseline", better, "--format", "json")...)
	var d eval.Diff
	if err := json.Unmarshal([]byte(stdout), &d); err != nil || !d.Failed || code != exitFail {
		t.Errorf("json diff: code %d err %v failed %v", code, err, d.Failed)
	}
	// A tolerance above the drop passes.
	if code, _, stderr := cli(t, args(exp, "regress", "--baseline", better, "--tolerance", "0.06")...); code != 0 {
		t.Errorf("tolerance 0.06: code %d: %s", code, stderr)
	}

	// A baseline from another setting (32 routed heads): its methods are
	// missing from a run with 1 routed head, which fails too.
	other := filepath.Join(dir, "h32.json")
	if code, _, stderr := cli(t, args(exp, "regress", "--baseline", other, "--heads", "32", "--update")...); code != 0 {
		t.Fatalf("--update h=32: code %d: %s", code, stderr)
	}
	if code, _, stderr := cli(t, args(exp, "regress", "--baseline", other, "--heads", "1")...); code != exitFail {
		t.Errorf("h=1 against h=32: code %d, want 1: %s", code, stderr)
	}

	// --update over an existing baseline rewrites it and exits 0.
	if code, _, stderr := cli(t, args(exp, "regress", "--baseline", better, "--update")...); code != 0 {
		t.Errorf("--update over a better baseline: code %d: %s", code, stderr)
	}
	if code, _, stderr := cli(t, args(exp, "regress", "--baseline", better)...); code != 0 {
		t.Errorf("after --update: code %d: %s", code, stderr)
	}
}

func TestTraceCommands(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "synth.safetensors")
	code, _, stderr := cli(t, "trace", "gen", "--out", file, "--ctx", "4096", "--queries", "16", "--layers", "0,1",
		"--topk", "256", "--needle-depth", "0.5", "--needle-len", "16", "--qtype", "bf16", "--ktype", "f8")
	if code != 0 {
		t.Fatalf("gen: code %d: %s", code, stderr)
	}
	// An output directory that does not exist is bad input, named.
	missing := filepath.Join(dir, "no", "such", "x.safetensors")
	if code, _, stderr := cli(t, "trace", "gen", "--out", missing, "--ctx", "4096", "--queries", "8", "--layers", "0"); code != 2 ||
		!strings.Contains(stderr, "does not exist") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("gen into a missing directory: code %d, stderr %q", code, stderr)
	}

	code, stdout, stderr := cli(t, "trace", "inspect", file)
	if code != 0 {
		t.Fatalf("inspect: code %d: %s", code, stderr)
	}
	for _, want := range []string{"misabench.trace/v1", "layers.1.k", "F8_E4M3", "BF16", "q_pos", "needle"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = cli(t, "trace", "inspect", "--format", "json", file)
	var items []inspectJSON
	if err := json.Unmarshal([]byte(stdout), &items); err != nil || code != 0 || len(items) != 1 || items[0].Meta.Heads != 64 {
		t.Errorf("inspect json: code %d err %v items %+v", code, err, items)
	}

	code, stdout, stderr = cli(t, "trace", "validate", dir)
	if code != 0 || strings.TrimSpace(stdout) != "ok "+file {
		t.Errorf("validate: code %d stdout %q stderr %q", code, stdout, stderr)
	}

	// recall on the file.
	code, stdout, stderr = cli(t, "recall", "--trace", dir, "--format", "csv", "--out", filepath.Join(dir, "run"))
	if code != 0 {
		t.Fatalf("recall --trace: code %d: %s", code, stderr)
	}
	if _, err := csv.NewReader(strings.NewReader(stdout)).ReadAll(); err != nil {
		t.Errorf("csv: %v", err)
	}
	code, _, stderr = cli(t, "recall", "--trace", file, "--layers", "7", "--out", filepath.Join(dir, "run7"))
	if code != exitUsage || !strings.Contains(stderr, "7") {
		t.Errorf("missing layer: code %d: %s", code, stderr)
	}
	assertNoDir(t, filepath.Join(dir, "run7"))

	// A truncated copy fails validation with exit 2; the good one still passes.
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.safetensors")
	if err := os.WriteFile(bad, b[:len(b)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = cli(t, "trace", "validate", file, bad)
	if code != exitUsage || !strings.Contains(stdout, "ok "+file) || !strings.Contains(stdout, "FAIL "+bad) ||
		!strings.Contains(stderr, "1 of 2") {
		t.Errorf("validate with a bad file: code %d stdout %q stderr %q", code, stdout, stderr)
	}
	if code, _, _ := cli(t, "trace", "inspect", bad); code != exitUsage {
		t.Errorf("inspect of a truncated file: code %d, want 2", code)
	}
	if code, _, _ := cli(t, "trace", "validate", filepath.Join(dir, "run")); code != exitUsage {
		t.Errorf("validate of a directory without traces: code %d, want 2", code)
	}
}

// A trace whose header is fine but whose data hold a NaN fails while the
// layer is read: exit 2, and no output directory.
func TestBadDataMidRun(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "nan.safetensors")
	if code, _, stderr := cli(t, "trace", "gen", "--out", file, "--ctx", "4096", "--queries", "16", "--layers", "0,1", "--topk", "256"); code != 0 {
		t.Fatalf("gen: code %d: %s", code, stderr)
	}
	f, err := trace.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	var k1 trace.TensorInfo
	for _, ti := range f.Tensors() {
		if ti.Name == "layers.1.k" {
			k1 = ti
		}
	}
	f.Close()
	if k1.DType != trace.DTypeF32 {
		t.Fatalf("layers.1.k: %+v, want F32", k1)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	data := 8 + int64(binary.LittleEndian.Uint64(b[:8]))
	binary.LittleEndian.PutUint32(b[data+k1.Begin+4*100:], 0x7FC00000) // a NaN in layer 1
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := cli(t, "recall", "--trace", file, "--out", out, "--format", "csv")
	if code != exitUsage || !strings.Contains(stderr, "layers.1.k") {
		t.Errorf("code %d, want 2; stderr %q", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout not empty: %q", stdout)
	}
	assertNoDir(t, out)
}

func TestVersion(t *testing.T) {
	code, stdout, _ := cli(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "misabench ") || !strings.Contains(stdout, "cuda: no") {
		t.Errorf("version: code %d %q", code, stdout)
	}
}

// trace select prints DSA's sets; on a trace whose rows see fewer keys than
// k every visible key is selected.
func TestTraceSelect(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.safetensors")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"trace", "gen", "--out", path, "--ctx", "600", "--queries", "4", "--layers", "0,2", "--topk", "256"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("trace gen: exit %d: %s", code, stderr.String())
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"trace", "select", path, "--layers", "2"}, &stdout, &stderr); code != 0 {
		t.Fatalf("trace select: exit %d: %s", code, stderr.String())
	}
	var got struct {
		Layers []struct {
			Layer int
			QPos  []int64 `json:"q_pos"`
			Sets  map[string][][]int32
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
	if len(got.Layers) != 1 || got.Layers[0].Layer != 2 {
		t.Fatalf("layers %+v, want layer 2 only", got.Layers)
	}
	l := got.Layers[0]
	for r, set := range l.Sets["dsa"] {
		want := min(int(l.QPos[r])+1, 256)
		if len(set) != want {
			t.Errorf("row %d (p %d): %d tokens, want %d", r, l.QPos[r], len(set), want)
		}
	}
	if code := run(context.Background(), []string{"trace", "select", path, "--layers", "5"}, &stdout, &stderr); code != 2 {
		t.Errorf("missing layer: exit %d, want 2", code)
	}
}

func TestTraceConvertBadInput(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	for _, args := range [][]string{
		{"trace", "convert", "--activations", "a", "--out", filepath.Join(dir, "o")},
		{"trace", "convert", "--checkpoint", dir, "--activations", "a", "--out", filepath.Join(dir, "o")},
		{"trace", "convert", "--checkpoint", dir, "--activations", "a", "--out", filepath.Join(dir, "o"), "--quant", "int4"},
	} {
		stderr.Reset()
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr.String())
		}
		if n := strings.Count(strings.TrimSpace(stderr.String()), "\n"); n != 0 {
			t.Errorf("%v: %d-line error %q", args, n+1, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "o")); !os.IsNotExist(err) {
		t.Error("a failed conversion wrote its output")
	}
}
