// Package serving is a client for OpenAI-compatible model servers (vLLM,
// SGLang) that also expose their tokenizer. misabench uses it to run
// benchmarks against a model served with the indexer under test: the
// model-level needle test (niah) and LongBench predictions (longbench).
//
// Endpoints used, relative to the server root (the endpoint URL without a
// trailing /v1):
//
//	POST /tokenize     {"model","prompt","add_special_tokens"} → {"tokens":[…],"count":N}
//	POST /tokenize     {"model","messages","add_generation_prompt"} (vLLM only: chat template)
//	POST /detokenize   {"model","tokens"} → {"prompt": text} (vLLM) or {"text": text} (SGLang)
//	POST /v1/completions       {"model","prompt","max_tokens","temperature":0,…}
//	POST /v1/chat/completions  {"model","messages","max_tokens","temperature":0,…}
//
// When /tokenize answers 404 or 405, /v1/tokenize (and /v1/detokenize) is
// tried instead. Transient failures (connection errors, per-request
// timeouts, 408, 429 and 5xx) are retried with exponential backoff; every
// other failure is returned at once.
package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	// ErrBadURL: the endpoint is not an http(s) URL.
	ErrBadURL = errors.New("serving: bad endpoint URL")
	// ErrEndpoint: the server does not answer like an OpenAI-compatible
	// server, does not serve the model, or lacks an endpoint needed
	// (/tokenize, /detokenize, a completion route).
	ErrEndpoint = errors.New("serving: unusable model endpoint")
)

// Defaults of Options.
const (
	DefaultTimeout    = 5 * time.Minute
	DefaultBackoff    = 500 * time.Millisecond
	DefaultBackoffMax = 30 * time.Second
)

// Options tune a Client. Zero values take the defaults.
type Options struct {
	// HTTPClient makes the requests; nil means a client of its own that
	// keeps up to Conns idle connections to the server (default 2).
	HTTPClient *http.Client
	Conns      int
	// Retries is the number of extra attempts after a transient failure
	// (0: none).
	Retries int
	// Timeout bounds each attempt (default DefaultTimeout).
	Timeout time.Duration
	// Backoff is the delay before the first retry, doubled after each
	// (with jitter) up to BackoffMax; a server's Retry-After is honoured
	// up to BackoffMax.
	Backoff, BackoffMax time.Duration
}

// Client talks to one server for one model. It is safe for concurrent use.
type Client struct {
	root       string // scheme://host[:port][/prefix], no trailing slash, no /v1
	model      string
	hc         *http.Client
	retries    int
	timeout    time.Duration
	backoff    time.Duration
	backoffMax time.Duration

	mu      sync.Mutex
	tokBase string // root or root+"/v1" once the tokenizer endpoint is found
}

// New returns a client for model at endpoint (a server URL such as
// http://localhost:8000, with or without a trailing /v1). An endpoint that
// is not an http(s) URL is an error wrapping ErrBadURL.
func New(endpoint, model string, o Options) (*Client, error) {
	root, err := Root(endpoint)
	if err != nil {
		return nil, err
	}
	c := &Client{root: root, model: model, hc: o.HTTPClient, retries: max(o.Retries, 0),
		timeout: o.Timeout, backoff: o.Backoff, backoffMax: o.BackoffMax}
	if c.hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = max(o.Conns, 2)
		c.hc = &http.Client{Transport: tr}
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.backoff <= 0 {
		c.backoff = DefaultBackoff
	}
	if c.backoffMax <= 0 {
		c.backoffMax = max(DefaultBackoffMax, c.backoff)
	}
	return c, nil
}

// Root is the server root of an endpoint URL: scheme and host, any path
// prefix kept, a trailing /v1 removed.
func Root(endpoint string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(endpoint))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%w: endpoint %q is not an http(s) URL like http://localhost:8000", ErrBadURL, endpoint)
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/v1")
	u.Path, u.RawPath, u.RawQuery, u.Fragment = p, "", "", ""
	return strings.TrimRight(u.String(), "/"), nil
}

// Root is the server root the client talks to.
func (c *Client) Root() string { return c.root }

// Model is the served model name the client asks for.
func (c *Client) Model() string { return c.model }

// TokenizerBase is root or root/v1, whichever serves /tokenize; "" until
// ResolveTokenizer (or a first tokenizer call) has found it.
func (c *Client) TokenizerBase() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokBase
}

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Params are the generation parameters of a completion. Decoding is always
// greedy (temperature 0).
type Params struct {
	MaxTokens int
	// StopTokenIDs end the generation at any of these ids (vLLM and SGLang
	// extension; the id itself is not in the text). MinTokens keeps EOS
	// and StopTokenIDs from ending it before this many tokens (vLLM
	// min_tokens; Hugging Face's min_new_tokens).
	StopTokenIDs []int
	MinTokens    int
}

