package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/misabench/misabench/eval"
	"github.com/misabench/misabench/report"
)

// RecallOptions are the options of `misabench recall`.
type RecallOptions struct {
	ExperimentOptions
	// Format of stdout: table, json or csv.
	Format string
	// Out is the output directory (empty: results/runs/<UTC time>).
	Out string

	Stdout, Stderr io.Writer
	// Progress draws a progress bar on Stderr.
	Progress bool
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

func newRecallCmd(a *app) *cobra.Command {
	opts := &RecallOptions{ExperimentOptions: defaultExperimentOptions()}
	cmd := &cobra.Command{
		Use:   "recall",
		Short: "Token recall of MISA, MISA† and HISA against DSA, per layer",
		Long: `recall runs DSA and the chosen methods on every layer of the traces (or of the
built-in synthetic source when no --trace is given) and reports, per layer and
overall, how many of DSA's top-k tokens each method keeps (recall), their IoU,
and the share of DSA's score mass kept.

The table goes to stdout (--format json or csv for machines); result.json,
recall.png and recall.svg are written under --out once the run has succeeded.`,
		Example: `  misabench recall
  misabench recall --router pooled,selfkey,qnorm,oracle --heads 8
  misabench recall --trace dumps/ --layers 0,30,60 --format csv`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			opts.Format, opts.Device, opts.Workers = a.global.Format, a.global.Device, a.global.Workers
			opts.Stdout, opts.Stderr, opts.Progress, opts.Now = a.out, a.errOut, a.errTTY, a.now
			return a.recallF(cmd.Context(), opts)
		}),
	}
	addExperimentFlags(cmd.Flags(), &opts.ExperimentOptions)
	cmd.Flags().StringVar(&opts.Out, "out", "", "output `dir`ectory (default results/runs/<UTC time>)")
	return cmd
}

// parseFormat checks a --format value.
func parseFormat(s string, allowed ...string) (string, error) {
	f := strings.ToLower(strings.TrimSpace(s))
	for _, a := range allowed {
		if f == a {
			return f, nil
		}
	}
	return "", usageErrorf("unknown --format %q (want %s)", s, strings.Join(allowed, ", "))
}

// runRecall runs a recall experiment and writes its outputs.
func runRecall(ctx context.Context, opts *RecallOptions) error {
	format, err := parseFormat(opts.Format, "table", "json", "csv")
	if err != nil {
		return err
	}
	stdout, stderr := writerOr(opts.Stdout), writerOr(opts.Stderr)
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	exp, err := opts.prepare(stderr)
	if err != nil {
		return err
	}
	defer exp.close()

	bar := newProgress(stderr, opts.Progress, "layers")
	bar.start(exp.layerCount())
	res, err := exp.run(ctx, bar.update, now)
	bar.finish()
	if err != nil {
		return err
	}

	// Render stdout first, so that a failure there leaves no files behind.
	var buf bytes.Buffer
	if err := renderResult(&buf, res, format); err != nil {
		return err
	}
	out := opts.Out
	if out == "" {
		out = defaultOutDir(now())
	}
	plot := hasNonTrivial(res.Layers)
	if err := writeDir(out, func(dir string) error { return writeRunFiles(dir, res, plot) }); err != nil {
		return err
	}
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		return err
	}
	if plot {
		fmt.Fprintf(stderr, "misabench: wrote %s (result.json, recall.png, recall.svg)\n", out)
	} else {
		fmt.Fprintf(stderr, "misabench: wrote %s (result.json; no plot: every query row sees at most k keys, so every method is trivially exact)\n", out)
	}
	return nil
}

// hasNonTrivial reports whether some row of stats has a recall to plot.
func hasNonTrivial(stats []eval.Stats) bool {
	for _, s := range stats {
		if s.Recall.N > 0 {
			return true
		}
	}
	return false
}

// renderResult writes a result to stdout's format.
func renderResult(w io.Writer, res *eval.Result, format string) error {
	switch format {
	case "json":
		return report.JSON(w, res)
	case "csv":
		stats := append(append(append([]eval.Stats{}, res.Layers...), res.Overall...), res.Groups...)
		return report.CSV(w, stats)
	}
	// One table, per layer then overall ("all"), so that the columns line up.
	caption := ""
	for _, n := range res.Notes {
		caption += "note: " + n + "\n"
	}
	caption = strings.TrimSuffix(caption, "\n")
	stats := append(append([]eval.Stats{}, res.Layers...), res.Overall...)
	if len(res.Groups) == 0 {
		return report.Table(w, stats, report.TableOptions{Caption: caption})
	}
	if err := report.Table(w, stats, report.TableOptions{}); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return report.Table(w, res.Groups, report.TableOptions{Caption: caption})
}

// writeRunFiles writes result.json, and with plot recall.png and
// recall.svg, into dir.
func writeRunFiles(dir string, res *eval.Result, plot bool) error {
	if err := res.WriteFile(filepath.Join(dir, "result.json")); err != nil {
		return err
	}
	if !plot {
		return nil
	}
	title := "token recall vs DSA"
	if len(res.Inputs) == 1 {
		title += " — " + res.Inputs[0].Name
	} else if len(res.Inputs) > 1 {
		title += fmt.Sprintf(" — %d traces", len(res.Inputs))
	}
	for _, n := range res.Notes {
		if n == syntheticNote {
			title += " (synthetic data)"
		}
	}
	return report.RecallPlot(res.Layers, title, filepath.Join(dir, "recall.png"), filepath.Join(dir, "recall.svg"))
}

func writerOr(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
