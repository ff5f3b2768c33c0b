// Package servingtest is an in-process OpenAI-compatible server for tests
// of code that uses package serving: a toy tokenizer behind /tokenize and
// /detokenize (and /v1/tokenize, /v1/detokenize), in vLLM's request and
// reply shapes or SGLang's, and /v1/completions and /v1/chat/completions
// that answer through a function and record what they were sent.
package servingtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/misabench/misabench/serving"
)

// BOS is the id of the begin-of-sequence token, which /tokenize adds in
// front when add_special_tokens is true or absent, and which /detokenize
// renders as "<s>" (vLLM's /detokenize does not skip special tokens).
const BOS = 0

// Request is one completion or chat completion request.
type Request struct {
	Path         string // /v1/completions or /v1/chat/completions
	Prompt       string // completions
	Messages     []serving.Message
	MaxTokens    int
	StopTokenIDs []int
	MinTokens    int
}

// Text is the prompt, or the last user message of a chat.
func (r Request) Text() string {
	if r.Path == "/v1/completions" {
		return r.Prompt
	}
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Content
		}
	}
	return ""
}

// Server is the fake. Set its behaviour fields before the first request.
type Server struct {
	*httptest.Server
	// Model is the only model name served.
	Model string
	// Answer makes the text of a completion (the content of a chat
	// completion); nil answers "ok".
	Answer func(Request) string
	// Fault, if not nil, may answer a request itself (returning true); n
	// counts the requests to that path, from 1.
	Fault func(path string, n int, w http.ResponseWriter, r *http.Request) bool
	// Split cuts a text into tokens; nil splits into words with the white
	// space in front of them, and trailing white space.
	Split func(text string) []string
	// SGLang answers /detokenize with {"text"} (vLLM: {"prompt"}) and
	// refuses chat messages on /tokenize (vLLM applies ChatTemplate).
	SGLang bool
	// V1Only serves the tokenizer only under /v1; NoTokenizer not at all.
	V1Only, NoTokenizer bool
	// AlwaysBOS adds BOS even when add_special_tokens is false.
	AlwaysBOS bool

	mu    sync.Mutex
	vocab map[string]int
	words []string
	calls map[string]int
	reqs  []Request
}

// wordPieces is the default Split: a word with the white space in front of it,
// or trailing white space; detokenizing is concatenation.
var wordPieces = regexp.MustCompile(`\s*\S+|\s+`)

// ChatTemplate is the fake's chat template, which /tokenize applies to
// chat messages (vLLM's TokenizeChatRequest, with the generation prompt).
func ChatTemplate(msgs []serving.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString("<|" + m.Role + "|>\n" + m.Content + "\n")
	}
	return b.String() + "<|assistant|>\n"
}

// New starts a fake serving model, closed when the test ends.
func New(tb testing.TB, model string) *Server {
	tb.Helper()
	s := &Server{Model: model, vocab: map[string]int{"<s>": BOS}, words: []string{"<s>"}, calls: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

// Tokens is the fake tokenizer, without BOS.
func (s *Server) Tokens(text string) []int {
	var pieces []string
	if s.Split != nil {
		pieces = s.Split(text)
	} else {
		pieces = wordPieces.FindAllString(text, -1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := []int{}
	for _, p := range pieces {
		id, ok := s.vocab[p]
		if !ok {
			id = len(s.words)
			s.vocab[p] = id
			s.words = append(s.words, p)
		}
		ids = append(ids, id)
	}
	return ids
}

// Text is the text of ids.
func (s *Server) Text(ids []int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, id := range ids {
		if id >= 0 && id < len(s.words) {
			b.WriteString(s.words[id])
		}
	}
	return b.String()
}

// Calls is the number of requests to path so far.
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// Total is the number of requests to any path so far.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

// Completions is the number of completion and chat completion requests.
func (s *Server) Completions() int {
	return s.Calls("/v1/completions") + s.Calls("/v1/chat/completions")
}

// Requests are the completion and chat completion requests answered, in
// the order they came.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls[r.URL.Path]++
	n := s.calls[r.URL.Path]
	s.mu.Unlock()
	if s.Fault != nil && s.Fault(r.URL.Path, n, w, r) {
		return
	}
	var in struct {
		Model            string            `json:"model"`
		Prompt           *string           `json:"prompt"`
		Messages         []serving.Message `json:"messages"`
		Tokens           []int             `json:"tokens"`
		AddSpecialTokens *bool             `json:"add_special_tokens"`
		MaxTokens        int               `json:"max_tokens"`
		Temperature      *float64          `json:"temperature"`
		StopTokenIDs     []int             `json:"stop_token_ids"`
		MinTokens        int               `json:"min_tokens"`
	}
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&in) != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "bad request"})
		return
	}
	if in.Model != s.Model {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "The model `" + in.Model + "` does not exist."})
		return
	}
	path := r.URL.Path
	tokenizer := !s.NoTokenizer && (strings.HasPrefix(path, "/v1/") || !s.V1Only)
	switch {
	case tokenizer && (path == "/tokenize" || path == "/v1/tokenize"):
		var ids []int
		switch {
		case in.Messages != nil && s.SGLang:
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Field required: prompt"})
			return
		case in.Messages != nil:
			ids = s.Tokens(ChatTemplate(in.Messages))
		case in.Prompt != nil:
			ids = s.Tokens(*in.Prompt)
			if in.AddSpecialTokens == nil || *in.AddSpecialTokens || s.AlwaysBOS {
				ids = append([]int{BOS}, ids...)
			}
		default:
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": "no prompt"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"tokens": ids, "count": len(ids), "max_model_len": 1 << 20})
	case tokenizer && (path == "/detokenize" || path == "/v1/detokenize"):
		if s.SGLang {
			writeJSON(w, http.StatusOK, map[string]any{"text": s.Text(in.Tokens)})
		} else {
			writeJSON(w, http.StatusOK, map[string]any{"prompt": s.Text(in.Tokens)})
		}
	case (path == "/v1/completions" && in.Prompt != nil) || (path == "/v1/chat/completions" && len(in.Messages) > 0):
		if in.Temperature == nil || *in.Temperature != 0 || in.MaxTokens <= 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": "not greedy"})
			return
		}
		req := Request{Path: path, Messages: in.Messages, MaxTokens: in.MaxTokens, StopTokenIDs: in.StopTokenIDs, MinTokens: in.MinTokens}
		if in.Prompt != nil {
			req.Prompt = *in.Prompt
		}
		ans := "ok"
		if s.Answer != nil {
			ans = s.Answer(req)
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()
		if path == "/v1/completions" {
			writeJSON(w, http.StatusOK, map[string]any{"object": "text_completion",
				"choices": []map[string]any{{"index": 0, "text": ans, "finish_reason": "stop"}}})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "chat.completion",
			"choices": []map[string]any{{"index": 0, "message": map[string]any{"role": "assistant", "content": ans}}}})
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not Found"})
	}
}
