package longbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/misabench/misabench/eval"
	"github.com/misabench/misabench/serving"
)

// Run generates LongBench predictions against an OpenAI-compatible server
// as the official LongBench/pred.py does (§A.7), and writes them in its
// layout, which Score and eval.py read:
//
//  1. prompt = dataset2prompt[dataset].format(**record) (prompts.go);
//  2. middle truncation of the whole prompt, before any chat template, to
//     MaxLen tokens of the server's tokenizer: when the prompt (with the
//     special tokens the tokenizer adds, as pred.py counts it) is longer,
//     half = MaxLen/2 and prompt = detok(ids[:half]) + detok(ids[-half:]),
//     with the added special tokens (BOS) left out as
//     skip_special_tokens=True leaves them out;
//  3. with Chat, the chat template (one user message to
//     /v1/chat/completions) for every data set but trec, triviaqa,
//     samsum, lsht, lcc and repobench-p, which go to /v1/completions as
//     raw prompts; without Chat, every prompt goes to /v1/completions;
//  4. greedy decoding (temperature 0), max_tokens = dataset2maxlen; for
//     samsum, pred.py's extra EOS (the last token id of "\n") and
//     min_length = prompt + 1 become stop_token_ids and min_tokens = 1,
//     the vLLM/SGLang parameters with the same meaning;
//  5. one line {"pred","answers","all_classes","length","_id"} per record
//     in Out/<dataset>.jsonl — pred.py's four keys plus _id, which eval.py
//     ignores and a resumed run needs. LongBench-E files are named after
//     the base key, as pred.py names them (pred_e/<model>/qasper.jsonl), so
//     give LongBench-E its own Out.
//
// Lines are appended as records finish, each in one write; a crash leaves
// whole lines, and at most a partial last line, which the next run drops.
// A rerun with the same Out skips the records whose _id is already there
// (sending no request for them). When a run ends without error, every file
// it appended to is rewritten (atomically) in the data file's order, so
// that the result does not depend on Concurrency or on how often the run
// was resumed. (pred.py's own order is by GPU, §A.7 step 7; eval.py does
// not depend on it.)
//
// Known differences from pred.py: special tokens that occur inside the
// text itself survive truncation (decode skips them); samsum predictions
// lack the final "\n" (the stop token is not returned; eval.py cuts at
// the first line anyway); the tokenizer, chat template and generation are
// the server's, so they match pred.py's only as far as the served model's
// Hugging Face files do.
func Run(ctx context.Context, o RunOptions) (*RunResult, error) {
	r, err := newRunner(o)
	if err != nil {
		return nil, err
	}
	return r.run(ctx)
}

// RunOptions configures Run. Zero values take the defaults given.
type RunOptions struct {
	// Endpoint is the server's base URL (http://localhost:8000, with or
	// without /v1); Model the served model name.
	Endpoint, Model string
	// Data is the directory of the official <key>.jsonl (and <key>_e.jsonl)
	// files; Out the prediction directory.
	Data, Out string
	// Datasets are the data sets to run (base keys; "<key>_e" is accepted
	// with E). Empty: all 21, or with E the 13 LongBench-E sets.
	Datasets []string
	// E runs the LongBench-E files <key>_e.jsonl.
	E bool
	// MaxLen is the prompt budget in tokens (pred.py's model2maxlen, which
	// is the model's context window less about 500); 0 leaves prompts
	// whole. It must leave room for the chat template and max_tokens.
	MaxLen int
	// Chat applies the served model's chat template where pred.py does.
	Chat bool
	// Concurrency is the number of requests in flight (default 1).
	Concurrency int
	// Retries is the number of extra attempts after a transient failure
	// (connection error, timeout, 408, 429, 5xx); 4xx answers fail at once.
	Retries int
	// Timeout bounds each request (default 10 minutes).
	Timeout time.Duration
	// Limit runs only the first Limit records of each data set (0: all).
	Limit int
	// Progress, if not nil, is called with the records done (those found
	// in Out included) and the total, once at the start and after each
	// record, from one goroutine at a time.
	Progress func(done, total int)
	// Warn reports a repaired prediction file; nil prints to stderr.
	Warn func(string)
	// HTTPClient makes the requests; nil means a default client.
	HTTPClient *http.Client
	// Backoff and BackoffMax are the retry delays (defaults: those of
	// package serving).
	Backoff, BackoffMax time.Duration
}

