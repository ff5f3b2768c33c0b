package niah

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/misabench/misabench/serving"
)

// The model-level test: the classic passkey needle-in-a-haystack run
// against an OpenAI-compatible server (vLLM or SGLang serving the model
// with the indexer under test). haystack.go holds the haystack, needle,
// insertion and prompt; score.go the scorers; package serving the HTTP
// side.

// ModelOptions configures RunModel. Zero values take the defaults given.
type ModelOptions struct {
	// Endpoint is the server's base URL, like http://localhost:8000, with
	// or without a trailing /v1. Model is the served model name.
	Endpoint, Model string
	// Haystack is a directory of .txt files (read in name order and
	// concatenated); "" uses the built-in filler.
	Haystack string
	// Contexts are the prompt lengths in tokens of the server's
	// tokenizer: each prompt, template and question included, is at most
	// this long (the server must allow ctx + MaxTokens). Depths are the
	// needle positions, fractions 0..1 of the haystack.
	Contexts []int
	Depths   []float64
	// Samples is the number of samples (pass keys) per cell (default 1).
	Samples int
	// Scorer is passkey (default), rouge1 or substring (see score.go).
	Scorer string
	// Chat sends the prompt to /v1/chat/completions as a system and a
	// user message instead of a raw prompt to /v1/completions.
	Chat bool
	// Concurrency is the number of requests in flight (default 1).
	// Retries is the number of extra attempts on a transient failure
	// (connection error, timeout, 408, 429, 5xx): 0 means the default, 3;
	// a negative value means none.
	Concurrency, Retries int
	// Timeout bounds each HTTP request (default 5 minutes).
	Timeout time.Duration
	// Out is the directory of model-results.jsonl, one JSON line per
	// sample; a rerun with the same Out skips the samples already there.
	// "" keeps results in memory only.
	Out string
	// Seed draws the pass keys and the built-in filler. MaxTokens bounds
	// each answer (default 32).
	Seed      uint64
	MaxTokens int
	// Progress, if not nil, is called with the samples done (those found
	// in Out included) and the total, once at the start and after each
	// sample, from one goroutine at a time.
	Progress func(done, total int)
	// HTTPClient makes the requests; nil means a default client.
	HTTPClient *http.Client
}

// Error classes of RunModel, for errors.Is. Errors of neither class (a
// server failing after all retries, an interrupted run) are plain errors.
var (
	// ErrModelOptions: the options are unusable (bad URL, no contexts, a
	// depth outside 0..1, an unknown scorer, a context too short for the
	// template, a haystack directory without text).
	ErrModelOptions = errors.New("niah: bad model-level options")
	// ErrModelEndpoint: the server cannot be reached, does not answer
	// like an OpenAI-compatible server, rejects the model, or has no
	// /tokenize and /detokenize. It is serving.ErrEndpoint, so that the
	// client's own endpoint errors are of this class too.
	ErrModelEndpoint = serving.ErrEndpoint
	// ErrModelResults: the results file in Out is corrupt (other than its
	// last line) or was written by a run with another model, seed, chat
	// mode or haystack.
	ErrModelResults = errors.New("niah: unusable model-results file")
)

// Files RunModel writes under ModelOptions.Out.
const (
	// ModelResultsFile holds one JSON line per sample (see modelRecord).
	ModelResultsFile = "model-results.jsonl"
	// ModelRunFile describes the last run that had work to do: endpoint,
	// template, tokenizer details (sentence-end ids), haystack.
	ModelRunFile = "model-run.json"
)

const (
	modelDefaultRetries   = 3
	modelDefaultTimeout   = 5 * time.Minute
	modelDefaultMaxTokens = 32
	// modelChatReserve is added to the count of a chat prompt's text when
	// the server cannot count the chat template itself.
	modelChatReserve = 64
	// modelGapWarn is the sentence length, in tokens, past which a
	// haystack draws a warning: needles land that far from their depth.
	modelGapWarn = 2000
)

