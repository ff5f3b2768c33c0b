package niah

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// modelFake is an in-process OpenAI-compatible server with a toy
// tokenizer: GPT-2-like pieces (a word with its leading space, one
// punctuation mark with its leading space, or one white-space character),
// so that "." is a token of its own and detokenizing is concatenation. Id
// 0 is BOS, added when add_special_tokens is true or absent.
//
// It "answers" with the pass key only when the needle starts in the first
// quarter or the last quarter of the prompt (by characters), so that a grid
// has green and red cells, deterministically.
type modelFake struct {
	srv *httptest.Server

	// Behaviour, set before the first request.
	sglang      bool // detokenize answers {"text"}; /tokenize takes no chat messages
	v1Only      bool // tokenizer endpoints only under /v1
	noTokenizer bool // no tokenizer endpoints at all
	alwaysBOS   bool // ignores add_special_tokens=false
	spDot       bool // a lone "." tokenizes as "▁." (a SentencePiece habit)
	// fault, if not nil, may answer a request itself (returning true);
	// n counts the requests to that path, from 1.
	fault func(path string, n int, w http.ResponseWriter, r *http.Request) bool

	mu      sync.Mutex
	vocab   map[string]int
	words   []string
	calls   map[string]int
	prompts map[string]string // completion prompt (or chat user text) by the pass key in it
	system  map[string]string // chat system message by pass key
}

var (
	modelFakePiece  = regexp.MustCompile(` ?[A-Za-z0-9]+| ?[^\sA-Za-z0-9]|\s`)
	modelFakeNeedle = regexp.MustCompile(`The pass key is ([0-9]+)\. Remember it\.`)
)

func modelNewFake(t *testing.T, setup func(f *modelFake)) *modelFake {
	t.Helper()
	f := &modelFake{
		vocab:   map[string]int{"<s>": 0},
		words:   []string{"<s>"},
		calls:   map[string]int{},
		prompts: map[string]string{},
		system:  map[string]string{},
	}
	if setup != nil {
		setup(f)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *modelFake) id(w string) int {
	if id, ok := f.vocab[w]; ok {
		return id
	}
	f.vocab[w] = len(f.words)
	f.words = append(f.words, w)
	return f.vocab[w]
}

// tok is the toy tokenizer, without BOS.
func (f *modelFake) tok(s string) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.spDot && s == "." {
		return []int{f.id("▁.")}
	}
	var ids []int
	for _, p := range modelFakePiece.FindAllString(s, -1) {
		ids = append(ids, f.id(p))
	}
	return ids
}

func (f *modelFake) detok(ids []int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(f.words[id])
	}
	return b.String()
}

// chatTemplate is the fake's chat template.
func modelFakeChatTemplate(msgs []modelMessage) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString("<|" + m.Role + "|>\n" + m.Content + "\n")
	}
	return b.String() + "<|assistant|>\n"
}

func (f *modelFake) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func (f *modelFake) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

func (f *modelFake) completions() int {
	return f.count("/v1/completions") + f.count("/v1/chat/completions")
}

func modelFakeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *modelFake) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls[r.URL.Path]++
	n := f.calls[r.URL.Path]
	f.mu.Unlock()
	if f.fault != nil && f.fault(r.URL.Path, n, w, r) {
		return
	}
	var req struct {
		Prompt           *string        `json:"prompt"`
		Messages         []modelMessage `json:"messages"`
		Tokens           []int          `json:"tokens"`
		AddSpecialTokens *bool          `json:"add_special_tokens"`
		Model            string         `json:"model"`
		MaxTokens        int            `json:"max_tokens"`
		Temperature      *float64       `json:"temperature"`
	}
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&req) != nil {
		modelFakeJSON(w, http.StatusBadRequest, map[string]any{"message": "bad request"})
		return
	}
	if req.Model != "toy" {
		modelFakeJSON(w, http.StatusNotFound, map[string]any{"message": "The model `" + req.Model + "` does not exist."})
		return
	}
	path := r.URL.Path
	tokPath := !f.noTokenizer && (strings.HasPrefix(path, "/v1/") || !f.v1Only)
	switch {
	case tokPath && (path == "/tokenize" || path == "/v1/tokenize"):
		var ids []int
		switch {
		case req.Messages != nil && f.sglang:
			modelFakeJSON(w, http.StatusBadRequest, map[string]any{"message": "Field required: prompt"})
			return
		case req.Messages != nil:
			ids = f.tok(modelFakeChatTemplate(req.Messages))
		case req.Prompt != nil:
			ids = f.tok(*req.Prompt)
			if req.AddSpecialTokens == nil || *req.AddSpecialTokens || f.alwaysBOS {
				ids = append([]int{0}, ids...)
			}
		default:
			modelFakeJSON(w, http.StatusBadRequest, map[string]any{"message": "no prompt"})
			return
		}
		if ids == nil {
			ids = []int{}
		}
		modelFakeJSON(w, http.StatusOK, map[string]any{"tokens": ids, "count": len(ids), "max_model_len": 1 << 20})
	case tokPath && (path == "/detokenize" || path == "/v1/detokenize"):
		s := f.detok(req.Tokens)
		if f.sglang {
			modelFakeJSON(w, http.StatusOK, map[string]any{"text": s})
		} else {
			modelFakeJSON(w, http.StatusOK, map[string]any{"prompt": s})
		}
	case path == "/v1/completions" && req.Prompt != nil:
		if req.Temperature == nil || *req.Temperature != 0 || req.MaxTokens <= 0 {
			modelFakeJSON(w, http.StatusBadRequest, map[string]any{"message": "not greedy"})
			return
		}
		ans := f.answer(*req.Prompt, "")
		modelFakeJSON(w, http.StatusOK, map[string]any{"object": "text_completion",
			"choices": []map[string]any{{"index": 0, "text": ans, "finish_reason": "stop"}}})
	case path == "/v1/chat/completions" && len(req.Messages) > 0:
		user, system := "", ""
		for _, m := range req.Messages {
			switch m.Role {
			case "user":
				user = m.Content
			case "system":
				system = m.Content
			}
		}
		ans := f.answer(user, system)
		modelFakeJSON(w, http.StatusOK, map[string]any{"object": "chat.completion",
			"choices": []map[string]any{{"index": 0, "message": map[string]any{"role": "assistant", "content": "The pass key is" + ans}}}})
	default:
		modelFakeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not Found"})
	}
}