// DefaultRunTimeout is RunOptions.Timeout's default.
const DefaultRunTimeout = 10 * time.Minute

// RunFile is the file in Out that records the settings that shape the
// predictions (model, LongBench-E, MaxLen, Chat); a rerun with other
// settings is refused.
const RunFile = "longbench-run.json"

// Error classes of Run, for errors.Is.
var (
	// ErrRunOptions: the options are unusable.
	ErrRunOptions = errors.New("longbench run: bad options")
	// ErrData: a data file is missing or unusable (bad JSON lines come as
	// *LineError too).
	ErrData = errors.New("longbench run: unusable data")
	// ErrPredFile: a prediction file in Out cannot be resumed: a corrupt
	// line other than the last, a line without _id, an _id that is not
	// in the data file, or a run file with other settings.
	ErrPredFile = errors.New("longbench run: unusable prediction file")
)

// DatasetRun is what Run did for one data set.
type DatasetRun struct {
	Dataset string `json:"dataset"` // base key
	File    string `json:"file"`
	// Route is "chat" or "completion".
	Route string `json:"route"`
	// Records is the number of records run (after Limit); Resumed of them
	// were already in File, Generated were generated now, Truncated of
	// those had their prompt cut in the middle.
	Records   int `json:"records"`
	Resumed   int `json:"resumed"`
	Generated int `json:"generated"`
	Truncated int `json:"truncated"`
}

// RunResult is what Run did.
type RunResult struct {
	Out      string       `json:"out"`
	E        bool         `json:"e"`
	Datasets []DatasetRun `json:"datasets"`
}

// runSet is one data set of a run.
type runSet struct {
	d       Dataset
	path    string
	recs    []Record // after Limit
	order   map[string][]int
	pending []int // indexes into recs
	res     *DatasetRun

	mu sync.Mutex
	f  *os.File
}

type runner struct {
	o    RunOptions
	root string
	sets []*runSet
	c    *serving.Client

	special map[int]bool // token ids the tokenizer adds (BOS, EOS)
	newline int          // last token id of "\n" (samsum's extra EOS)

	mu          sync.Mutex
	done, total int
}

// newRunner checks o, reads the data files and the prediction files
// already in Out.
func newRunner(o RunOptions) (*runner, error) {
	root, err := serving.Root(o.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRunOptions, err)
	}
	o.Model = strings.TrimSpace(o.Model)
	switch {
	case o.Model == "":
		return nil, fmt.Errorf("%w: no model name", ErrRunOptions)
	case o.Data == "":
		return nil, fmt.Errorf("%w: no data directory", ErrRunOptions)
	case o.Out == "":
		return nil, fmt.Errorf("%w: no output directory", ErrRunOptions)
	case o.MaxLen < 0 || o.MaxLen == 1:
		return nil, fmt.Errorf("%w: max length %d: give 0 (no truncation) or at least 2 tokens", ErrRunOptions, o.MaxLen)
	case o.Concurrency < 0:
		return nil, fmt.Errorf("%w: concurrency %d is negative", ErrRunOptions, o.Concurrency)
	case o.Retries < 0:
		return nil, fmt.Errorf("%w: retries %d is negative", ErrRunOptions, o.Retries)
	case o.Timeout < 0:
		return nil, fmt.Errorf("%w: timeout %v is negative", ErrRunOptions, o.Timeout)
	case o.Limit < 0:
		return nil, fmt.Errorf("%w: limit %d is negative", ErrRunOptions, o.Limit)
	}
	o.Concurrency = max(o.Concurrency, 1)
	if o.Timeout == 0 {
		o.Timeout = DefaultRunTimeout
	}
	if o.Warn == nil {
		o.Warn = func(s string) { fmt.Fprintln(os.Stderr, "longbench run: warning:", s) }
	}
	names, err := runDatasets(o.Datasets, o.E)
	if err != nil {
		return nil, err
	}
	r := &runner{o: o, root: root}
	for _, d := range names {
		s, err := r.loadSet(d)
		if err != nil {
			return nil, err
		}
		r.sets = append(r.sets, s)
	}
	return r, nil
}

