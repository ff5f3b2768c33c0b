package niah

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// modelTestOptions is a small grid against f: two contexts, depths at the
// start (green), middle (red) and end (green), two samples.
func modelTestOptions(f *modelFake, out string) ModelOptions {
	return ModelOptions{
		Endpoint:    f.srv.URL + "/v1",
		Model:       "toy",
		Contexts:    []int{300, 600},
		Depths:      []float64{0, 0.5, 1},
		Samples:     2,
		Concurrency: 3,
		Timeout:     2 * time.Second,
		Out:         out,
		Seed:        42,
	}
}

// modelWantPattern is the grid the fake's answers make: rows are depths.
var modelWantPattern = []float64{1, 0, 1}

func modelCheckGrid(t *testing.T, g *Grid, o ModelOptions, rows []float64) {
	t.Helper()
	if g.Method != "model:toy" || g.Level != "model" || len(g.Cells) != len(o.Depths) {
		t.Fatalf("grid %s/%s with %d rows", g.Method, g.Level, len(g.Cells))
	}
	for i, row := range g.Cells {
		if len(row) != len(o.Contexts) {
			t.Fatalf("row %d has %d cells", i, len(row))
		}
		for j, c := range row {
			if c.Ctx != o.Contexts[j] || c.Depth != o.Depths[i] || c.N != max(o.Samples, 1) || math.Abs(c.Score-rows[i]) > 1e-12 {
				t.Errorf("cell [%d][%d] = %+v, want ctx %d depth %v score %v", i, j, c, o.Contexts[j], o.Depths[i], rows[i])
			}
		}
	}
}

// modelReadRecords reads a results file back, strictly.
func modelReadRecords(t *testing.T, path string) []modelRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("%s does not end in a newline", path)
	}
	var recs []modelRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		rec, err := modelParseRecord(sc.Bytes())
		if err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		recs = append(recs, rec)
	}
	return recs
}

func TestModelRunGrid(t *testing.T) {
	f := modelNewFake(t, nil)
	out := t.TempDir()
	o := modelTestOptions(f, out)
	var mu sync.Mutex
	var progress [][2]int
	o.Progress = func(done, total int) {
		mu.Lock()
		progress = append(progress, [2]int{done, total})
		mu.Unlock()
	}
	var e modelTestEnv
	g, err := modelRun(context.Background(), o, e.env())
	if err != nil {
		t.Fatal(err)
	}
	modelCheckGrid(t, g, o, modelWantPattern)
	if n := f.count("/v1/completions"); n != 12 {
		t.Errorf("%d completion calls, want 12", n)
	}
	if w := e.warnings(); w != "" {
		t.Errorf("warnings: %s", w)
	}
	if len(progress) != 13 || progress[0] != [2]int{0, 12} || progress[12] != [2]int{12, 12} {
		t.Errorf("progress %v", progress)
	}
	recs := modelReadRecords(t, filepath.Join(out, ModelResultsFile))
	if len(recs) != 12 {
		t.Fatalf("%d records", len(recs))
	}
	modelCheckInsertion(t, f, recs, o.Seed)

	var run map[string]any
	data, err := os.ReadFile(filepath.Join(out, ModelRunFile))
	if err != nil || json.Unmarshal(data, &run) != nil {
		t.Fatalf("run file: %v", err)
	}
	tk := run["tokenizer"].(map[string]any)
	if ids := tk["sentence_end_ids"].([]any); len(ids) != 1 || tk["endpoint"] != f.srv.URL+"/tokenize" {
		t.Errorf("run file tokenizer: %v", tk)
	}
}