// HTTPError is a request that failed for good.
type HTTPError struct {
	URL      string
	Status   int    // 0: no HTTP answer (connection error, timeout)
	Msg      string // the server's message, or the transport error
	Attempts int
	Err      error // the transport error, if any
}

func (e *HTTPError) Error() string {
	what := e.Msg
	if e.Status != 0 {
		what = fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
		if e.Msg != "" {
			what += ": " + e.Msg
		}
	}
	s := fmt.Sprintf("POST %s: %s", e.URL, what)
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	return s
}

func (e *HTTPError) Unwrap() error { return e.Err }

// ReplyError is a 2xx reply that is not what an OpenAI-compatible server
// sends. It wraps ErrEndpoint.
type ReplyError struct {
	URL, Msg string
	Body     []byte
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("POST %s: %s (reply starts %q)", e.URL, e.Msg, clip(e.Body, 120))
}

func (e *ReplyError) Unwrap() error { return ErrEndpoint }

// Status is the HTTP status of a failed request, 0 if none (no answer, or
// not an HTTP failure).
func Status(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// NotFound reports whether err is a 404 or 405 answer.
func NotFound(err error) bool {
	s := Status(err)
	return s == http.StatusNotFound || s == http.StatusMethodNotAllowed
}

// Unreachable reports whether err is a request that got no HTTP answer at
// all (connection refused, timeout).
func Unreachable(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Status == 0
}

// SetupError classifies a failure of a first request to the server (what
// names it, e.g. "tokenizing"): no answer at all, or a 4xx, is the
// endpoint's fault and wraps ErrEndpoint; a cancelled context and anything
// else (a 5xx after all retries) are returned with what in front.
func (c *Client) SetupError(what string, err error) error {
	switch {
	case errors.Is(err, ErrEndpoint):
		return err
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", what, err)
	case Unreachable(err):
		return fmt.Errorf("%w: cannot reach the server at %s: %w", ErrEndpoint, c.root, err)
	}
	if st := Status(err); st >= 400 && st < 500 {
		return fmt.Errorf("%w: %s: %w", ErrEndpoint, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// clip is the first n bytes of b as a string.
func clip(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// serverMessage digs the message out of an error reply: OpenAI's
// {"error":{"message"}}, vLLM/SGLang's {"message"}, FastAPI's {"detail"},
// else the start of the body.
func serverMessage(body []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &v) == nil {
		var inner struct {
			Message string `json:"message"`
		}
		if len(v.Error) > 0 && json.Unmarshal(v.Error, &inner) == nil && inner.Message != "" {
			return inner.Message
		}
		var s string
		if len(v.Error) > 0 && json.Unmarshal(v.Error, &s) == nil && s != "" {
			return s
		}
		if v.Message != "" {
			return v.Message
		}
		if len(v.Detail) > 0 {
			if json.Unmarshal(v.Detail, &s) == nil {
				return s
			}
			return clip(v.Detail, 300)
		}
	}
	return strings.TrimSpace(clip(body, 300))
}

// retryable reports whether an HTTP status is worth another try.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500
}

// post sends in as JSON to u and decodes a 2xx reply into out, retrying
// transient failures. Errors: *HTTPError (no good reply), *ReplyError (a
// 2xx reply that is not JSON of the expected shape), or the context's
// error.
func (c *Client) post(ctx context.Context, u string, in, out any) error {
	payload, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encoding the request to %s: %w", u, err)
	}
	for attempt := 1; ; attempt++ {
		status, body, retryAfter, err := c.once(ctx, u, payload)
		if ctx.Err() != nil {
			return fmt.Errorf("POST %s: %w", u, ctx.Err())
		}
		var fail *HTTPError
		switch {
		case err != nil:
			fail = &HTTPError{URL: u, Msg: err.Error(), Attempts: attempt, Err: err}
		case status < 200 || status > 299:
			fail = &HTTPError{URL: u, Status: status, Msg: serverMessage(body), Attempts: attempt}
			if !retryable(status) {
				return fail
			}
		default:
			if !json.Valid(body) {
				return &ReplyError{URL: u, Msg: "the reply is not valid JSON", Body: body}
			}
			if err := json.Unmarshal(body, out); err != nil {
				return &ReplyError{URL: u, Msg: "unexpected JSON in the reply: " + err.Error(), Body: body}
			}
			return nil
		}
		if attempt > c.retries {
			return fail
		}
		if err := c.sleep(ctx, attempt, retryAfter); err != nil {
			return fmt.Errorf("POST %s: %w (while waiting to retry after: %v)", u, err, fail)
		}
	}
}

// once makes one attempt under the per-request timeout. err is a
// transport failure (connection, timeout, a body cut short).
func (c *Client) once(ctx context.Context, u string, payload []byte) (status int, body []byte, retryAfter time.Duration, err error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return 0, nil, 0, fmt.Errorf("no reply within %v", c.timeout)
		}
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<28))
	if err != nil {
		if errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return 0, nil, 0, fmt.Errorf("reply not complete within %v", c.timeout)
		}
		return 0, nil, 0, fmt.Errorf("reading the reply: %w", err)
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n > 0 {
			retryAfter = time.Duration(n) * time.Second
		}
	}
	return resp.StatusCode, body, retryAfter, nil
}