// answer finds the needle and answers with its key only near either end.
func (f *modelFake) answer(prompt, system string) string {
	m := modelFakeNeedle.FindStringSubmatchIndex(prompt)
	if m == nil {
		return " unknown."
	}
	key := prompt[m[2]:m[3]]
	f.mu.Lock()
	f.prompts[key] = prompt
	f.system[key] = system
	f.mu.Unlock()
	if pos := float64(m[0]) / float64(len(prompt)); pos <= 0.25 || pos >= 0.75 {
		return " " + key + ". Remember it."
	}
	return " not something I can recall."
}

// modelTestEnv is a fast environment that collects warnings.
type modelTestEnv struct {
	mu    sync.Mutex
	warns []string
}

func (e *modelTestEnv) env() modelEnv {
	return modelEnv{
		warn: func(s string) {
			e.mu.Lock()
			e.warns = append(e.warns, s)
			e.mu.Unlock()
		},
		backoff:    time.Millisecond,
		backoffMax: 5 * time.Millisecond,
	}
}

func (e *modelTestEnv) warnings() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.warns, "\n")
}

func TestModelRoot(t *testing.T) {
	for in, want := range map[string]string{
		"http://localhost:8000":          "http://localhost:8000",
		"http://localhost:8000/":         "http://localhost:8000",
		"http://localhost:8000/v1":       "http://localhost:8000",
		"http://localhost:8000/v1/":      "http://localhost:8000",
		" https://h.example/proxy/v1 ":   "https://h.example/proxy",
		"http://127.0.0.1:30000?x=1#top": "http://127.0.0.1:30000",
	} {
		got, err := modelRoot(in)
		if err != nil || got != want {
			t.Errorf("modelRoot(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "localhost:8000", "ftp://h/", "http://", "::"} {
		if _, err := modelRoot(bad); !errors.Is(err, ErrModelOptions) {
			t.Errorf("modelRoot(%q): %v, want ErrModelOptions", bad, err)
		}
	}
}

func TestModelServerMessage(t *testing.T) {
	for body, want := range map[string]string{
		`{"error":{"message":"too long","type":"BadRequestError"}}`: "too long",
		`{"object":"error","message":"no such model","code":404}`:   "no such model",
		`{"detail":"Not Found"}`:                                    "Not Found",
		`{"error":"overloaded"}`:                                    "overloaded",
		"<html>bad gateway</html>\n":                                "<html>bad gateway</html>",
	} {
		if got := modelServerMessage([]byte(body)); got != want {
			t.Errorf("modelServerMessage(%s) = %q, want %q", body, got, want)
		}
	}
}

// TestModelClientRetry checks the retry loop on its own: which statuses are
// retried, how many times, and that a 4xx is not.
func TestModelClientRetry(t *testing.T) {
	var mu sync.Mutex
	seq := []int{500, 429, 503, 200}
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		st := seq[min(calls, len(seq)-1)]
		calls++
		mu.Unlock()
		if st == 429 {
			w.Header().Set("Retry-After", "1") // capped by backoffMax
		}
		modelFakeJSON(w, st, map[string]any{"ok": st == 200, "message": "status"})
	}))
	defer srv.Close()
	get := func() int { mu.Lock(); defer mu.Unlock(); return calls }
	set := func(s []int) { mu.Lock(); defer mu.Unlock(); calls, seq = 0, s }
	c := &modelClient{root: srv.URL, model: "toy", hc: srv.Client(), retries: 3, timeout: time.Second,
		backoff: time.Millisecond, backoffMax: 5 * time.Millisecond}
	var out struct{ OK bool }
	start := time.Now()
	if err := c.post(context.Background(), srv.URL+"/x", map[string]int{}, &out); err != nil || !out.OK {
		t.Fatalf("post: %v, %+v", err, out)
	}
	if n := get(); n != 4 {
		t.Errorf("%d calls, want 4", n)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Retry-After was not capped: took %v", d)
	}

	set([]int{500})
	c.retries = 2
	err := c.post(context.Background(), srv.URL+"/x", map[string]int{}, &out)
	if n := get(); modelStatus(err) != 500 || !strings.Contains(err.Error(), "after 3 attempts") || n != 3 {
		t.Errorf("exhausted retries: %v after %d calls", err, n)
	}

	set([]int{400})
	err = c.post(context.Background(), srv.URL+"/x", map[string]int{}, &out)
	if n := get(); modelStatus(err) != 400 || n != 1 || !strings.Contains(err.Error(), "status") {
		t.Errorf("a 400 is not retried: %v after %d calls", err, n)
	}
}