// modelCheckInsertion checks every prompt the fake saw against its
// record: the length within ctx (and close to it), the haystack a prefix
// of the filler, the needle after a sentence end, at the right token depth.
func modelCheckInsertion(t *testing.T, f *modelFake, recs []modelRecord, seed uint64) {
	t.Helper()
	filler := modelFiller(seed, 1<<16)
	period := f.tok(".")[0]
	for _, rec := range recs {
		f.mu.Lock()
		prompt, ok := f.prompts[rec.Key]
		f.mu.Unlock()
		if !ok {
			t.Fatalf("no prompt for key %s", rec.Key)
		}
		n := len(f.tok(prompt)) + 1 // BOS
		if n != rec.PromptTokens || n > rec.Ctx || n < rec.Ctx-2 {
			t.Errorf("ctx %d: prompt of %d tokens (recorded %d)", rec.Ctx, n, rec.PromptTokens)
		}
		if !strings.HasPrefix(prompt, modelPreamble) || !strings.HasSuffix(prompt, "\n\n"+modelQuestion) {
			t.Fatalf("prompt layout: %q", prompt)
		}
		body := strings.TrimSuffix(strings.TrimPrefix(prompt, modelPreamble), "\n\n"+modelQuestion)
		needle := " " + modelNeedle(rec.Key)
		at := strings.Index(body, needle)
		if at < 0 {
			t.Fatalf("no needle in %q", body)
		}
		before, after := body[:at], body[at+len(needle):]
		if !strings.HasPrefix(filler, before+after) {
			t.Errorf("haystack is not the filler's start")
		}
		hay := f.tok(before + after)
		if len(hay) != rec.HaystackTokens {
			t.Errorf("haystack of %d tokens, recorded %d", len(hay), rec.HaystackTokens)
		}
		p := len(f.tok(before))
		if p != rec.NeedleToken {
			t.Errorf("needle at token %d, recorded %d", p, rec.NeedleToken)
		}
		if rec.Depth == 1 {
			if p != len(hay) {
				t.Errorf("depth 1: needle at %d of %d", p, len(hay))
			}
			continue
		}
		target := int(float64(len(hay)) * rec.Depth)
		if p > target || (p > 0 && hay[p-1] != period) {
			t.Errorf("depth %v: needle at %d, target %d, after %q", rec.Depth, p, target, f.detok(hay[max(p-1, 0):p]))
		}
		for q := p + 1; q <= target; q++ {
			if hay[q-1] == period {
				t.Errorf("depth %v: needle at %d, but a sentence ends at %d ≤ target %d", rec.Depth, p, q, target)
				break
			}
		}
		if rec.Depth == 0.5 && target-p > 40 {
			t.Errorf("depth 0.5: needle %d tokens before its target", target-p)
		}
	}
}

func TestModelChat(t *testing.T) {
	f := modelNewFake(t, nil)
	o := modelTestOptions(f, t.TempDir())
	o.Chat = true
	var e modelTestEnv
	g, err := modelRun(context.Background(), o, e.env())
	if err != nil {
		t.Fatal(err)
	}
	modelCheckGrid(t, g, o, modelWantPattern)
	if f.count("/v1/chat/completions") != 12 || f.count("/v1/completions") != 0 {
		t.Errorf("%d chat and %d completion calls, want 12 and 0", f.count("/v1/chat/completions"), f.count("/v1/completions"))
	}
	for _, rec := range modelReadRecords(t, filepath.Join(o.Out, ModelResultsFile)) {
		f.mu.Lock()
		user, system := f.prompts[rec.Key], f.system[rec.Key]
		f.mu.Unlock()
		n := len(f.tok(modelFakeChatTemplate(modelChatMessages(strings.TrimSuffix(strings.TrimPrefix(user, modelPreamble), "\n\n"+modelQuestion)))))
		if system != modelSystem || n != rec.PromptTokens || n > rec.Ctx || n < rec.Ctx-2 {
			t.Errorf("chat prompt of %d tokens (recorded %d) for ctx %d, system %q", n, rec.PromptTokens, rec.Ctx, system)
		}
		if !strings.HasPrefix(rec.Answer, "The pass key is") {
			t.Errorf("answer %q", rec.Answer)
		}
	}
}

// TestModelSGLangStyle: tokenizer only under /v1, detokenize answering
// {"text"}, no chat counting, BOS added even when asked not to, and a lone
// "." that is not the period inside text.
func TestModelSGLangStyle(t *testing.T) {
	f := modelNewFake(t, func(f *modelFake) {
		f.sglang, f.v1Only, f.alwaysBOS, f.spDot = true, true, true, true
	})
	o := modelTestOptions(f, t.TempDir())
	o.Endpoint = f.srv.URL // no /v1
	o.Chat = true
	o.Contexts = []int{400}
	var e modelTestEnv
	g, err := modelRun(context.Background(), o, e.env())
	if err != nil {
		t.Fatal(err)
	}
	modelCheckGrid(t, g, o, modelWantPattern)
	if !strings.Contains(e.warnings(), "does not take chat messages") {
		t.Errorf("no warning about chat counting: %q", e.warnings())
	}
	if f.count("/tokenize") != 1 { // the probe, answered 404
		t.Errorf("/tokenize called %d times", f.count("/tokenize"))
	}
	for key, p := range f.prompts {
		if strings.Contains(p, "<s>") || strings.Contains(p, "▁") {
			t.Errorf("key %s: special tokens leaked into the prompt", key)
		}
	}
	for _, rec := range modelReadRecords(t, filepath.Join(o.Out, ModelResultsFile)) {
		if rec.Depth == 0.5 && (rec.NeedleToken == 0 || rec.NeedleToken > rec.HaystackTokens/2) {
			t.Errorf("depth 0.5 needle at %d of %d: the in-text period was not found", rec.NeedleToken, rec.HaystackTokens)
		}
		if rec.PromptTokens > rec.Ctx {
			t.Errorf("estimated prompt %d over ctx %d", rec.PromptTokens, rec.Ctx)
		}
	}
}

