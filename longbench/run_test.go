package longbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/misabench/misabench/serving"
	"github.com/misabench/misabench/serving/servingtest"
)

// tinyData is a small data directory: trec (2 records), qasper (2),
// samsum (1), passage_count (1) and qasper_e (1).
const tinyData = "testdata/tiny"

// tinyAnswers are the fake model's answers, by a phrase of the prompt.
// Scored: trec 50 (the first-line cut keeps " City"; "Distance" is wrong),
// qasper (1 + 2/3)/2 = 83.33 ("transformer model" against "transformer"),
// samsum 100, passage_count 100, qasper_e 100 in the 4-8k bucket.
var tinyAnswers = map[string]string{
	"capital of France":       " City\nQuestion: Who?",
	"legs does a spider":      " Distance",
	"Does the model use":      "Yes.",
	"Which architecture":      "a transformer model",
	"Anna: I will bring":      "Anna will bring the cake.",
	"how many unique paragra": "3",
}

func tinyAnswer(req servingtest.Request) string {
	for k, v := range tinyAnswers {
		if strings.Contains(req.Text(), k) {
			return v
		}
	}
	return "unknown"
}

// newFake starts the fake server with the tiny answers.
func newFake(t *testing.T) *servingtest.Server {
	srv := servingtest.New(t, "toy")
	srv.Answer = tinyAnswer
	return srv
}

// testOptions runs the tiny data against srv into a fresh directory.
func testOptions(t *testing.T, srv *servingtest.Server) RunOptions {
	return RunOptions{
		Endpoint: srv.URL + "/v1", Model: "toy", Data: tinyData, Out: filepath.Join(t.TempDir(), "pred"),
		Datasets: []string{"trec", "qasper", "samsum", "passage_count"},
		Retries:  3, Timeout: 5 * time.Second, Backoff: time.Millisecond, BackoffMax: 5 * time.Millisecond,
		Warn: func(s string) { t.Log("warning:", s) },
	}
}

// readLines reads a prediction file strictly: whole lines, each a JSON
// object with exactly pred.py's keys and _id.
func readLines(t *testing.T, path string) []predLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		t.Fatalf("%s is empty or does not end in a newline", path)
	}
	var out []predLine
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var keys map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &keys); err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
		if len(keys) != 5 || keys["pred"] == nil || keys["answers"] == nil || keys["all_classes"] == nil || keys["length"] == nil || keys["_id"] == nil {
			t.Fatalf("%s: line %s does not have the keys pred, answers, all_classes, length, _id", path, line)
		}
		var p predLine
		_ = json.Unmarshal([]byte(line), &p)
		out = append(out, p)
	}
	return out
}

func ids(lines []predLine) []string {
	var s []string
	for _, l := range lines {
		s = append(s, l.ID)
	}
	return s
}

// TestRunRoutes checks what each data set sends where: the chat template
// only where pred.py applies it, max_tokens = dataset2maxlen, samsum's
// stop rule, greedy decoding (the fake refuses anything else).
func TestRunRoutes(t *testing.T) {
	for _, chat := range []bool{false, true} {
		srv := newFake(t)
		o := testOptions(t, srv)
		o.Chat = chat
		res, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		nl := srv.Tokens("\n")
		byPrompt := map[string]servingtest.Request{}
		for _, r := range srv.Requests() {
			byPrompt[r.Text()] = r
		}
		if len(byPrompt) != 6 {
			t.Fatalf("chat=%v: %d distinct prompts, want 6", chat, len(byPrompt))
		}
		for _, name := range o.Datasets {
			d, _ := Lookup(name)
			recs, _ := ReadDataset(tinyData, name, false)
			for _, rec := range recs {
				prompt, _ := BuildPrompt(name, rec)
				r, ok := byPrompt[prompt]
				if !ok {
					t.Errorf("chat=%v %s %s: no request with the official prompt %q", chat, name, rec.ID, prompt)
					continue
				}
				wantPath := "/v1/completions"
				if chat && name != "trec" && name != "samsum" {
					wantPath = "/v1/chat/completions"
				}
				if r.Path != wantPath || r.MaxTokens != d.MaxGen {
					t.Errorf("chat=%v %s: %s with max_tokens %d, want %s with %d", chat, name, r.Path, r.MaxTokens, wantPath, d.MaxGen)
				}
				if r.Path == "/v1/chat/completions" && (len(r.Messages) != 1 || r.Messages[0].Role != "user") {
					t.Errorf("chat=%v %s: messages %+v, want one user message", chat, name, r.Messages)
				}
				wantStop, wantMin := []int(nil), 0
				if name == "samsum" {
					wantStop, wantMin = nl, 1
				}
				if !slices.Equal(r.StopTokenIDs, wantStop) || r.MinTokens != wantMin {
					t.Errorf("chat=%v %s: stop ids %v, min tokens %d; want %v, %d", chat, name, r.StopTokenIDs, r.MinTokens, wantStop, wantMin)
				}
			}
		}
		routes := map[string]string{}
		for _, d := range res.Datasets {
			routes[d.Dataset] = d.Route
			if d.Records != d.Generated || d.Resumed != 0 || d.Truncated != 0 {
				t.Errorf("chat=%v: %+v", chat, d)
			}
		}
		if chat && (routes["qasper"] != "chat" || routes["passage_count"] != "chat" || routes["trec"] != "completion" || routes["samsum"] != "completion") {
			t.Errorf("routes %v", routes)
		}
		// Without MaxLen no prompt is tokenized: the tokenizer is asked
		// only for samsum's "\n" and the special tokens.
		if n, m := srv.Calls("/tokenize"), srv.Calls("/detokenize"); n != 2 || m != 0 {
			t.Errorf("%d tokenize and %d detokenize calls without truncation, want 2 and 0", n, m)
		}
		lines := readLines(t, filepath.Join(o.Out, "trec.jsonl"))
		if !slices.Equal(ids(lines), []string{"trec-1", "trec-2"}) || lines[0].Pred != " City\nQuestion: Who?" ||
			lines[0].Length != 40 || !slices.Equal(lines[0].AllClasses, []string{"City", "Individual", "Distance", "Number"}) ||
			!slices.Equal(lines[1].Answers, []string{"Number"}) {
			t.Errorf("trec lines %+v", lines)
		}
	}
}