// RunModel runs the model-level test: for every depth × context and
// sample, a haystack of the context's length with a pass-key needle at
// that depth, a greedy completion, and a score. It returns the grid of
// mean scores: Cells[i][j] is Depths[i] × Contexts[j], N the samples.
//
// Results stream to Out/model-results.jsonl as they come, so an
// interrupted run loses at most the requests in flight and a rerun picks
// up where it stopped. When every sample is already there, RunModel does
// not contact the server at all.
func RunModel(ctx context.Context, o ModelOptions) (*Grid, error) {
	return modelRun(ctx, o, modelEnv{
		warn: func(s string) {
			fmt.Fprintln(os.Stderr, "misabench niah: warning:", s)
		},
		backoff:    500 * time.Millisecond,
		backoffMax: 30 * time.Second,
	})
}

// modelEnv is what tests change: where warnings go and the retry delays.
type modelEnv struct {
	warn                func(string)
	backoff, backoffMax time.Duration
}

// modelRecord is one line of model-results.jsonl. ctx, depth, sample, key,
// answer, score, model and haystack are required when a file is read
// back. score is the scorer's (named) at the time; a rerun scores answer
// again with its own scorer, so a finished run can be rescored.
type modelRecord struct {
	Ctx    int     `json:"ctx"`
	Depth  float64 `json:"depth"`
	Sample int     `json:"sample"`
	Key    string  `json:"key"`
	Answer string  `json:"answer"`
	Score  float64 `json:"score"`
	Scorer string  `json:"scorer"`
	Model  string  `json:"model"`
	Chat   bool    `json:"chat"`
	// Haystack fingerprints the haystack (built-in filler and seed, or a
	// hash of the directory's files).
	Haystack string `json:"haystack"`
	// PromptTokens is the prompt's length by the server's tokenizer (for
	// chat without a chat-capable /tokenize, an estimate);
	// HaystackTokens the haystack tokens kept (B); NeedleToken the
	// needle's index among them.
	PromptTokens   int     `json:"prompt_tokens"`
	HaystackTokens int     `json:"haystack_tokens"`
	NeedleToken    int     `json:"needle_token"`
	Seconds        float64 `json:"seconds"`
}

// modelCellKey identifies a sample.
type modelCellKey struct {
	ctx    int
	depth  uint64 // math.Float64bits
	sample int
}

func modelKeyOf(ctx int, depth float64, sample int) modelCellKey {
	return modelCellKey{ctx, math.Float64bits(modelDepth(depth)), sample}
}

// modelJob is one pending sample.
type modelJob struct {
	ctx    int
	depth  float64
	sample int
}

// modelRunner holds one run's state.
type modelRunner struct {
	o      ModelOptions
	env    modelEnv
	c      *serving.Client
	scorer string

	prefix    []int        // special tokens the server adds even when asked not to
	period    map[int]bool // sentence-end token ids
	chatExact bool         // the server counts chat prompts itself
	hay       []int        // the haystack's first max(Contexts) tokens
	hayFP     string
	haySource string

	mu     sync.Mutex
	f      *os.File
	scores map[modelCellKey]float64
	done   int
	total  int
}

