package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/misabench/misabench/longbench"
	"github.com/misabench/misabench/serving"
)

// LongBenchRunOptions are the options of `misabench longbench run`.
type LongBenchRunOptions struct {
	// Endpoint is the server's URL; Model the served model's name.
	Endpoint, Model string
	// Data is the directory of the official JSONL files; Out the
	// prediction directory (pred/<model>/ in pred.py's layout).
	Data, Out string
	// Datasets to run (empty: all 21, or the 13 LongBench-E sets with E).
	Datasets []string
	E, Chat  bool
	// MaxLen is the prompt budget in tokens (0: no truncation).
	MaxLen, Concurrency, Retries, Limit int
	Timeout                             time.Duration
	Format                              string
	// Progress draws a progress bar on Stderr.
	Progress       bool
	Stdout, Stderr io.Writer
}

func newLongBenchRunCmd(a *app) *cobra.Command {
	opts := &LongBenchRunOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Generate LongBench predictions against an OpenAI-compatible server, as LongBench/pred.py does",
		Long: `run sends every record of the official LongBench v1 data files (or, with --e,
the LongBench-E files) to an OpenAI-compatible server (vLLM, SGLang) the way
LongBench/pred.py does, and writes the predictions in pred.py's layout, one
<dataset>.jsonl per data set in --out, for "misabench longbench score":

  - the official prompt of each data set (dataset2prompt.json);
  - middle truncation to --max-len tokens of the server's tokenizer
    (/tokenize, /detokenize): the start and the end of the prompt are kept;
    pred.py's budget is model2maxlen, the context window less about 500;
  - with --chat, the model's chat template (/v1/chat/completions, one user
    message) for every data set but trec, triviaqa, samsum, lsht, lcc and
    repobench-p, which go to /v1/completions as raw prompts (as in pred.py);
    without --chat every prompt is a raw completion;
  - greedy decoding, max_tokens from dataset2maxlen.json; samsum also stops at
    the "\n" token (stop_token_ids, min_tokens 1), as pred.py does.

Lines carry pred, answers, all_classes and length (pred.py's keys) and _id. A
rerun with the same --out skips the records already there and drops a line
cut short by a crash; a run that ends without error leaves its files in
data-file order, whatever --concurrency.
LongBench-E files are named after the base key, as pred.py names them: give
--e runs their own --out. Transient failures (connection errors, 429, 5xx)
are retried with exponential backoff; a 4xx stops the run.`,
		Example: `  misabench longbench run --endpoint http://localhost:8000 --model deepseek-ai/DeepSeek-V3.2 \
    --data data/ --out pred/v32-dsa --max-len 127500 --chat --concurrency 16
  misabench longbench run --endpoint http://localhost:8000 --model glm-5 --data data/ \
    --out pred_e/glm5-misa --e --datasets qasper,hotpotqa --chat
  misabench longbench score --pred pred/v32-dsa --pred pred/v32-misa`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			opts.Format = a.global.Format
			opts.Stdout, opts.Stderr, opts.Progress = a.out, a.errOut, a.errTTY
			return runLongBenchRun(cmd.Context(), opts)
		}),
	}
	f := cmd.Flags()
	servedModelAlias(f)
	f.StringVar(&opts.Endpoint, "endpoint", "", "base `URL` of an OpenAI-compatible server with /tokenize and /detokenize (vLLM, SGLang)")
	f.StringVar(&opts.Model, "served-model", "", "the served model's `name` (--model works too)")
	f.StringVar(&opts.Data, "data", "", "`dir`ectory of the official <dataset>.jsonl (and <dataset>_e.jsonl) files")
	f.StringVar(&opts.Out, "out", "", "prediction `dir`ectory: <dataset>.jsonl files, resumed on a rerun")
	f.StringSliceVar(&opts.Datasets, "datasets", nil, "data sets to run, a comma list (default: all 21, or the 13 LongBench-E sets with --e)")
	f.BoolVar(&opts.E, "e", false, "run LongBench-E (<dataset>_e.jsonl)")
	f.IntVar(&opts.MaxLen, "max-len", 0, "prompt budget in `tokens`, cut in the middle (pred.py's model2maxlen; 0: no truncation)")
	f.BoolVar(&opts.Chat, "chat", false, "apply the model's chat template where pred.py does (a chat model)")
	f.IntVar(&opts.Concurrency, "concurrency", 1, "requests in flight")
	f.IntVar(&opts.Retries, "retries", 3, "extra attempts after a transient failure (connection error, 429, 5xx)")
	f.IntVar(&opts.Limit, "limit", 0, "run only the first `N` records of each data set (0: all)")
	f.DurationVar(&opts.Timeout, "timeout", longbench.DefaultRunTimeout, "per-request timeout")
	return cmd
}