// TestRunTruncation checks the middle truncation against a hand-worked
// cut with the fake's word tokenizer.
func TestRunTruncation(t *testing.T) {
	dir := t.TempDir()
	words := make([]string, 200)
	for i := range words {
		words[i] = fmt.Sprintf("w%03d", i)
	}
	long := strings.Join(words, " ")
	lines := []string{
		fmt.Sprintf(`{"input": "Is w199 the last word?", "context": %q, "answers": ["yes"], "length": 210, "all_classes": null, "_id": "long"}`, long),
		`{"input": "Short?", "context": "tiny", "answers": ["no"], "length": 3, "all_classes": null, "_id": "short"}`,
	}
	if err := os.WriteFile(filepath.Join(dir, "multifieldqa_en.jsonl"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, variant := range []string{"vllm", "refuses the empty text", "always BOS"} {
		t.Run(variant, func(t *testing.T) {
			srv := newFake(t)
			switch variant {
			case "refuses the empty text":
				// The second /tokenize call asks for the special tokens
				// with "": the fallback learns them from "\n".
				srv.Fault = func(path string, n int, w http.ResponseWriter, _ *http.Request) bool {
					if path == "/tokenize" && n == 2 {
						w.WriteHeader(http.StatusBadRequest)
						return true
					}
					return false
				}
			case "always BOS":
				srv.AlwaysBOS = true
			}
			checkTruncation(t, srv, dir, long)
		})
	}
}

func checkTruncation(t *testing.T, srv *servingtest.Server, dir, long string) {
	o := testOptions(t, srv)
	o.Data, o.Datasets, o.MaxLen, o.Chat = dir, []string{"multifieldqa_en"}, 41, true
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Datasets[0]; d.Generated != 2 || d.Truncated != 1 {
		t.Errorf("result %+v, want 2 generated, 1 truncated", d)
	}
	var got, short string
	for _, r := range srv.Requests() {
		if strings.Contains(r.Text(), "Is w199") {
			got = r.Text()
		} else {
			short = r.Text()
		}
	}
	// The official prompt is: instruction (7 words) + "\n\n" + context +
	// "\n\nNow, answer ... Question: Is w199 the last word?\nAnswer:".
	// 41 tokens: half = 20. With BOS counted as pred.py counts it, the
	// start keeps BOS + 19 words (BOS itself is dropped when decoding), the
	// end 20 words.
	head := "Read the following text and answer briefly.\n\nw000 w001 w002 w003 w004 w005 w006 w007 w008 w009 w010 w011"
	tail := " text, only give me the answer and do not output any other words.\n\nQuestion: Is w199 the last word?\nAnswer:"
	full, _ := BuildPrompt("multifieldqa_en", Record{Context: &long, Input: ptr("Is w199 the last word?")})
	ids := srv.Tokens(full)
	wantHead, wantTail := srv.Text(ids[:19]), srv.Text(ids[len(ids)-20:])
	if wantHead != head || wantTail != tail {
		t.Fatalf("hand-worked halves are off: %q / %q", wantHead, wantTail)
	}
	if got != wantHead+wantTail {
		t.Errorf("truncated prompt\n%q\nwant\n%q", got, wantHead+wantTail)
	}
	if strings.Contains(got, "<s>") || strings.Contains(got, "w100") || !strings.HasPrefix(got, "Read the following text") {
		t.Errorf("truncated prompt keeps BOS or the middle, or lost the instruction: %q", got)
	}
	if n := len(srv.Tokens(got)); n != 39 {
		t.Errorf("truncated prompt has %d tokens, want 19 + 20", n)
	}
	if want, _ := BuildPrompt("multifieldqa_en", Record{Context: ptr("tiny"), Input: ptr("Short?")}); short != want {
		t.Errorf("the short prompt was not sent whole: %q", short)
	}
}

func ptr(s string) *string { return &s }

// TestRunRetries: two 503s then success; a 400 is not retried and stops
// the run with the record named.
func TestRunRetries(t *testing.T) {
	srv := newFake(t)
	srv.Fault = func(path string, n int, w http.ResponseWriter, _ *http.Request) bool {
		if path == "/v1/completions" && n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	o := testOptions(t, srv)
	o.Datasets = []string{"trec"}
	o.Limit = 1
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatalf("after two 503s: %v", err)
	}
	if n := srv.Calls("/v1/completions"); n != 3 {
		t.Errorf("%d completion calls, want 3 (two 503s, one success)", n)
	}
	if lines := readLines(t, filepath.Join(o.Out, "trec.jsonl")); len(lines) != 1 || lines[0].Pred != " City\nQuestion: Who?" {
		t.Errorf("lines %+v", lines)
	}

	srv = newFake(t)
	srv.Fault = func(path string, n int, w http.ResponseWriter, _ *http.Request) bool {
		if path == "/v1/completions" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"message": "prompt too long"}`))
			return true
		}
		return false
	}
	o = testOptions(t, srv)
	o.Datasets = []string{"trec"}
	o.Limit = 1
	_, err := Run(context.Background(), o)
	if serving.Status(err) != 400 || !strings.Contains(err.Error(), "trec-1") || !strings.Contains(err.Error(), "max length") {
		t.Errorf("a 400: %v", err)
	}
	if n := srv.Calls("/v1/completions"); n != 1 {
		t.Errorf("a 400 was retried: %d calls", n)
	}
	if b, _ := os.ReadFile(filepath.Join(o.Out, "trec.jsonl")); len(b) != 0 {
		t.Errorf("a failed record left a line: %q", b)
	}
}

// TestRunResume: a rerun sends no request for finished records, repairs
// a cut last line, and refuses files it cannot trust.
func TestRunResume(t *testing.T) {
	srv := newFake(t)
	o := testOptions(t, srv)
	o.Limit = 1
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if n := srv.Completions(); n != 4 {
		t.Fatalf("limit 1: %d requests, want 4", n)
	}
	o.Limit = 0
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Completions(); n != 6 {
		t.Errorf("resumed: %d requests in all, want 4 + 2", n)
	}
	for _, d := range res.Datasets {
		if d.Generated+d.Resumed != d.Records || (d.Records == 2 && d.Resumed != 1) {
			t.Errorf("resumed: %+v", d)
		}
	}
	before := srv.Calls("/tokenize") + srv.Calls("/detokenize") + srv.Completions()
	var progress []int
	o.Progress = func(done, total int) { progress = append(progress, done, total) }
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if after := srv.Calls("/tokenize") + srv.Calls("/detokenize") + srv.Completions(); after != before {
		t.Errorf("a finished run sent %d requests", after-before)
	}
	if !slices.Equal(progress, []int{6, 6}) {
		t.Errorf("progress %v, want [6 6]", progress)
	}

	// A run killed mid-write: the last line is cut short.
	path := filepath.Join(o.Out, "qasper.jsonl")
	good, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(good), "\n")
	cut := lines[0] + lines[1][:len(lines[1])/2]
	if err := os.WriteFile(path, []byte(cut), 0o644); err != nil {
		t.Fatal(err)
	}
	var warned []string
	o.Warn = func(s string) { warned = append(warned, s) }
	o.Progress = nil
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if n := srv.Completions(); n != 7 || len(warned) != 1 || !strings.Contains(warned[0], "incomplete last line") {
		t.Errorf("repair: %d requests (want 7), warnings %q", n, warned)
	}
	if again, _ := os.ReadFile(path); string(again) != string(good) {
		t.Errorf("repaired file\n%s\nwant\n%s", again, good)
	}

	// Files that cannot be resumed.
	for name, c := range map[string]struct{ content, want string }{
		"corrupt line": {lines[0][:10] + "\n" + lines[1], "line 1"},
		"no _id":       {`{"pred": "x", "answers": ["yes"], "all_classes": null, "length": 17}` + "\n", `no "_id"`},
		"foreign _id":  {`{"pred": "x", "answers": ["yes"], "all_classes": null, "length": 17, "_id": "zzz"}` + "\n", "zzz is not a record"},
		"twice":        {lines[0] + lines[0] + lines[1], "line 2"},
	} {
		if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Run(context.Background(), o); !errors.Is(err, ErrPredFile) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrPredFile with %q", name, err, c.want)
		}
	}
	os.WriteFile(path, good, 0o644)
	o.MaxLen = 1000
	if _, err := Run(context.Background(), o); !errors.Is(err, ErrPredFile) || !strings.Contains(err.Error(), "max length 0, not 1000") {
		t.Errorf("other settings: %v", err)
	}
}

// TestRunConcurrency: records finish in random order on 8 workers; the
// file ends in the data file's order, byte for byte what one worker
// writes.
func TestRunConcurrency(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, `{"input": "q%d", "context": "Paragraph 1: record %d.", "answers": ["%d"], "length": %d, "all_classes": null, "_id": "id%02d"}`+"\n", i, i, i%7, 100+i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "passage_count.jsonl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	inFlight, most := 0, 0
	srv := servingtest.New(t, "toy")
	srv.Answer = func(r servingtest.Request) string {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		i := strings.Index(r.Text(), "record ")
		return strings.Fields(r.Text()[i+7:])[0]
	}
	run := func(conc int) string {
		o := testOptions(t, srv)
		o.Data, o.Datasets, o.Concurrency = dir, []string{"passage_count"}, conc
		if _, err := Run(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(o.Out, "passage_count.jsonl")
	}
	one, eight := run(1), run(8)
	a, _ := os.ReadFile(one)
	b8, _ := os.ReadFile(eight)
	if string(a) != string(b8) {
		t.Errorf("concurrency 8 wrote\n%s\nconcurrency 1 wrote\n%s", b8, a)
	}
	if most < 2 || most > 8 {
		t.Errorf("at most %d requests in flight, want 2..8", most)
	}
	lines := readLines(t, eight)
	for i, l := range lines {
		if l.ID != fmt.Sprintf("id%02d", i) || l.Pred != fmt.Sprintf("%d.", i) || l.Length != 100+i {
			t.Errorf("line %d: %+v", i+1, l)
		}
	}
	if len(lines) != 40 {
		t.Errorf("%d lines, want 40", len(lines))
	}
}

// TestRunScore runs the tiny data set and scores what Run wrote, as
// `longbench score` does.
func TestRunScore(t *testing.T) {
	srv := newFake(t)
	o := testOptions(t, srv)
	o.Chat, o.Concurrency = true, 3
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	v, err := (&Scorer{}).ScoreDir(o.Out, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"trec": 50, "qasper": 83.33, "samsum": 100, "passage_count": 100}
	if len(v.Scores) != len(want) {
		t.Errorf("scored %d data sets, want %d", len(v.Scores), len(want))
	}
	for name, w := range want {
		if sc := v.Scores[name]; sc == nil || sc.Score == nil || *sc.Score != w {
			t.Errorf("%s: score %+v, want %v", name, sc, w)
		}
	}
	preds, err := ReadPredDir(o.Out, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CheckAgainstData(v, tinyData, false, preds); err != nil {
		t.Errorf("predictions do not match the data: %v", err)
	}

	// LongBench-E: qasper_e.jsonl in, qasper.jsonl out (pred.py's name).
	o = testOptions(t, srv)
	o.E, o.Datasets = true, []string{"qasper_e"}
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Datasets[0].File != filepath.Join(o.Out, "qasper.jsonl") {
		t.Errorf("LongBench-E file %s", res.Datasets[0].File)
	}
	v, err = (&Scorer{}).ScoreDir(o.Out, true)
	if err != nil {
		t.Fatal(err)
	}
	if b := v.Scores["qasper"].Buckets["4-8k"]; b == nil || *b != 100 {
		t.Errorf("LongBench-E buckets %+v", v.Scores["qasper"])
	}
}

func TestRunBadInput(t *testing.T) {
	srv := newFake(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "trec.jsonl"), []byte(`{"input": "q", "context": "c", "answers": ["a"], "length": 1, "_id": "x"}`+"\n\n"+`{"input": "q",`+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "lsht.jsonl"), []byte(`{"context": "c", "answers": ["a"], "length": 1, "_id": "x"}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "lcc.jsonl"), []byte(`{"context": "c", "answers": ["a"], "length": 1}`+"\n"), 0o644)
	for name, c := range map[string]struct {
		edit func(*RunOptions)
		is   error
		want string
	}{
		"no endpoint":      {func(o *RunOptions) { o.Endpoint = "" }, serving.ErrBadURL, "endpoint"},
		"no model":         {func(o *RunOptions) { o.Model = " " }, ErrRunOptions, "no model"},
		"unknown":          {func(o *RunOptions) { o.Datasets = []string{"nq"} }, ErrUnknownDataset, `"nq"`},
		"not an E set":     {func(o *RunOptions) { o.E, o.Datasets = true, []string{"narrativeqa"} }, ErrUnknownDataset, "LongBench-E"},
		"E name, no E":     {func(o *RunOptions) { o.Datasets = []string{"qasper_e"} }, ErrRunOptions, "with E"},
		"max len 1":        {func(o *RunOptions) { o.MaxLen = 1 }, ErrRunOptions, "max length"},
		"missing file":     {func(o *RunOptions) { o.Datasets = []string{"narrativeqa"} }, fs.ErrNotExist, "narrativeqa.jsonl: file does not exist"},
		"bad JSON line":    {func(o *RunOptions) { o.Data, o.Datasets = dir, []string{"trec"} }, ErrData, "trec.jsonl:3"},
		"no input field":   {func(o *RunOptions) { o.Data, o.Datasets = dir, []string{"lsht"} }, ErrData, `"input"`},
		"no _id":           {func(o *RunOptions) { o.Data, o.Datasets = dir, []string{"lcc"} }, ErrData, "no _id"},
		"negative limit":   {func(o *RunOptions) { o.Limit = -1 }, ErrRunOptions, "limit"},
		"negative retries": {func(o *RunOptions) { o.Retries = -1 }, ErrRunOptions, "retries"},
	} {
		o := testOptions(t, srv)
		c.edit(&o)
		_, err := Run(context.Background(), o)
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %v with %q", name, err, c.is, c.want)
		}
	}
	var le *LineError
	o := testOptions(t, srv)
	o.Data, o.Datasets = dir, []string{"trec"}
	if _, err := Run(context.Background(), o); !errors.As(err, &le) || le.Line != 3 {
		t.Errorf("bad line: %v", err)
	}
	if n := srv.Calls("/tokenize") + srv.Completions(); n != 0 {
		t.Errorf("bad input sent %d requests", n)
	}

	// The server does not serve the model.
	o = testOptions(t, srv)
	o.Model = "other"
	if _, err := Run(context.Background(), o); !errors.Is(err, serving.ErrEndpoint) || !strings.Contains(err.Error(), `"other"`) {
		t.Errorf("unknown model: %v", err)
	}
}