// runDatasets resolves the data set names: base keys, in §A.2 order.
func runDatasets(names []string, e bool) ([]Dataset, error) {
	if len(names) == 0 {
		for _, d := range Datasets {
			if !e || d.E {
				names = append(names, d.Name)
			}
		}
	}
	want := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		d, err := Lookup(n)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRunOptions, err)
		}
		switch {
		case e && !d.E:
			return nil, fmt.Errorf("%w: %w: %q has no LongBench-E config (the 13 are %s)",
				ErrRunOptions, ErrUnknownDataset, n, strings.Join(ESets, ", "))
		case !e && n != d.Name:
			return nil, fmt.Errorf("%w: %q is a LongBench-E set: run it as %q with E (--e)", ErrRunOptions, n, d.Name)
		}
		want[d.Name] = true
	}
	var out []Dataset
	for _, d := range Datasets {
		if want[d.Name] {
			out = append(out, d)
		}
	}
	return out, nil
}

// loadSet reads a data set's records and what its prediction file holds.
func (r *runner) loadSet(d Dataset) (*runSet, error) {
	file := filepath.Join(r.o.Data, FileName(d.Name, r.o.E))
	recs, err := ReadDataset(r.o.Data, d.Name, r.o.E)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s: %w (the official data.zip unpacks to data/<key>.jsonl and data/<key>_e.jsonl; choose data sets with --datasets)",
			ErrData, file, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrData, err)
	}
	s := &runSet{d: d, path: filepath.Join(r.o.Out, d.Name+".jsonl"), order: map[string][]int{}}
	for i, rec := range recs {
		if rec.ID == "" {
			return nil, fmt.Errorf("%w: %s: record %d has no _id", ErrData, file, i+1)
		}
		s.order[rec.ID] = append(s.order[rec.ID], i)
		if r.o.Limit == 0 || i < r.o.Limit {
			if _, err := BuildPrompt(d.Name, rec); err != nil {
				return nil, fmt.Errorf("%w: %s: record %d (_id %s): %w", ErrData, file, i+1, rec.ID, err)
			}
		}
	}
	if r.o.Limit > 0 && len(recs) > r.o.Limit {
		recs = recs[:r.o.Limit]
	}
	s.recs = recs
	route := "completion"
	if r.o.Chat && ChatTemplate(d.Name) {
		route = "chat"
	}
	s.res = &DatasetRun{Dataset: d.Name, File: s.path, Route: route, Records: len(recs)}

	done, err := r.loadPreds(s)
	if err != nil {
		return nil, err
	}
	for i, rec := range recs {
		if done[rec.ID] > 0 {
			done[rec.ID]--
			s.res.Resumed++
			continue
		}
		s.pending = append(s.pending, i)
	}
	return s, nil
}