func runLongBenchRun(ctx context.Context, opts *LongBenchRunOptions) error {
	format, err := parseFormat(opts.Format, "table", "json", "csv")
	if err != nil {
		return err
	}
	for _, req := range []struct{ val, flag, what string }{
		{opts.Endpoint, "--endpoint", "the URL of an OpenAI-compatible server such as http://localhost:8000"},
		{opts.Model, "--model", "the name the server serves the model under"},
		{opts.Data, "--data", "the directory of the official LongBench JSONL files"},
		{opts.Out, "--out", "the directory the predictions go to"},
	} {
		if strings.TrimSpace(req.val) == "" {
			return usageErrorf("longbench run: give %s, %s", req.flag, req.what)
		}
	}
	bar := newProgress(opts.Stderr, opts.Progress, "records")
	res, err := longbench.Run(ctx, longbench.RunOptions{
		Endpoint: opts.Endpoint, Model: opts.Model, Data: opts.Data, Out: opts.Out,
		Datasets: opts.Datasets, E: opts.E, MaxLen: opts.MaxLen, Chat: opts.Chat,
		Concurrency: opts.Concurrency, Retries: opts.Retries, Timeout: opts.Timeout, Limit: opts.Limit,
		Progress: bar.update,
		Warn: func(s string) {
			fmt.Fprintln(writerOr(opts.Stderr), "misabench longbench run: warning:", s)
		},
	})
	bar.finish()
	if err != nil {
		return classifyLongBenchRun(err)
	}
	out := writerOr(opts.Stdout)
	switch format {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	case "csv":
		return longBenchRunCSV(out, res)
	}
	if err := renderPlain(out, longBenchRunHeader, longBenchRunRows(res), 2); err != nil {
		return err
	}
	e := ""
	if res.E {
		e = " --e"
	}
	fmt.Fprintf(out, "predictions in %s (<dataset>.jsonl); score with: misabench longbench score%s --pred %s\n", res.Out, e, res.Out)
	return nil
}

// classifyLongBenchRun marks the input's faults (options, data files,
// prediction files, a server that does not serve the model) as bad input.
func classifyLongBenchRun(err error) error {
	var le *longbench.LineError
	switch {
	case errors.Is(err, longbench.ErrRunOptions), errors.Is(err, longbench.ErrData), errors.Is(err, longbench.ErrPredFile),
		errors.Is(err, longbench.ErrUnknownDataset), errors.Is(err, serving.ErrBadURL), errors.Is(err, serving.ErrEndpoint),
		errors.As(err, &le):
		return badInput(err)
	}
	return err
}

var longBenchRunHeader = []string{"dataset", "route", "records", "resumed", "generated", "truncated"}

func longBenchRunRows(res *longbench.RunResult) [][]string {
	rows := make([][]string, 0, len(res.Datasets))
	for _, d := range res.Datasets {
		rows = append(rows, []string{d.Dataset, d.Route, strconv.Itoa(d.Records), strconv.Itoa(d.Resumed),
			strconv.Itoa(d.Generated), strconv.Itoa(d.Truncated)})
	}
	return rows
}

func longBenchRunCSV(w io.Writer, res *longbench.RunResult) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(longBenchRunHeader); err != nil {
		return err
	}
	if err := cw.WriteAll(longBenchRunRows(res)); err != nil {
		return err
	}
	return cw.Error()
}
