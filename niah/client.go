package niah

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

// The HTTP side of the model-level test: a small client for an
// OpenAI-compatible server (vLLM, SGLang) that also exposes the tokenizer.
//
// Endpoints used, relative to the server root (the endpoint URL without a
// trailing /v1):
//
//	POST /tokenize     {"model","prompt","add_special_tokens"} → {"tokens":[…],"count":N}
//	POST /tokenize     {"model","messages","add_generation_prompt"} (vLLM only: chat template)
//	POST /detokenize   {"model","tokens"} → {"prompt": text} (vLLM) or {"text": text} (SGLang)
//	POST /v1/completions       {"model","prompt","max_tokens","temperature":0}
//	POST /v1/chat/completions  {"model","messages","max_tokens","temperature":0}
//
// When /tokenize answers 404 or 405, /v1/tokenize (and /v1/detokenize) is
// tried instead. Transient failures (connection errors, per-request
// timeouts, 408, 429 and 5xx) are retried with exponential backoff; every
// other failure is returned at once.

// modelClient talks to one server for one model.
type modelClient struct {
	root       string // scheme://host[:port][/prefix], no trailing slash, no /v1
	model      string
	hc         *http.Client
	retries    int           // extra attempts after the first
	timeout    time.Duration // per attempt
	backoff    time.Duration // delay before the first retry, doubled after each
	backoffMax time.Duration

	mu      sync.Mutex
	tokBase string // root or root+"/v1" once the tokenizer endpoint is found
}

// modelMessage is one chat message.
type modelMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// modelHTTPError is a request that failed for good.
type modelHTTPError struct {
	URL      string
	Status   int    // 0: no HTTP answer (connection error, timeout)
	Msg      string // the server's message, or the transport error
	Attempts int
	Err      error // the transport error, if any
}

func (e *modelHTTPError) Error() string {
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

func (e *modelHTTPError) Unwrap() error { return e.Err }

// modelReplyError is a 2xx reply that is not what an OpenAI-compatible
// server sends.
type modelReplyError struct {
	URL, Msg string
	Body     []byte
}

func (e *modelReplyError) Error() string {
	return fmt.Sprintf("POST %s: %s (reply starts %q)", e.URL, e.Msg, modelClip(e.Body, 120))
}

func (e *modelReplyError) Unwrap() error { return ErrModelEndpoint }

// modelRoot turns an endpoint URL into the server root: scheme and host,
// any path prefix kept, a trailing /v1 removed.
func modelRoot(endpoint string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(endpoint))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%w: endpoint %q is not an http(s) URL like http://localhost:8000", ErrModelOptions, endpoint)
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/v1")
	u.Path, u.RawPath, u.RawQuery, u.Fragment = p, "", "", ""
	return strings.TrimRight(u.String(), "/"), nil
}

// modelClip is the first n bytes of b as a string.
func modelClip(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// modelServerMessage digs the message out of an error reply: OpenAI's
// {"error":{"message"}}, vLLM/SGLang's {"message"}, FastAPI's {"detail"},
// else the start of the body.
func modelServerMessage(body []byte) string {
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
			return modelClip(v.Detail, 300)
		}
	}
	return strings.TrimSpace(modelClip(body, 300))
}

// modelRetryable reports whether an HTTP status is worth another try.
func modelRetryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500
}