// modelFaultStatus answers the first len(statuses) requests to path with
// those statuses.
func modelFaultStatus(path string, statuses ...int) func(string, int, http.ResponseWriter, *http.Request) bool {
	return func(p string, n int, w http.ResponseWriter, r *http.Request) bool {
		if p != path || n > len(statuses) {
			return false
		}
		if statuses[n-1] == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "2")
		}
		modelFakeJSON(w, statuses[n-1], map[string]any{"error": map[string]any{"message": "injected"}})
		return true
	}
}

func modelSmallOptions(f *modelFake) ModelOptions {
	o := modelTestOptions(f, "")
	o.Contexts, o.Depths, o.Samples, o.Concurrency = []int{300}, []float64{0}, 1, 1
	return o
}

func TestModelRetries(t *testing.T) {
	f := modelNewFake(t, nil)
	faults := []func(string, int, http.ResponseWriter, *http.Request) bool{
		modelFaultStatus("/v1/completions", 500, 429, 503),
		modelFaultStatus("/detokenize", 502),
		modelFaultStatus("/tokenize", 429),
	}
	f.fault = func(p string, n int, w http.ResponseWriter, r *http.Request) bool {
		for _, fl := range faults {
			if fl(p, n, w, r) {
				return true
			}
		}
		return false
	}
	var e modelTestEnv
	start := time.Now()
	g, err := modelRun(context.Background(), modelSmallOptions(f), e.env())
	if err != nil {
		t.Fatal(err)
	}
	if g.Cells[0][0].Score != 1 || f.count("/v1/completions") != 4 {
		t.Errorf("score %v after %d completion calls", g.Cells[0][0].Score, f.count("/v1/completions"))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v: Retry-After not capped by the backoff limit", d)
	}

	// Retries exhausted: the server's error, after 1 + 2 attempts; not an
	// endpoint or options problem.
	f2 := modelNewFake(t, func(f *modelFake) { f.fault = modelFaultStatus("/v1/completions", 500, 500, 500, 500) })
	o := modelSmallOptions(f2)
	o.Retries = 2
	_, err = modelRun(context.Background(), o, e.env())
	if err == nil || modelStatus(err) != 500 || errors.Is(err, ErrModelEndpoint) || errors.Is(err, ErrModelOptions) ||
		!strings.Contains(err.Error(), "injected") || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("exhausted retries: %v", err)
	}
	if n := f2.count("/v1/completions"); n != 3 {
		t.Errorf("%d completion calls, want 3", n)
	}

	// No retries.
	f3 := modelNewFake(t, func(f *modelFake) { f.fault = modelFaultStatus("/v1/completions", 503) })
	o = modelSmallOptions(f3)
	o.Retries = -1
	if _, err = modelRun(context.Background(), o, e.env()); modelStatus(err) != 503 || f3.count("/v1/completions") != 1 {
		t.Errorf("no retries: %v after %d calls", err, f3.count("/v1/completions"))
	}
}

// modelFaultHang makes the first n requests to path hang until the client
// gives up.
func modelFaultHang(path string, n int) func(string, int, http.ResponseWriter, *http.Request) bool {
	return func(p string, k int, w http.ResponseWriter, r *http.Request) bool {
		if p != path || k > n {
			return false
		}
		io.Copy(io.Discard, r.Body) // the server notices a closed connection only once the body is read
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return true
	}
}