// modelNormalize checks o and fills in the defaults.
func modelNormalize(o ModelOptions) (ModelOptions, string, error) {
	root, err := serving.Root(o.Endpoint)
	if err != nil {
		return o, "", fmt.Errorf("%w: %w", ErrModelOptions, err)
	}
	o.Model = strings.TrimSpace(o.Model)
	if o.Model == "" {
		return o, "", fmt.Errorf("%w: no model name", ErrModelOptions)
	}
	if len(o.Contexts) == 0 {
		return o, "", fmt.Errorf("%w: no context lengths", ErrModelOptions)
	}
	for i, c := range o.Contexts {
		if c < 1 {
			return o, "", fmt.Errorf("%w: context length %d is not positive", ErrModelOptions, c)
		}
		if slices.Contains(o.Contexts[:i], c) {
			return o, "", fmt.Errorf("%w: context length %d given twice", ErrModelOptions, c)
		}
	}
	if len(o.Depths) == 0 {
		return o, "", fmt.Errorf("%w: no depths", ErrModelOptions)
	}
	o.Depths = slices.Clone(o.Depths)
	for i, d := range o.Depths {
		if math.IsNaN(d) || d < 0 || d > 1 {
			return o, "", fmt.Errorf("%w: depth %v is outside 0..1", ErrModelOptions, d)
		}
		o.Depths[i] = modelDepth(d)
		if slices.Contains(o.Depths[:i], o.Depths[i]) {
			return o, "", fmt.Errorf("%w: depth %v given twice", ErrModelOptions, d)
		}
	}
	o.Contexts = slices.Clone(o.Contexts)
	switch {
	case o.Samples < 0:
		return o, "", fmt.Errorf("%w: samples %d is negative", ErrModelOptions, o.Samples)
	case o.Samples == 0:
		o.Samples = 1
	}
	if o.Scorer, err = modelCheckScorer(o.Scorer); err != nil {
		return o, "", err
	}
	switch {
	case o.Concurrency < 0:
		return o, "", fmt.Errorf("%w: concurrency %d is negative", ErrModelOptions, o.Concurrency)
	case o.Concurrency == 0:
		o.Concurrency = 1
	}
	switch {
	case o.Retries < 0:
		o.Retries = 0
	case o.Retries == 0:
		o.Retries = modelDefaultRetries
	}
	switch {
	case o.Timeout < 0:
		return o, "", fmt.Errorf("%w: timeout %v is negative", ErrModelOptions, o.Timeout)
	case o.Timeout == 0:
		o.Timeout = modelDefaultTimeout
	}
	switch {
	case o.MaxTokens < 0:
		return o, "", fmt.Errorf("%w: max tokens %d is negative", ErrModelOptions, o.MaxTokens)
	case o.MaxTokens == 0:
		o.MaxTokens = modelDefaultMaxTokens
	}
	return o, root, nil
}

func modelRun(ctx context.Context, o ModelOptions, env modelEnv) (*Grid, error) {
	o, root, err := modelNormalize(o)
	if err != nil {
		return nil, err
	}
	c, err := serving.New(root, o.Model, serving.Options{
		HTTPClient: o.HTTPClient, Conns: o.Concurrency + 2, Retries: o.Retries, Timeout: o.Timeout,
		Backoff: env.backoff, BackoffMax: env.backoffMax,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrModelOptions, err)
	}
	r := &modelRunner{
		o:      o,
		env:    env,
		scorer: o.Scorer,
		c:      c,
		scores: map[modelCellKey]float64{},
	}

	// What is done already.
	var path string
	var done map[modelCellKey]modelRecord
	var needNewline bool
	if o.Out != "" {
		path = filepath.Join(o.Out, ModelResultsFile)
		if done, needNewline, err = r.load(path); err != nil {
			return nil, err
		}
	}
	var pending []modelJob
	for _, c := range o.Contexts {
		for _, d := range o.Depths {
			for s := range o.Samples {
				r.total++
				if rec, ok := done[modelKeyOf(c, d, s)]; ok {
					r.scores[modelKeyOf(c, d, s)] = modelScore(r.scorer, rec.Answer, rec.Key)
					r.done++
					continue
				}
				pending = append(pending, modelJob{c, d, s})
			}
		}
	}
	if o.Progress != nil {
		o.Progress(r.done, r.total)
	}
	if len(pending) > 0 {
		if err := r.setup(ctx); err != nil {
			return nil, err
		}
		if err := r.buildHaystack(ctx); err != nil {
			return nil, err
		}
		if err := r.checkRoom(ctx); err != nil {
			return nil, err
		}
		for _, rec := range done {
			if rec.Haystack != r.hayFP {
				return nil, fmt.Errorf("%w: %s holds results made with haystack %s, but this run's haystack is %s (%s); use another output directory",
					ErrModelResults, path, rec.Haystack, r.hayFP, r.haySource)
			}
		}
		if path != "" {
			if err := r.open(path, needNewline); err != nil {
				return nil, err
			}
			defer r.f.Close()
			if err := r.writeRunFile(filepath.Join(o.Out, ModelRunFile)); err != nil {
				return nil, err
			}
		}
		if err := r.work(ctx, pending); err != nil {
			return nil, err
		}
		if r.f != nil {
			if err := r.f.Close(); err != nil {
				return nil, fmt.Errorf("writing %s: %w", path, err)
			}
		}
	}
	return r.grid(), nil
}