// post sends in as JSON to u and decodes a 2xx reply into out, retrying
// transient failures. Errors: *modelHTTPError (no good reply),
// *modelReplyError (a 2xx reply that is not JSON of the expected shape),
// or the context's error.
func (c *modelClient) post(ctx context.Context, u string, in, out any) error {
	payload, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encoding the request to %s: %w", u, err)
	}
	for attempt := 1; ; attempt++ {
		status, body, retryAfter, err := c.once(ctx, u, payload)
		if ctx.Err() != nil {
			return fmt.Errorf("POST %s: %w", u, ctx.Err())
		}
		var fail *modelHTTPError
		switch {
		case err != nil:
			fail = &modelHTTPError{URL: u, Msg: err.Error(), Attempts: attempt, Err: err}
		case status < 200 || status > 299:
			fail = &modelHTTPError{URL: u, Status: status, Msg: modelServerMessage(body), Attempts: attempt}
			if !modelRetryable(status) {
				return fail
			}
		default:
			if !json.Valid(body) {
				return &modelReplyError{URL: u, Msg: "the reply is not valid JSON", Body: body}
			}
			if err := json.Unmarshal(body, out); err != nil {
				return &modelReplyError{URL: u, Msg: "unexpected JSON in the reply: " + err.Error(), Body: body}
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
func (c *modelClient) once(ctx context.Context, u string, payload []byte) (status int, body []byte, retryAfter time.Duration, err error) {
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
func (c *modelClient) sleep(ctx context.Context, attempt int, retryAfter time.Duration) error {
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

// modelNotFound reports whether err is a 404 or 405 answer.
func modelNotFound(err error) bool {
	var he *modelHTTPError
	return errors.As(err, &he) && (he.Status == http.StatusNotFound || he.Status == http.StatusMethodNotAllowed)
}

// tokenizerURL is the URL of /tokenize or /detokenize, once
// resolveTokenizer has found which of root and root/v1 serves them.
func (c *modelClient) tokenizerURL(name string) (string, error) {
	c.mu.Lock()
	base := c.tokBase
	c.mu.Unlock()
	if base != "" {
		return base + "/" + name, nil
	}
	return "", errors.New("niah: internal: tokenizer endpoint not resolved")
}

// resolveTokenizer finds the tokenizer endpoint and returns the tokens of
// probe (without special tokens).
func (c *modelClient) resolveTokenizer(ctx context.Context, probe string) ([]int, error) {
	var firstErr error
	for _, base := range []string{c.root, c.root + "/v1"} {
		ids, err := c.tokenizeAt(ctx, base+"/tokenize", probe, false)
		if err == nil {
			c.mu.Lock()
			c.tokBase = base
			c.mu.Unlock()
			return ids, nil
		}
		var he *modelHTTPError
		if modelNotFound(err) && errors.As(err, &he) && strings.Contains(strings.ToLower(he.Msg), "model") {
			// vLLM answers an unknown model name with a 404 too.
			return nil, fmt.Errorf("%w: the server at %s does not serve model %q: %v", ErrModelEndpoint, c.root, c.model, err)
		}
		if !modelNotFound(err) {
			return nil, err
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("%w: the server at %s has no tokenizer endpoint (POST %s/tokenize and %s/v1/tokenize: %v); "+
		"the model-level test needs vLLM's or SGLang's /tokenize and /detokenize", ErrModelEndpoint, c.root, c.root, c.root, firstErr)
}

type modelTokenizeReply struct {
	Tokens *[]int `json:"tokens"`
}

func (c *modelClient) tokenizeAt(ctx context.Context, u, text string, special bool) ([]int, error) {
	in := struct {
		Model            string `json:"model"`
		Prompt           string `json:"prompt"`
		AddSpecialTokens bool   `json:"add_special_tokens"`
	}{c.model, text, special}
	var out modelTokenizeReply
	if err := c.post(ctx, u, in, &out); err != nil {
		return nil, err
	}
	if out.Tokens == nil {
		return nil, &modelReplyError{URL: u, Msg: `no "tokens" list in the tokenize reply`}
	}
	return *out.Tokens, nil
}

// tokenize returns the token ids of text; special asks the server to add
// the tokens it adds to a completion prompt (BOS).
func (c *modelClient) tokenize(ctx context.Context, text string, special bool) ([]int, error) {
	u, err := c.tokenizerURL("tokenize")
	if err != nil {
		return nil, err
	}
	return c.tokenizeAt(ctx, u, text, special)
}

// tokenizeChat returns the number of tokens of msgs once the server's
// chat template is applied with the generation prompt (vLLM's
// TokenizeChatRequest).
func (c *modelClient) tokenizeChat(ctx context.Context, msgs []modelMessage) (int, error) {
	u, err := c.tokenizerURL("tokenize")
	if err != nil {
		return 0, err
	}
	in := struct {
		Model               string         `json:"model"`
		Messages            []modelMessage `json:"messages"`
		AddGenerationPrompt bool           `json:"add_generation_prompt"`
	}{c.model, msgs, true}
	var out modelTokenizeReply
	if err := c.post(ctx, u, in, &out); err != nil {
		return 0, err
	}
	if out.Tokens == nil {
		return 0, &modelReplyError{URL: u, Msg: `no "tokens" list in the tokenize reply`}
	}
	return len(*out.Tokens), nil
}

// detokenize returns the text of ids.
func (c *modelClient) detokenize(ctx context.Context, ids []int) (string, error) {
	u, err := c.tokenizerURL("detokenize")
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
		if modelNotFound(err) {
			return "", fmt.Errorf("%w: %v (the server has /tokenize but no /detokenize)", ErrModelEndpoint, err)
		}
		return "", err
	}
	switch {
	case out.Prompt != nil:
		return *out.Prompt, nil
	case out.Text != nil:
		return *out.Text, nil
	}
	return "", &modelReplyError{URL: u, Msg: `no "prompt" or "text" in the detokenize reply`}
}

// complete sends a raw prompt to /v1/completions, greedy.
func (c *modelClient) complete(ctx context.Context, prompt string, maxTokens int) (string, error) {
	u := c.root + "/v1/completions"
	in := struct {
		Model       string  `json:"model"`
		Prompt      string  `json:"prompt"`
		MaxTokens   int     `json:"max_tokens"`
		Temperature float64 `json:"temperature"`
		Stream      bool    `json:"stream"`
	}{c.model, prompt, maxTokens, 0, false}
	var out struct {
		Choices *[]struct {
			Text *string `json:"text"`
		} `json:"choices"`
	}
	if err := c.post(ctx, u, in, &out); err != nil {
		return "", modelEndpointHint(err)
	}
	if out.Choices == nil || len(*out.Choices) == 0 || (*out.Choices)[0].Text == nil {
		return "", &modelReplyError{URL: u, Msg: `not an OpenAI completion reply (no choices[0].text)`}
	}
	return *(*out.Choices)[0].Text, nil
}

// chat sends messages to /v1/chat/completions, greedy.
func (c *modelClient) chat(ctx context.Context, msgs []modelMessage, maxTokens int) (string, error) {
	u := c.root + "/v1/chat/completions"
	in := struct {
		Model       string         `json:"model"`
		Messages    []modelMessage `json:"messages"`
		MaxTokens   int            `json:"max_tokens"`
		Temperature float64        `json:"temperature"`
		Stream      bool           `json:"stream"`
	}{c.model, msgs, maxTokens, 0, false}
	var out struct {
		Choices *[]struct {
			Message *struct {
				Content *string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := c.post(ctx, u, in, &out); err != nil {
		return "", modelEndpointHint(err)
	}
	if out.Choices == nil || len(*out.Choices) == 0 || (*out.Choices)[0].Message == nil {
		return "", &modelReplyError{URL: u, Msg: `not an OpenAI chat completion reply (no choices[0].message)`}
	}
	if m := (*out.Choices)[0].Message; m.Content != nil {
		return *m.Content, nil
	}
	return "", nil // a null content (e.g. only reasoning or tool calls) scores as an empty answer
}

// modelEndpointHint marks a 404 from a completion endpoint as an endpoint
// problem: the route or the model does not exist there.
func modelEndpointHint(err error) error {
	if modelNotFound(err) {
		return fmt.Errorf("%w: %v (is this an OpenAI-compatible server serving that model?)", ErrModelEndpoint, err)
	}
	return err
}