func TestModelTimeout(t *testing.T) {
	f := modelNewFake(t, func(f *modelFake) { f.fault = modelFaultHang("/v1/completions", 1) })
	o := modelSmallOptions(f)
	o.Timeout = 150 * time.Millisecond
	var e modelTestEnv
	start := time.Now()
	g, err := modelRun(context.Background(), o, e.env())
	if err != nil {
		t.Fatal(err)
	}
	if g.Cells[0][0].Score != 1 || f.count("/v1/completions") != 2 {
		t.Errorf("score %v after %d calls", g.Cells[0][0].Score, f.count("/v1/completions"))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}

	// Always hanging: a timeout error, bounded.
	f2 := modelNewFake(t, func(f *modelFake) { f.fault = modelFaultHang("/v1/completions", 100) })
	o = modelSmallOptions(f2)
	o.Timeout, o.Retries = 100*time.Millisecond, 1
	_, err = modelRun(context.Background(), o, e.env())
	if err == nil || !strings.Contains(err.Error(), "no reply within 100ms") || f2.count("/v1/completions") != 2 {
		t.Errorf("hanging server: %v after %d calls", err, f2.count("/v1/completions"))
	}
}

func TestModelCancel(t *testing.T) {
	f := modelNewFake(t, func(f *modelFake) { f.fault = modelFaultHang("/v1/completions", 100) })
	o := modelTestOptions(f, t.TempDir())
	o.Timeout = 10 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	var e modelTestEnv
	start := time.Now()
	_, err := modelRun(ctx, o, e.env())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %v", d)
	}
}