// loadPreds reads a prediction file written by Run: the count of lines per
// _id. A last line without its newline (a run killed mid-write) is cut
// from the file with a warning.
func (r *runner) loadPreds(s *runSet) (map[string]int, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]int{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPredFile, err)
	}
	if cut := bytes.LastIndexByte(data, '\n') + 1; cut < len(data) {
		r.o.Warn(fmt.Sprintf("%s: dropping its incomplete last line (%d bytes, a run stopped mid-write); that record runs again", s.path, len(data)-cut))
		if err := os.Truncate(s.path, int64(cut)); err != nil {
			return nil, fmt.Errorf("%w: cutting the incomplete last line: %w", ErrPredFile, err)
		}
		data = data[:cut]
	}
	done := map[string]int{}
	for n, line := range bytes.SplitAfter(data, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var p Record
		if err := json.Unmarshal(line, &p); err != nil {
			return nil, fmt.Errorf("%w: %s line %d: %v", ErrPredFile, s.path, n+1, err)
		}
		switch {
		case p.Pred == nil:
			return nil, fmt.Errorf("%w: %s line %d has no \"pred\"", ErrPredFile, s.path, n+1)
		case p.ID == "":
			return nil, fmt.Errorf("%w: %s line %d has no \"_id\", so it was not written by longbench run and cannot be resumed; use another output directory",
				ErrPredFile, s.path, n+1)
		case done[p.ID] >= len(s.order[p.ID]):
			return nil, fmt.Errorf("%w: %s line %d: _id %s is not a record of %s (or is there twice); is the output directory for another data version, or for LongBench-E?",
				ErrPredFile, s.path, n+1, p.ID, filepath.Join(r.o.Data, FileName(s.d.Name, r.o.E)))
		}
		done[p.ID]++
	}
	return done, nil
}

// runSettings are the settings that shape predictions (RunFile).
type runSettings struct {
	Schema string `json:"schema"`
	Model  string `json:"model"`
	E      bool   `json:"e"`
	MaxLen int    `json:"max_len"`
	Chat   bool   `json:"chat"`
}

const runSchema = "misabench.longbench-run/v1"

func (r *runner) settings() runSettings {
	return runSettings{Schema: runSchema, Model: r.o.Model, E: r.o.E, MaxLen: r.o.MaxLen, Chat: r.o.Chat}
}

// checkRunFile refuses an Out written with other settings.
func (r *runner) checkRunFile() error {
	path := filepath.Join(r.o.Out, RunFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPredFile, err)
	}
	var old runSettings
	if err := json.Unmarshal(b, &old); err != nil || old.Schema != runSchema {
		return fmt.Errorf("%w: %s is not a %s file", ErrPredFile, path, runSchema)
	}
	now := r.settings()
	var diff []string
	if old.Model != now.Model {
		diff = append(diff, fmt.Sprintf("model %q, not %q", old.Model, now.Model))
	}
	if old.E != now.E {
		diff = append(diff, fmt.Sprintf("LongBench-E %v, not %v", old.E, now.E))
	}
	if old.MaxLen != now.MaxLen {
		diff = append(diff, fmt.Sprintf("max length %d, not %d", old.MaxLen, now.MaxLen))
	}
	if old.Chat != now.Chat {
		diff = append(diff, fmt.Sprintf("chat %v, not %v", old.Chat, now.Chat))
	}
	if len(diff) > 0 {
		return fmt.Errorf("%w: %s holds predictions made with %s; use another output directory", ErrPredFile, r.o.Out, strings.Join(diff, ", "))
	}
	return nil
}