// TestRunCancel: a cancelled run stops, and its files hold whole lines.
func TestRunCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := newFake(t)
	var once sync.Once
	srv.Answer = func(r servingtest.Request) string {
		if strings.Contains(r.Text(), "legs does a spider") {
			once.Do(cancel)
			time.Sleep(20 * time.Millisecond)
		}
		return tinyAnswer(r)
	}
	o := testOptions(t, srv)
	_, err := Run(ctx, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	if lines := readLines(t, filepath.Join(o.Out, "trec.jsonl")); !slices.Equal(ids(lines), []string{"trec-1"}) {
		t.Errorf("lines after cancel: %v", ids(lines))
	}
	// Data sets run in §A.2 order: qasper is done, samsum and
	// passage_count (after trec) did not start.
	if lines := readLines(t, filepath.Join(o.Out, "qasper.jsonl")); len(lines) != 2 {
		t.Errorf("qasper lines after cancel: %v", ids(lines))
	}
	for _, name := range []string{"samsum", "passage_count"} {
		if b, _ := os.ReadFile(filepath.Join(o.Out, name+".jsonl")); len(b) != 0 {
			t.Errorf("%s ran after the cancel: %q", name, b)
		}
	}
	// The rerun finishes the job.
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if lines := readLines(t, filepath.Join(o.Out, "trec.jsonl")); !slices.Equal(ids(lines), []string{"trec-1", "trec-2"}) {
		t.Errorf("lines after the rerun: %v", ids(lines))
	}
}
