package niah

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/misabench/misabench/serving/servingtest"
)

// modelFake is servingtest's OpenAI-compatible server with a toy
// tokenizer of GPT-2-like pieces (a word with its leading space, one
// punctuation mark with its leading space, or one white-space character),
// so that "." is a token of its own and detokenizing is concatenation. Id
// 0 is BOS, added when add_special_tokens is true or absent.
//
// It "answers" with the pass key only when the needle starts in the first
// quarter or the last quarter of the prompt (by characters), so that a grid
// has green and red cells, deterministically.
type modelFake struct {
	srv *servingtest.Server

	// Behaviour, set by modelNewFake's setup before the first request.
	sglang      bool // detokenize answers {"text"}; /tokenize takes no chat messages
	v1Only      bool // tokenizer endpoints only under /v1
	noTokenizer bool // no tokenizer endpoints at all
	alwaysBOS   bool // ignores add_special_tokens=false
	spDot       bool // a lone "." tokenizes as "▁." (a SentencePiece habit)
	// fault, if not nil, may answer a request itself (returning true);
	// n counts the requests to that path, from 1.
	fault func(path string, n int, w http.ResponseWriter, r *http.Request) bool

	mu      sync.Mutex
	prompts map[string]string // completion prompt (or chat user text) by the pass key in it
	system  map[string]string // chat system message by pass key
}

var (
	modelFakePiece  = regexp.MustCompile(` ?[A-Za-z0-9]+| ?[^\sA-Za-z0-9]|\s`)
	modelFakeNeedle = regexp.MustCompile(`The pass key is ([0-9]+)\. Remember it\.`)
	// modelFakeChatTemplate is the fake's chat template.
	modelFakeChatTemplate = servingtest.ChatTemplate
)

func modelNewFake(t *testing.T, setup func(f *modelFake)) *modelFake {
	t.Helper()
	f := &modelFake{prompts: map[string]string{}, system: map[string]string{}}
	if setup != nil {
		setup(f)
	}
	srv := servingtest.New(t, "toy")
	srv.SGLang, srv.V1Only, srv.NoTokenizer, srv.AlwaysBOS = f.sglang, f.v1Only, f.noTokenizer, f.alwaysBOS
	srv.Split = func(s string) []string {
		if f.spDot && s == "." {
			return []string{"▁."}
		}
		return modelFakePiece.FindAllString(s, -1)
	}
	srv.Fault = func(path string, n int, w http.ResponseWriter, r *http.Request) bool {
		return f.fault != nil && f.fault(path, n, w, r)
	}
	srv.Answer = func(r servingtest.Request) string {
		if r.Path == "/v1/completions" {
			return f.answer(r.Prompt, "")
		}
		system := ""
		for _, m := range r.Messages {
			if m.Role == "system" {
				system = m.Content
			}
		}
		return "The pass key is" + f.answer(r.Text(), system)
	}
	f.srv = srv
	return f
}

// tok is the toy tokenizer, without BOS.
func (f *modelFake) tok(s string) []int { return f.srv.Tokens(s) }

func (f *modelFake) detok(ids []int) string { return f.srv.Text(ids) }

func (f *modelFake) count(path string) int { return f.srv.Calls(path) }

func (f *modelFake) total() int { return f.srv.Total() }

func (f *modelFake) completions() int { return f.srv.Completions() }

func modelFakeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
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