// sleep waits before retry number attempt (1-based): backoff·2^(attempt−1)
// with up to half of it as jitter, at least the server's Retry-After, at
// most backoffMax; it returns early with the context's error.
func (c *Client) sleep(ctx context.Context, attempt int, retryAfter time.Duration) error {
	d := c.backoff
	for i := 1; i < attempt && d < c.backoffMax; i++ {
		d *= 2
	}
	if d > 1 {
		d = d/2 + rand.N(d/2+1)
	}
	d = max(d, retryAfter)
	d = min(d, c.backoffMax)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// tokenizerURL is the URL of /tokenize or /detokenize, finding first which
// of root and root/v1 serves them.
func (c *Client) tokenizerURL(ctx context.Context, name string) (string, error) {
	base := c.TokenizerBase()
	if base == "" {
		if _, err := c.ResolveTokenizer(ctx, "."); err != nil {
			return "", err
		}
		base = c.TokenizerBase()
	}
	return base + "/" + name, nil
}

// ResolveTokenizer finds the tokenizer endpoint (root/tokenize, else
// root/v1/tokenize) and returns the tokens of probe (without special
// tokens). A server without one, or one that does not serve the model, is
// an error wrapping ErrEndpoint.
func (c *Client) ResolveTokenizer(ctx context.Context, probe string) ([]int, error) {
	var firstErr error
	for _, base := range []string{c.root, c.root + "/v1"} {
		ids, err := c.tokenizeAt(ctx, base+"/tokenize", probe, false)
		if err == nil {
			c.mu.Lock()
			c.tokBase = base
			c.mu.Unlock()
			return ids, nil
		}
		var he *HTTPError
		if NotFound(err) && errors.As(err, &he) && strings.Contains(strings.ToLower(he.Msg), "model") {
			// vLLM answers an unknown model name with a 404 too.
			return nil, fmt.Errorf("%w: the server at %s does not serve model %q: %v", ErrEndpoint, c.root, c.model, err)
		}
		if !NotFound(err) {
			return nil, err
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("%w: the server at %s has no tokenizer endpoint (POST %s/tokenize and %s/v1/tokenize: %v); "+
		"misabench needs vLLM's or SGLang's /tokenize and /detokenize", ErrEndpoint, c.root, c.root, c.root, firstErr)
}

type tokenizeReply struct {
	Tokens *[]int `json:"tokens"`
}

func (c *Client) tokenizeAt(ctx context.Context, u, text string, special bool) ([]int, error) {
	in := struct {
		Model            string `json:"model"`
		Prompt           string `json:"prompt"`
		AddSpecialTokens bool   `json:"add_special_tokens"`
	}{c.model, text, special}
	var out tokenizeReply
	if err := c.post(ctx, u, in, &out); err != nil {
		return nil, err
	}
	if out.Tokens == nil {
		return nil, &ReplyError{URL: u, Msg: `no "tokens" list in the tokenize reply`}
	}
	return *out.Tokens, nil
}

// Tokenize returns the token ids of text; special asks the server to add
// the tokens it adds to a completion prompt (BOS).
func (c *Client) Tokenize(ctx context.Context, text string, special bool) ([]int, error) {
	u, err := c.tokenizerURL(ctx, "tokenize")
	if err != nil {
		return nil, err
	}
	return c.tokenizeAt(ctx, u, text, special)
}

// TokenizeChat returns the number of tokens of msgs once the server's chat
// template is applied with the generation prompt (vLLM's
// TokenizeChatRequest; SGLang answers 4xx).
func (c *Client) TokenizeChat(ctx context.Context, msgs []Message) (int, error) {
	u, err := c.tokenizerURL(ctx, "tokenize")
	if err != nil {
		return 0, err
	}
	in := struct {
		Model               string    `json:"model"`
		Messages            []Message `json:"messages"`
		AddGenerationPrompt bool      `json:"add_generation_prompt"`
	}{c.model, msgs, true}
	var out tokenizeReply
	if err := c.post(ctx, u, in, &out); err != nil {
		return 0, err
	}
	if out.Tokens == nil {
		return 0, &ReplyError{URL: u, Msg: `no "tokens" list in the tokenize reply`}
	}
	return len(*out.Tokens), nil
}

// Detokenize returns the text of ids.
func (c *Client) Detokenize(ctx context.Context, ids []int) (string, error) {
	u, err := c.tokenizerURL(ctx, "detokenize")
	if err != nil {
		return "", err
	}
	if ids == nil {
		ids = []int{}
	}
	in := struct {
		Model  string `json:"model"`
		Tokens []int  `json:"tokens"`
	}{c.model, ids}
	var out struct {
		Prompt *string `json:"prompt"` // vLLM
		Text   *string `json:"text"`   // SGLang
	}
	if err := c.post(ctx, u, in, &out); err != nil {
		if NotFound(err) {
			return "", fmt.Errorf("%w: %w (the server has /tokenize but no /detokenize)", ErrEndpoint, err)
		}
		return "", err
	}
	switch {
	case out.Prompt != nil:
		return *out.Prompt, nil
	case out.Text != nil:
		return *out.Text, nil
	}
	return "", &ReplyError{URL: u, Msg: `no "prompt" or "text" in the detokenize reply`}
}

// genRequest is the body of a completion request; exactly one of Prompt
// and Messages is set.
type genRequest struct {
	Model        string    `json:"model"`
	Prompt       *string   `json:"prompt,omitempty"`
	Messages     []Message `json:"messages,omitempty"`
	MaxTokens    int       `json:"max_tokens"`
	Temperature  float64   `json:"temperature"`
	Stream       bool      `json:"stream"`
	StopTokenIDs []int     `json:"stop_token_ids,omitempty"`
	MinTokens    int       `json:"min_tokens,omitempty"`
}

func (c *Client) genRequest(p Params) genRequest {
	return genRequest{Model: c.model, MaxTokens: p.MaxTokens, StopTokenIDs: p.StopTokenIDs, MinTokens: p.MinTokens}
}

// Complete sends a raw prompt to /v1/completions, greedy, and returns the
// text of the first choice.
func (c *Client) Complete(ctx context.Context, prompt string, p Params) (string, error) {
	u := c.root + "/v1/completions"
	in := c.genRequest(p)
	in.Prompt = &prompt
	var out struct {
		Choices *[]struct {
			Text *string `json:"text"`
		} `json:"choices"`
	}
	if err := c.post(ctx, u, in, &out); err != nil {
		return "", endpointHint(err)
	}
	if out.Choices == nil || len(*out.Choices) == 0 || (*out.Choices)[0].Text == nil {
		return "", &ReplyError{URL: u, Msg: `not an OpenAI completion reply (no choices[0].text)`}
	}
	return *(*out.Choices)[0].Text, nil
}

// Chat sends messages to /v1/chat/completions (the server applies the
// model's chat template), greedy, and returns the first choice's content.
func (c *Client) Chat(ctx context.Context, msgs []Message, p Params) (string, error) {
	u := c.root + "/v1/chat/completions"
	in := c.genRequest(p)
	in.Messages = msgs
	var out struct {
		Choices *[]struct {
			Message *struct {
				Content *string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := c.post(ctx, u, in, &out); err != nil {
		return "", endpointHint(err)
	}
	if out.Choices == nil || len(*out.Choices) == 0 || (*out.Choices)[0].Message == nil {
		return "", &ReplyError{URL: u, Msg: `not an OpenAI chat completion reply (no choices[0].message)`}
	}
	if m := (*out.Choices)[0].Message; m.Content != nil {
		return *m.Content, nil
	}
	return "", nil // a null content (e.g. only reasoning or tool calls) scores as an empty answer
}

// endpointHint marks a 404 from a completion endpoint as an endpoint
// problem: the route or the model does not exist there.
func endpointHint(err error) error {
	if NotFound(err) {
		return fmt.Errorf("%w: %w (is this an OpenAI-compatible server serving that model?)", ErrEndpoint, err)
	}
	return err
}