func (r *runner) run(ctx context.Context) (*RunResult, error) {
	res := &RunResult{Out: r.o.Out, E: r.o.E}
	var jobs [][2]int // set, record
	samsum := false
	for si, s := range r.sets {
		res.Datasets = append(res.Datasets, *s.res)
		r.total += len(s.recs)
		r.done += s.res.Resumed
		for _, i := range s.pending {
			jobs = append(jobs, [2]int{si, i})
		}
		samsum = samsum || (s.d.Name == "samsum" && len(s.pending) > 0)
	}
	if err := r.checkRunFile(); err != nil {
		return nil, err
	}
	if r.o.Progress != nil {
		r.o.Progress(r.done, r.total)
	}
	if len(jobs) == 0 {
		return res, nil
	}
	c, err := serving.New(r.root, r.o.Model, serving.Options{
		HTTPClient: r.o.HTTPClient, Conns: r.o.Concurrency + 2, Retries: r.o.Retries, Timeout: r.o.Timeout,
		Backoff: r.o.Backoff, BackoffMax: r.o.BackoffMax,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRunOptions, err)
	}
	r.c = c
	if r.o.MaxLen > 0 || samsum {
		if err := r.setupTokenizer(ctx); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(r.o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("creating the output directory: %w", err)
	}
	if err := writeFile(filepath.Join(r.o.Out, RunFile), r.runFileBytes()); err != nil {
		return nil, err
	}
	for _, s := range r.sets {
		if len(s.pending) == 0 {
			continue
		}
		f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			r.closeAll()
			return nil, fmt.Errorf("opening the prediction file: %w", err)
		}
		s.f = f
	}
	err = serving.ForEach(ctx, len(jobs), r.o.Concurrency, func(ctx context.Context, j int) error {
		return r.one(ctx, r.sets[jobs[j][0]], jobs[j][1])
	})
	if cerr := r.closeAll(); err == nil {
		err = cerr
	}
	for si, s := range r.sets {
		res.Datasets[si] = *s.res
	}
	if err != nil {
		return res, err
	}
	for _, s := range r.sets {
		if len(s.pending) > 0 {
			if err := s.sortFile(); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

func (r *runner) runFileBytes() []byte {
	b, _ := json.MarshalIndent(struct {
		runSettings
		Endpoint string    `json:"endpoint"`
		Started  time.Time `json:"started"`
	}{r.settings(), r.root, time.Now().UTC().Truncate(time.Second)}, "", "  ")
	return append(b, '\n')
}

// closeAll syncs and closes the open prediction files.
func (r *runner) closeAll() error {
	var first error
	for _, s := range r.sets {
		s.mu.Lock()
		if s.f != nil {
			err := s.f.Sync()
			if cerr := s.f.Close(); err == nil {
				err = cerr
			}
			if err != nil && first == nil {
				first = fmt.Errorf("writing %s: %w", s.path, err)
			}
			s.f = nil
		}
		s.mu.Unlock()
	}
	return first
}

// setupTokenizer finds the tokenizer endpoint and learns the special
// tokens it adds and the id of "\n", classifying first-contact failures.
func (r *runner) setupTokenizer(ctx context.Context) error {
	nl, err := r.c.ResolveTokenizer(ctx, "\n")
	if err != nil {
		return r.c.SetupError("tokenizing", err)
	}
	if len(nl) == 0 {
		return fmt.Errorf("%w: the server's tokenizer gives no token for \"\\n\"", serving.ErrEndpoint)
	}
	// pred.py: tokenizer.encode("\n", add_special_tokens=False)[-1].
	r.newline = nl[len(nl)-1]
	r.special = map[int]bool{}
	empty, err := r.c.Tokenize(ctx, "", true)
	if err == nil {
		for _, id := range empty {
			r.special[id] = true
		}
		return nil
	}
	if st := serving.Status(err); st < 400 || st >= 500 || st == http.StatusTooManyRequests {
		return r.c.SetupError("tokenizing", err)
	}
	// The server refuses an empty text: the special tokens are what
	// add_special_tokens adds to "\n".
	with, err := r.c.Tokenize(ctx, "\n", true)
	if err != nil {
		return r.c.SetupError("tokenizing", err)
	}
	for _, id := range with {
		if !slices.Contains(nl, id) {
			r.special[id] = true
		}
	}
	return nil
}

// one runs one record and appends its line.
func (r *runner) one(ctx context.Context, s *runSet, i int) error {
	rec := s.recs[i]
	pred, truncated, err := r.generate(ctx, s, rec)
	if err != nil {
		if ctx.Err() == nil && serving.Status(err) == http.StatusBadRequest && r.o.MaxLen == 0 {
			err = fmt.Errorf("%w (prompts are not truncated: is this one longer than the model's context? set a max length, --max-len)", err)
		}
		return fmt.Errorf("%s record %d (_id %s): %w", s.d.Name, i+1, rec.ID, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // like json.dump(..., ensure_ascii=False)
	if err := enc.Encode(predLine{Pred: pred, Answers: rec.Answers, AllClasses: rec.AllClasses, Length: rec.Length, ID: rec.ID}); err != nil {
		return fmt.Errorf("%s record %d: %w", s.d.Name, i+1, err)
	}
	s.mu.Lock()
	_, err = s.f.Write(buf.Bytes())
	if err == nil {
		s.res.Generated++
		if truncated {
			s.res.Truncated++
		}
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("writing %s: %w", s.path, err)
	}
	r.mu.Lock()
	r.done++
	if r.o.Progress != nil {
		r.o.Progress(r.done, r.total)
	}
	r.mu.Unlock()
	return nil
}

// predLine is one line of a prediction file: pred.py's keys, in its
// order, then _id.
type predLine struct {
	Pred       string   `json:"pred"`
	Answers    []string `json:"answers"`
	AllClasses []string `json:"all_classes"`
	Length     int      `json:"length"`
	ID         string   `json:"_id"`
}

// generate builds, truncates and sends one prompt.
func (r *runner) generate(ctx context.Context, s *runSet, rec Record) (pred string, truncated bool, err error) {
	prompt, err := BuildPrompt(s.d.Name, rec)
	if err != nil {
		return "", false, err
	}
	if r.o.MaxLen > 0 {
		if prompt, truncated, err = r.truncate(ctx, prompt); err != nil {
			return "", false, err
		}
	}
	p := serving.Params{MaxTokens: s.d.MaxGen}
	if s.d.Name == "samsum" {
		p.StopTokenIDs, p.MinTokens = []int{r.newline}, 1
	}
	if s.res.Route == "chat" {
		pred, err = r.c.Chat(ctx, []serving.Message{{Role: "user", Content: prompt}}, p)
	} else {
		pred, err = r.c.Complete(ctx, prompt, p)
	}
	return pred, truncated, err
}

// truncate cuts prompt to MaxLen tokens in the middle (§A.7 step 2).
func (r *runner) truncate(ctx context.Context, prompt string) (string, bool, error) {
	ids, err := r.c.Tokenize(ctx, prompt, true)
	if err != nil {
		return "", false, fmt.Errorf("tokenizing the prompt: %w", err)
	}
	if len(ids) <= r.o.MaxLen {
		return prompt, false, nil
	}
	half := r.o.MaxLen / 2
	head, tail := ids[:half], ids[len(ids)-half:]
	// decode(..., skip_special_tokens=True): the added BOS (or EOS) goes.
	for len(head) > 0 && r.special[head[0]] {
		head = head[1:]
	}
	for len(tail) > 0 && r.special[tail[len(tail)-1]] {
		tail = tail[:len(tail)-1]
	}
	a, err := r.c.Detokenize(ctx, head)
	if err != nil {
		return "", false, fmt.Errorf("detokenizing the prompt's start: %w", err)
	}
	b, err := r.c.Detokenize(ctx, tail)
	if err != nil {
		return "", false, fmt.Errorf("detokenizing the prompt's end: %w", err)
	}
	return a + b, true, nil
}

// sortFile rewrites the prediction file in the data file's order, if it
// is not in that order already (records finish out of order with
// Concurrency > 1, and a resumed run appends), atomically.
func (s *runSet) sortFile() error {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("reading %s back: %w", s.path, err)
	}
	type line struct {
		pos  int
		text []byte
	}
	var lines []line
	seen := map[string]int{}
	for _, text := range bytes.SplitAfter(data, []byte{'\n'}) {
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		var p struct {
			ID string `json:"_id"`
		}
		if err := json.Unmarshal(text, &p); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrPredFile, s.path, err)
		}
		pos := len(s.order[p.ID]) // unknown ids (none, after loadPreds) go last
		if k := seen[p.ID]; k < len(s.order[p.ID]) {
			pos = s.order[p.ID][k]
		}
		seen[p.ID]++
		lines = append(lines, line{pos, text})
	}
	if sort.SliceIsSorted(lines, func(a, b int) bool { return lines[a].pos < lines[b].pos }) {
		return nil
	}
	sort.SliceStable(lines, func(a, b int) bool { return lines[a].pos < lines[b].pos })
	return eval.WriteAtomic(s.path, func(w io.Writer) error {
		for _, l := range lines {
			if _, err := w.Write(l.text); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeFile writes data to path atomically.
func writeFile(path string, data []byte) error {
	return eval.WriteAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