func TestModelBadReplies(t *testing.T) {
	for _, c := range []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"malformed", "/v1/completions", `{"choices": [{"text": "1234`, 200, "not valid JSON"},
		{"html", "/v1/completions", `<html>hello</html>`, 200, "not valid JSON"},
		{"not openai", "/v1/completions", `{"result": "12345"}`, 200, "not an OpenAI completion reply"},
		{"wrong shape", "/v1/completions", `{"choices": "none"}`, 200, "unexpected JSON"},
		{"no route", "/v1/completions", `{"detail":"Not Found"}`, 404, "OpenAI-compatible"},
		{"tokenize shape", "/tokenize", `{"ids": [1, 2]}`, 200, `no "tokens" list`},
		{"detokenize shape", "/detokenize", `{"string": "x"}`, 200, `no "prompt" or "text"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := modelNewFake(t, func(f *modelFake) {
				f.fault = func(p string, n int, w http.ResponseWriter, r *http.Request) bool {
					if p != c.path {
						return false
					}
					w.WriteHeader(c.status)
					w.Write([]byte(c.body))
					return true
				}
			})
			var e modelTestEnv
			_, err := modelRun(context.Background(), modelSmallOptions(f), e.env())
			if !errors.Is(err, ErrModelEndpoint) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want ErrModelEndpoint with %q", err, c.want)
			}
			if n := f.count(c.path); n != 1 {
				t.Errorf("%s called %d times: a bad reply must not be retried", c.path, n)
			}
		})
	}
}

func TestModelEndpointErrors(t *testing.T) {
	var e modelTestEnv
	// No tokenizer.
	f := modelNewFake(t, func(f *modelFake) { f.noTokenizer = true })
	_, err := modelRun(context.Background(), modelSmallOptions(f), e.env())
	if !errors.Is(err, ErrModelEndpoint) || !strings.Contains(err.Error(), "/tokenize") || f.completions() != 0 {
		t.Errorf("no tokenizer: %v", err)
	}
	// Unknown model: the server's 404 at the first call.
	f = modelNewFake(t, nil)
	o := modelSmallOptions(f)
	o.Model = "other"
	if _, err = modelRun(context.Background(), o, e.env()); !errors.Is(err, ErrModelEndpoint) || !strings.Contains(err.Error(), "does not serve model \"other\"") {
		t.Errorf("unknown model: %v", err)
	}
	// Nobody listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	o.Endpoint, o.Retries = "http://"+addr, 2
	start := time.Now()
	if _, err = modelRun(context.Background(), o, e.env()); !errors.Is(err, ErrModelEndpoint) || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("unreachable: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("unreachable took %v", d)
	}
}

func TestModelOptionErrors(t *testing.T) {
	f := modelNewFake(t, nil)
	for name, edit := range map[string]func(o *ModelOptions){
		"bad url":        func(o *ModelOptions) { o.Endpoint = "localhost:8000" },
		"no model":       func(o *ModelOptions) { o.Model = " " },
		"no contexts":    func(o *ModelOptions) { o.Contexts = nil },
		"zero context":   func(o *ModelOptions) { o.Contexts = []int{0} },
		"dup context":    func(o *ModelOptions) { o.Contexts = []int{300, 300} },
		"no depths":      func(o *ModelOptions) { o.Depths = nil },
		"depth > 1":      func(o *ModelOptions) { o.Depths = []float64{1.5} },
		"depth NaN":      func(o *ModelOptions) { o.Depths = []float64{math.NaN()} },
		"dup depth":      func(o *ModelOptions) { o.Depths = []float64{0.5, 0.5} },
		"scorer":         func(o *ModelOptions) { o.Scorer = "judge" },
		"samples":        func(o *ModelOptions) { o.Samples = -1 },
		"concurrency":    func(o *ModelOptions) { o.Concurrency = -2 },
		"timeout":        func(o *ModelOptions) { o.Timeout = -time.Second },
		"max tokens":     func(o *ModelOptions) { o.MaxTokens = -1 },
		"tiny context":   func(o *ModelOptions) { o.Contexts = []int{30} },
		"no haystack":    func(o *ModelOptions) { o.Haystack = filepath.Join(t.TempDir(), "none") },
		"empty haystack": func(o *ModelOptions) { o.Haystack = t.TempDir() },
	} {
		o := modelSmallOptions(f)
		edit(&o)
		if _, err := RunModel(context.Background(), o); !errors.Is(err, ErrModelOptions) {
			t.Errorf("%s: %v, want ErrModelOptions", name, err)
		}
	}
	if f.completions() != 0 {
		t.Errorf("%d completion calls with bad options", f.completions())
	}
}

func TestModelResume(t *testing.T) {
	out := t.TempDir()
	path := filepath.Join(out, ModelResultsFile)
	f1 := modelNewFake(t, nil)
	o := modelTestOptions(f1, out)
	var e modelTestEnv
	g1, err := modelRun(context.Background(), o, e.env())
	if err != nil {
		t.Fatal(err)
	}

	// Everything done: the server is not contacted at all.
	f2 := modelNewFake(t, nil)
	o.Endpoint = f2.srv.URL
	g2, err := modelRun(context.Background(), o, e.env())
	if err != nil {
		t.Fatal(err)
	}
	modelCheckGrid(t, g2, o, modelWantPattern)
	if f2.total() != 0 {
		t.Errorf("a finished run made %d calls", f2.total())
	}
	if !modelSameScores(g1, g2) {
		t.Error("resumed grid differs")
	}

	// Rescoring a finished run with another scorer needs no server.
	o.Scorer = "rouge1"
	g3, err := modelRun(context.Background(), o, e.env())
	if err != nil || f2.total() != 0 {
		t.Fatalf("rescoring: %v, %d calls", err, f2.total())
	}
	// "The pass key is" + " K. Remember it." against the needle sentence:
	// answer " K. Remember it." = k., remember, it. → overlap 3 of 3
	// and of 12: F = 2·1·(1/4)/(5/4) = 0.4.
	if s := g3.Cells[0][0].Score; math.Abs(s-0.4) > 1e-12 {
		t.Errorf("rouge1 of a green cell %v, want 0.4", s)
	}
	o.Scorer = ""

	// A run killed mid-write: half a last line. It is dropped with a
	// warning and its sample runs again; the file is whole afterwards.
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, data[:len(data)-30], 0o644); err != nil {
		t.Fatal(err)
	}
	g4, err := modelRun(context.Background(), o, e.env())
	if err != nil {
		t.Fatal(err)
	}
	if f2.completions() != 1 {
		t.Errorf("%d completion calls after a cut last line, want 1", f2.completions())
	}
	if !strings.Contains(e.warnings(), "last line") {
		t.Errorf("no warning: %q", e.warnings())
	}
	if !modelSameScores(g1, g4) || len(modelReadRecords(t, path)) != 12 {
		t.Error("the file is not whole after the rerun")
	}

	// A last line without its newline is kept, and the next line goes on
	// a line of its own.
	data, _ = os.ReadFile(path)
	os.WriteFile(path, bytes.TrimSuffix(data, []byte("\n")), 0o644)
	o.Samples = 3
	if _, err := modelRun(context.Background(), o, e.env()); err != nil {
		t.Fatal(err)
	}
	if recs := modelReadRecords(t, path); len(recs) != 18 {
		t.Errorf("%d records after adding a sample, want 18", len(recs))
	}
	o.Samples = 2

	// A bad line that is not the last is an error.
	data, _ = os.ReadFile(path)
	lines := strings.SplitAfter(string(data), "\n")
	bad := strings.Join(lines[:2], "") + "{\"ctx\": 300, oops\n" + strings.Join(lines[2:], "")
	os.WriteFile(path, []byte(bad), 0o644)
	if _, err := modelRun(context.Background(), o, e.env()); !errors.Is(err, ErrModelResults) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("corrupt line 3: %v", err)
	}
	os.WriteFile(path, data, 0o644)

	// Another seed, model or chat mode, or haystack, in the same file.
	for name, edit := range map[string]func(o *ModelOptions){
		"seed": func(o *ModelOptions) { o.Seed = 7 },
		"chat": func(o *ModelOptions) { o.Chat = true },
		"haystack": func(o *ModelOptions) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "a.txt"), []byte(strings.Repeat("Some other text here. ", 50)), 0o644)
			o.Haystack = dir
			o.Contexts = append(o.Contexts, 200) // something to do
		},
	} {
		o2 := o
		edit(&o2)
		if _, err := modelRun(context.Background(), o2, e.env()); !errors.Is(err, ErrModelResults) {
			t.Errorf("%s changed: %v, want ErrModelResults", name, err)
		}
	}
	lines = strings.SplitAfter(string(data), "\n")
	os.WriteFile(path, []byte(strings.Join(lines[:len(lines)-2], "")+strings.Replace(lines[len(lines)-2], `"model":"toy"`, `"model":"big"`, 1)), 0o644)
	if _, err := modelRun(context.Background(), o, e.env()); !errors.Is(err, ErrModelResults) || !strings.Contains(err.Error(), `"big"`) {
		t.Errorf("another model's line: %v", err)
	}
}

func modelSameScores(a, b *Grid) bool {
	for i := range a.Cells {
		for j := range a.Cells[i] {
			x, y := a.Cells[i][j], b.Cells[i][j]
			if x.Ctx != y.Ctx || x.Depth != y.Depth || x.Score != y.Score || x.N != y.N {
				return false
			}
		}
	}
	return true
}

func TestModelHaystackDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.txt"), []byte("Bravo rides the bus to work. "), 0o644)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("Alpha walks along the shore. Alpha rests. "), 0o644)
	os.WriteFile(filepath.Join(dir, "z.json"), []byte("{}"), 0o644)
	f := modelNewFake(t, nil)
	o := modelSmallOptions(f)
	o.Haystack = dir
	o.Depths = []float64{0, 0.5}
	var e modelTestEnv
	g, err := modelRun(context.Background(), o, e.env())
	if err != nil {
		t.Fatal(err)
	}
	modelCheckGrid(t, g, o, []float64{1, 0})
	want := strings.Repeat("Alpha walks along the shore. Alpha rests. Bravo rides the bus to work. ", 30)
	for key, p := range f.prompts {
		body := strings.TrimSuffix(strings.TrimPrefix(p, modelPreamble), "\n\n"+modelQuestion)
		body = strings.Replace(body, " "+modelNeedle(key), "", 1)
		if !strings.HasPrefix(want, body) || len(body) < 500 {
			t.Errorf("haystack is not the files in name order, repeated: %q", body[:min(len(body), 80)])
		}
	}

	// A haystack without sentence ends cannot place needles.
	nodot := t.TempDir()
	os.WriteFile(filepath.Join(nodot, "a.txt"), []byte(strings.Repeat("words without an end ", 100)), 0o644)
	o.Haystack = nodot
	if _, err := modelRun(context.Background(), o, e.env()); !errors.Is(err, ErrModelOptions) || !strings.Contains(err.Error(), "sentence-end") {
		t.Errorf("no sentence ends: %v", err)
	}
	// With long sentences it warns.
	long := t.TempDir()
	os.WriteFile(filepath.Join(long, "a.txt"), []byte(strings.Repeat("word ", 2500)+"end. "), 0o644)
	o.Haystack, o.Contexts = long, []int{3000}
	if _, err := modelRun(context.Background(), o, e.env()); err != nil || !strings.Contains(e.warnings(), "without a sentence end") {
		t.Errorf("long sentences: %v, warnings %q", err, e.warnings())
	}
}

// TestRunModelPublic goes through RunModel itself, defaults and all.
func TestRunModelPublic(t *testing.T) {
	f := modelNewFake(t, nil)
	g, err := RunModel(context.Background(), ModelOptions{
		Endpoint: f.srv.URL, Model: "toy", Contexts: []int{256}, Depths: []float64{0, 0.5, 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	modelCheckGrid(t, g, ModelOptions{Contexts: []int{256}, Depths: []float64{0, 0.5, 1}, Samples: 1}, modelWantPattern)
}