// grid assembles the result from the scores.
func (r *modelRunner) grid() *Grid {
	o := r.o
	g := &Grid{
		Method:   "model:" + o.Model,
		Level:    "model",
		Contexts: slices.Clone(o.Contexts),
		Depths:   slices.Clone(o.Depths),
		Cells:    make([][]Cell, len(o.Depths)),
	}
	for i, d := range o.Depths {
		row := make([]Cell, len(o.Contexts))
		for j, c := range o.Contexts {
			sum := 0.0
			for s := range o.Samples {
				sum += r.scores[modelKeyOf(c, d, s)]
			}
			row[j] = Cell{Ctx: c, Depth: d, Score: sum / float64(o.Samples), N: o.Samples}
		}
		g.Cells[i] = row
	}
	return g
}

// work runs the pending samples on Concurrency workers; the first error
// stops them all.
func (r *modelRunner) work(ctx context.Context, pending []modelJob) error {
	return serving.ForEach(ctx, len(pending), r.o.Concurrency, func(ctx context.Context, i int) error {
		rec, err := r.sample(ctx, pending[i])
		if err != nil {
			return err
		}
		return r.record(rec)
	})
}

// record stores a finished sample: its line in the file, its score, the
// progress.
func (r *modelRunner) record(rec modelRecord) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f != nil {
		line, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if _, err := r.f.Write(append(line, '\n')); err != nil {
			return fmt.Errorf("writing %s: %w", r.f.Name(), err)
		}
	}
	r.scores[modelKeyOf(rec.Ctx, rec.Depth, rec.Sample)] = rec.Score
	r.done++
	if r.o.Progress != nil {
		r.o.Progress(r.done, r.total)
	}
	return nil
}

// setupErr classifies a failure while first talking to the server: no
// answer, or a 4xx, is the endpoint's fault.
func (r *modelRunner) setupErr(what string, err error) error {
	return r.c.SetupError(what, err)
}

// setup finds the tokenizer endpoint and learns the tokenizer: the special
// tokens it adds regardless, the sentence-end ids, whether it counts chat
// prompts.
func (r *modelRunner) setup(ctx context.Context) error {
	dot, err := r.c.ResolveTokenizer(ctx, ".")
	if err != nil {
		return r.setupErr("tokenizing", err)
	}
	// A server that ignores add_special_tokens=false still puts BOS in
	// front of every text: learn it from the empty text and strip it.
	empty, err := r.c.Tokenize(ctx, "", false)
	switch {
	case err == nil:
		r.prefix = empty
	case modelStatus(err) >= 400 && modelStatus(err) < 500:
		r.prefix = nil // the server refuses an empty prompt; assume it honours the flag
	default:
		return r.setupErr("tokenizing", err)
	}
	dot = modelStrip(dot, r.prefix)
	if len(dot) == 0 {
		return fmt.Errorf("%w: the server's tokenizer gives no token for %q", ErrModelEndpoint, ".")
	}
	r.period = map[int]bool{}
	for _, id := range dot {
		r.period[id] = true
	}
	ad, err := r.c.Tokenize(ctx, "a.", false)
	if err != nil {
		return r.setupErr("tokenizing", err)
	}
	if ad = modelStrip(ad, r.prefix); len(ad) > 0 && !r.period[ad[len(ad)-1]] {
		last := ad[len(ad)-1]
		s, err := r.c.Detokenize(ctx, []int{last})
		if err != nil {
			return r.setupErr("detokenizing", err)
		}
		if s == "." {
			r.period[last] = true
		}
	} else if _, err := r.c.Detokenize(ctx, dot); err != nil {
		// Make sure /detokenize exists before the run starts.
		return r.setupErr("detokenizing", err)
	}
	if r.o.Chat {
		_, err := r.c.TokenizeChat(ctx, modelChatMessages("probe."))
		switch {
		case err == nil:
			r.chatExact = true
		case modelStatus(err) >= 400 && modelStatus(err) < 500 && modelStatus(err) != http.StatusTooManyRequests,
			errors.Is(err, ErrModelEndpoint):
			r.env.warn(fmt.Sprintf("the server's /tokenize does not take chat messages (vLLM's does, SGLang's does not): "+
				"chat prompts are counted as system + user text plus %d tokens for the chat template, so they may end a few tokens short of, or over, the context length",
				modelChatReserve))
		default:
			return r.setupErr("tokenizing a chat prompt", err)
		}
	}
	return nil
}

