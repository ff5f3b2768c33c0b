package serving

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func TestRoot(t *testing.T) {
	for in, want := range map[string]string{
		"http://localhost:8000":          "http://localhost:8000",
		"http://localhost:8000/":         "http://localhost:8000",
		"http://localhost:8000/v1":       "http://localhost:8000",
		"http://localhost:8000/v1/":      "http://localhost:8000",
		" https://h.example/proxy/v1 ":   "https://h.example/proxy",
		"http://127.0.0.1:30000?x=1#top": "http://127.0.0.1:30000",
	} {
		got, err := Root(in)
		if err != nil || got != want {
			t.Errorf("Root(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "localhost:8000", "ftp://h/", "http://", "::"} {
		if _, err := Root(bad); !errors.Is(err, ErrBadURL) {
			t.Errorf("Root(%q): %v, want ErrBadURL", bad, err)
		}
		if _, err := New(bad, "m", Options{}); !errors.Is(err, ErrBadURL) {
			t.Errorf("New(%q): %v, want ErrBadURL", bad, err)
		}
	}
}

func TestServerMessage(t *testing.T) {
	for body, want := range map[string]string{
		`{"error":{"message":"too long","type":"BadRequestError"}}`: "too long",
		`{"object":"error","message":"no such model","code":404}`:   "no such model",
		`{"detail":"Not Found"}`:                                    "Not Found",
		`{"error":"overloaded"}`:                                    "overloaded",
		"<html>bad gateway</html>\n":                                "<html>bad gateway</html>",
	} {
		if got := serverMessage([]byte(body)); got != want {
			t.Errorf("serverMessage(%s) = %q, want %q", body, got, want)
		}
	}
}

// TestRetry checks the retry loop on its own: which statuses are retried,
// how many times, and that a 4xx is not.
func TestRetry(t *testing.T) {
	var mu sync.Mutex
	seq := []int{500, 429, 503, 200}
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		st := seq[min(calls, len(seq)-1)]
		calls++
		mu.Unlock()
		if st == 429 {
			w.Header().Set("Retry-After", "1") // capped by BackoffMax
		}
		writeJSON(w, st, map[string]any{"ok": st == 200, "message": "status"})
	}))
	defer srv.Close()
	get := func() int { mu.Lock(); defer mu.Unlock(); return calls }
	set := func(s []int) { mu.Lock(); defer mu.Unlock(); calls, seq = 0, s }
	c, err := New(srv.URL, "toy", Options{HTTPClient: srv.Client(), Retries: 3, Timeout: time.Second,
		Backoff: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
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
	err = c.post(context.Background(), srv.URL+"/x", map[string]int{}, &out)
	if n := get(); Status(err) != 500 || !strings.Contains(err.Error(), "after 3 attempts") || n != 3 {
		t.Errorf("exhausted retries: %v after %d calls", err, n)
	}

	set([]int{400})
	err = c.post(context.Background(), srv.URL+"/x", map[string]int{}, &out)
	if n := get(); Status(err) != 400 || n != 1 || !strings.Contains(err.Error(), "status") {
		t.Errorf("a 400 is not retried: %v after %d calls", err, n)
	}
}

// TestRequests checks the request bodies of the four endpoints and the
// fallback to /v1/tokenize.
func TestRequests(t *testing.T) {
	var mu sync.Mutex
	bodies := map[string]map[string]any{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		_ = json.NewDecoder(r.Body).Decode(&in)
		mu.Lock()
		bodies[r.URL.Path] = in
		mu.Unlock()
		switch r.URL.Path {
		case "/v1/tokenize":
			writeJSON(w, 200, map[string]any{"tokens": []int{7, 8}})
		case "/v1/detokenize":
			writeJSON(w, 200, map[string]any{"text": "seven eight"}) // SGLang's key
		case "/v1/completions":
			writeJSON(w, 200, map[string]any{"choices": []map[string]any{{"text": " done"}}})
		case "/v1/chat/completions":
			writeJSON(w, 200, map[string]any{"choices": []map[string]any{{"message": map[string]any{"content": "hi"}}}})
		default:
			writeJSON(w, 404, map[string]any{"detail": "Not Found"})
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/v1/", "toy", Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ids, err := c.Tokenize(ctx, "seven eight", true)
	if err != nil || len(ids) != 2 || c.TokenizerBase() != srv.URL+"/v1" {
		t.Fatalf("Tokenize = %v, %v (base %q)", ids, err, c.TokenizerBase())
	}
	if s, err := c.Detokenize(ctx, ids); err != nil || s != "seven eight" {
		t.Errorf("Detokenize = %q, %v", s, err)
	}
	if s, err := c.Complete(ctx, "p", Params{MaxTokens: 5, StopTokenIDs: []int{13}, MinTokens: 1}); err != nil || s != " done" {
		t.Errorf("Complete = %q, %v", s, err)
	}
	if s, err := c.Chat(ctx, []Message{{"user", "q"}}, Params{MaxTokens: 6}); err != nil || s != "hi" {
		t.Errorf("Chat = %q, %v", s, err)
	}
	mu.Lock()
	defer mu.Unlock()
	comp, chat := bodies["/v1/completions"], bodies["/v1/chat/completions"]
	if comp["prompt"] != "p" || comp["max_tokens"] != 5.0 || comp["temperature"] != 0.0 || comp["min_tokens"] != 1.0 ||
		len(comp["stop_token_ids"].([]any)) != 1 || comp["messages"] != nil {
		t.Errorf("completion request %v", comp)
	}
	if _, ok := chat["prompt"]; ok || chat["max_tokens"] != 6.0 || chat["temperature"] != 0.0 {
		t.Errorf("chat request %v", chat)
	}
	for _, k := range []string{"stop_token_ids", "min_tokens"} {
		if _, ok := chat[k]; ok {
			t.Errorf("chat request has %s although it was not set: %v", k, chat)
		}
	}
	if tok := bodies["/v1/tokenize"]; tok["add_special_tokens"] != true || tok["model"] != "toy" {
		t.Errorf("tokenize request %v", tok)
	}
}

func TestNoTokenizer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, map[string]any{"detail": "Not Found"})
	}))
	defer srv.Close()
	c, _ := New(srv.URL, "toy", Options{})
	if _, err := c.Detokenize(context.Background(), []int{1}); !errors.Is(err, ErrEndpoint) || !strings.Contains(err.Error(), "/v1/tokenize") {
		t.Errorf("no tokenizer: %v", err)
	}
	if _, err := c.Complete(context.Background(), "p", Params{MaxTokens: 1}); !errors.Is(err, ErrEndpoint) || Status(err) != 404 {
		t.Errorf("no completions route: %v", err)
	}
}

func TestForEach(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]bool{}
	var inFlight, most atomic.Int32
	err := ForEach(context.Background(), 50, 4, func(ctx context.Context, i int) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		mu.Lock()
		seen[i] = true
		mu.Unlock()
		return nil
	})
	if err != nil || len(seen) != 50 || most.Load() > 4 {
		t.Errorf("ForEach: %v, %d done, %d in flight at most", err, len(seen), most.Load())
	}

	boom := errors.New("boom")
	var calls atomic.Int32
	err = ForEach(context.Background(), 1000, 2, func(ctx context.Context, i int) error {
		calls.Add(1)
		if i == 3 {
			return boom
		}
		<-time.After(time.Millisecond)
		return ctx.Err()
	})
	if !errors.Is(err, boom) || calls.Load() > 10 {
		t.Errorf("first error: %v after %d calls", err, calls.Load())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ForEach(ctx, 3, 1, func(context.Context, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