// modelStatus is the HTTP status of a failed request, 0 if none.
func modelStatus(err error) int { return serving.Status(err) }

// modelStrip removes prefix from the front of ids.
func modelStrip(ids, prefix []int) []int {
	if len(prefix) > 0 && len(ids) >= len(prefix) && slices.Equal(ids[:len(prefix)], prefix) {
		return ids[len(prefix):]
	}
	return ids
}

// tokens tokenizes text without special tokens.
func (r *modelRunner) tokens(ctx context.Context, text string) ([]int, error) {
	ids, err := r.c.Tokenize(ctx, text, false)
	if err != nil {
		return nil, err
	}
	return modelStrip(ids, r.prefix), nil
}

// count is the length in tokens of the prompt around haystack, as the
// server will see it.
func (r *modelRunner) count(ctx context.Context, haystack string) (int, error) {
	if !r.o.Chat {
		ids, err := r.c.Tokenize(ctx, modelUserText(haystack), true)
		return len(ids), err
	}
	if r.chatExact {
		return r.c.TokenizeChat(ctx, modelChatMessages(haystack))
	}
	ids, err := r.c.Tokenize(ctx, modelSystem+"\n\n"+modelUserText(haystack), true)
	return len(ids) + modelChatReserve, err
}

// buildHaystack tokenizes the haystack until it has max(Contexts) tokens.
func (r *modelRunner) buildHaystack(ctx context.Context) error {
	need := slices.Max(r.o.Contexts)
	var ids []int
	if r.o.Haystack != "" {
		full, fp, files, err := modelReadHaystackDir(r.o.Haystack)
		if err != nil {
			return err
		}
		r.hayFP = fp
		r.haySource = fmt.Sprintf("%d .txt files of %s", files, r.o.Haystack)
		// Tokenize no more than needed: a prefix of generous length,
		// longer if it falls short, the whole directory repeated if
		// that falls short (as gkamradt's read_context_files).
		limit, reps := max(16*need, 1<<12), 1
		for range 16 {
			src, clipped := modelClipText(strings.Repeat(full, reps), limit)
			if ids, err = r.tokens(ctx, src); err != nil {
				return fmt.Errorf("tokenizing the haystack: %w", err)
			}
			if len(ids) >= need {
				break
			}
			if clipped {
				limit *= 4
			} else {
				reps = max(reps+1, need*reps/max(len(ids), 1)+1)
			}
		}
	} else {
		r.hayFP = modelFillerFingerprint(r.o.Seed)
		r.haySource = "built-in filler"
		chars := 6*need + 1024
		for range 10 {
			var err error
			if ids, err = r.tokens(ctx, modelFiller(r.o.Seed, chars)); err != nil {
				return fmt.Errorf("tokenizing the haystack: %w", err)
			}
			if len(ids) >= need {
				break
			}
			chars *= 2
		}
	}
	if len(ids) < need {
		return fmt.Errorf("%w: the haystack (%s) gives only %d tokens, fewer than the %d needed", ErrModelOptions, r.haySource, len(ids), need)
	}
	r.hay = ids[:need]
	inner := slices.ContainsFunc(r.o.Depths, func(d float64) bool { return d > 0 && d < 1 })
	if gap, found := modelMaxGap(r.hay, r.period); inner && !found {
		return fmt.Errorf("%w: the haystack (%s) has no sentence-end token (ids %v) in its first %d tokens, so every needle would go to depth 0",
			ErrModelOptions, r.haySource, modelSortedIDs(r.period), need)
	} else if inner && gap > modelGapWarn {
		r.env.warn(fmt.Sprintf("the haystack (%s) has a stretch of %d tokens without a sentence end: needles may land that far before their depth", r.haySource, gap))
	}
	return nil
}

// checkRoom fails early when the shortest context cannot hold the
// template, the question and a needle (each sample checks again with its
// own needle).
func (r *modelRunner) checkRoom(ctx context.Context) error {
	over, err := r.count(ctx, " "+modelNeedle("99999"))
	if err != nil {
		return fmt.Errorf("counting the template: %w", err)
	}
	if c := slices.Min(r.o.Contexts); c <= over {
		return fmt.Errorf("%w: a context of %d tokens leaves no room for the haystack (the template, needle and question take about %d)",
			ErrModelOptions, c, over)
	}
	return nil
}

func modelSortedIDs(m map[int]bool) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// sample runs one sample: build the prompt, ask, score.
func (r *modelRunner) sample(ctx context.Context, j modelJob) (modelRecord, error) {
	wrap := func(err error) error {
		return fmt.Errorf("ctx %d, depth %g, sample %d: %w", j.ctx, j.depth, j.sample, err)
	}
	key := modelKey(r.o.Seed, j.ctx, j.depth, j.sample)
	needleText := " " + modelNeedle(key)
	needle, err := r.tokens(ctx, needleText)
	if err != nil {
		return modelRecord{}, wrap(err)
	}
	over, err := r.count(ctx, needleText)
	if err != nil {
		return modelRecord{}, wrap(err)
	}
	b := j.ctx - over
	var text string
	var n, p int
	for try := 0; ; try++ {
		if b < 1 {
			return modelRecord{}, wrap(fmt.Errorf("%w: a context of %d tokens leaves no room for the haystack (the template, needle and question take %d)",
				ErrModelOptions, j.ctx, over))
		}
		if try == 8 {
			return modelRecord{}, wrap(fmt.Errorf("the prompt does not come down to %d tokens (last %d)", j.ctx, n))
		}
		var ids []int
		ids, p = modelInsert(r.hay[:b], needle, j.depth, r.period)
		if text, err = r.c.Detokenize(ctx, ids); err != nil {
			return modelRecord{}, wrap(err)
		}
		if n, err = r.count(ctx, text); err != nil {
			return modelRecord{}, wrap(err)
		}
		if n <= j.ctx {
			break
		}
		b -= n - j.ctx
	}
	start := time.Now()
	var answer string
	if r.o.Chat {
		answer, err = r.c.Chat(ctx, modelChatMessages(text), serving.Params{MaxTokens: r.o.MaxTokens})
	} else {
		answer, err = r.c.Complete(ctx, modelUserText(text), serving.Params{MaxTokens: r.o.MaxTokens})
	}
	if err != nil {
		return modelRecord{}, wrap(err)
	}
	return modelRecord{
		Ctx: j.ctx, Depth: j.depth, Sample: j.sample, Key: key, Answer: answer,
		Score: modelScore(r.scorer, answer, key), Scorer: r.scorer, Model: r.o.Model, Chat: r.o.Chat,
		Haystack: r.hayFP, PromptTokens: n, HaystackTokens: b, NeedleToken: p,
		Seconds: math.Round(time.Since(start).Seconds()*1000) / 1000,
	}, nil
}

// load reads the results file: the samples already done. A last line that
// does not parse (a run killed mid-write) is dropped with a warning and cut
// from the file; any other bad line is an error, as is a line of another
// model, chat mode or seed. needNewline: the file's last line lacks its
// newline.
func (r *modelRunner) load(path string) (map[modelCellKey]modelRecord, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrModelResults, err)
	}
	type span struct{ start, end int }
	var lines []span
	last := -1
	for off := 0; off < len(data); {
		end := len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			end = off + i
		}
		if len(bytes.TrimSpace(data[off:end])) > 0 {
			last = len(lines)
		}
		lines = append(lines, span{off, end})
		off = end + 1
	}
	out := map[modelCellKey]modelRecord{}
	needNewline := len(data) > 0 && data[len(data)-1] != '\n'
	for i, ln := range lines {
		text := bytes.TrimSpace(data[ln.start:ln.end])
		if len(text) == 0 {
			continue
		}
		rec, err := modelParseRecord(text)
		if err != nil {
			if i != last {
				return nil, false, fmt.Errorf("%w: %s line %d: %v", ErrModelResults, path, i+1, err)
			}
			r.env.warn(fmt.Sprintf("%s: ignoring its last line, which is incomplete or corrupt (%v); that sample runs again", path, err))
			if err := os.Truncate(path, int64(ln.start)); err != nil {
				return nil, false, fmt.Errorf("%w: cutting the bad last line: %v", ErrModelResults, err)
			}
			needNewline = false
			break
		}
		switch {
		case rec.Model != r.o.Model:
			return nil, false, fmt.Errorf("%w: %s line %d is a result of model %q, not %q; use another output directory",
				ErrModelResults, path, i+1, rec.Model, r.o.Model)
		case rec.Chat != r.o.Chat:
			return nil, false, fmt.Errorf("%w: %s line %d was made with chat=%v, this run has chat=%v; use another output directory",
				ErrModelResults, path, i+1, rec.Chat, r.o.Chat)
		case rec.Key != modelKey(r.o.Seed, rec.Ctx, rec.Depth, rec.Sample):
			return nil, false, fmt.Errorf("%w: %s line %d has pass key %s, not the one seed %d gives; it was made with another seed; use another output directory",
				ErrModelResults, path, i+1, rec.Key, r.o.Seed)
		}
		k := modelKeyOf(rec.Ctx, rec.Depth, rec.Sample)
		if _, dup := out[k]; !dup {
			out[k] = rec
		}
	}
	return out, needNewline, nil
}

// modelParseRecord parses and checks one results line.
func modelParseRecord(b []byte) (modelRecord, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return modelRecord{}, fmt.Errorf("not a JSON object: %v", err)
	}
	for _, f := range []string{"ctx", "depth", "sample", "key", "answer", "score", "model", "haystack"} {
		if _, ok := raw[f]; !ok {
			return modelRecord{}, fmt.Errorf("no %q field", f)
		}
	}
	var rec modelRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return modelRecord{}, err
	}
	switch {
	case rec.Ctx < 1:
		return rec, fmt.Errorf("ctx %d is not positive", rec.Ctx)
	case math.IsNaN(rec.Depth) || rec.Depth < 0 || rec.Depth > 1:
		return rec, fmt.Errorf("depth %v is outside 0..1", rec.Depth)
	case rec.Sample < 0:
		return rec, fmt.Errorf("sample %d is negative", rec.Sample)
	case rec.Key == "" || strings.Trim(rec.Key, "0123456789") != "":
		return rec, fmt.Errorf("key %q is not digits", rec.Key)
	case math.IsNaN(rec.Score) || rec.Score < 0 || rec.Score > 1:
		return rec, fmt.Errorf("score %v is outside 0..1", rec.Score)
	case rec.Model == "" || rec.Haystack == "":
		return rec, errors.New("empty model or haystack")
	}
	rec.Depth = modelDepth(rec.Depth)
	return rec, nil
}

// open opens the results file for appending.
func (r *modelRunner) open(path string, needNewline bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if needNewline {
		if _, err := f.Write([]byte{'\n'}); err != nil {
			f.Close()
			return err
		}
	}
	r.f = f
	return nil
}

// writeRunFile records how this run builds its prompts.
func (r *modelRunner) writeRunFile(path string) error {
	o := r.o
	counting := "server"
	if o.Chat && !r.chatExact {
		counting = fmt.Sprintf("estimate: system + user text + %d", modelChatReserve)
	}
	v := map[string]any{
		"schema":   "misabench.niah.model-run/v1",
		"endpoint": r.c.Root(),
		"model":    o.Model,
		"chat":     o.Chat,
		"scorer":   o.Scorer,
		"seed":     o.Seed,
		"contexts": o.Contexts, "depths": o.Depths, "samples": o.Samples,
		"max_tokens": o.MaxTokens, "temperature": 0,
		"haystack": map[string]any{"source": r.haySource, "fingerprint": r.hayFP, "tokens": len(r.hay)},
		"tokenizer": map[string]any{
			"endpoint":            r.c.TokenizerBase() + "/tokenize",
			"special_prefix":      r.prefix,
			"sentence_end_ids":    modelSortedIDs(r.period),
			"chat_prompt_counted": counting,
		},
		"template": map[string]any{
			"preamble": modelPreamble, "question": modelQuestion, "needle": " " + modelNeedle("{key}"),
			"system": modelSystem, "layout": "preamble + haystack with needle + \"\\n\\n\" + question",
		},
		"started": time.Now().UTC().Format(time.RFC3339),
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
