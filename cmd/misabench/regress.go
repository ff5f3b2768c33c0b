package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/misabench/misabench/eval"
	"github.com/misabench/misabench/report"
)

// RegressOptions are the options of `misabench regress`.
type RegressOptions struct {
	ExperimentOptions
	// Baseline is the result file to compare against.
	Baseline string
	// Update rewrites the baseline with this run's result instead of
	// failing on a difference.
	Update bool
	// Tolerance is the largest allowed drop of mean recall.
	Tolerance float64
	// Format of stdout: table or json.
	Format string

	Stdout, Stderr io.Writer
	Progress       bool
	Now            func() time.Time
}

func newRegressCmd(a *app) *cobra.Command {
	opts := &RegressOptions{ExperimentOptions: defaultExperimentOptions(), Tolerance: 0.01}
	cmd := &cobra.Command{
		Use:   "regress",
		Short: "Recompute an experiment and compare it with a baseline result",
		Long: `regress recomputes the experiment a config describes (the same options as
recall) and compares mean recall per method, per layer and overall, with a
baseline result. It exits 1 when a mean dropped by more than --tolerance or a
baseline row is missing, 0 otherwise. --update rewrites the baseline instead.`,
		Example: `  misabench regress --config configs/ci.yaml --baseline results/baseline/ci.json
  misabench regress --config configs/ci.yaml --baseline results/baseline/ci.json --update`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			opts.Format, opts.Device, opts.Workers = a.global.Format, a.global.Device, a.global.Workers
			opts.Stdout, opts.Stderr, opts.Progress, opts.Now = a.out, a.errOut, a.errTTY, a.now
			return a.regressF(cmd.Context(), opts)
		}),
	}
	addExperimentFlags(cmd.Flags(), &opts.ExperimentOptions)
	cmd.Flags().StringVar(&opts.Baseline, "baseline", "", "baseline result `file` (result.json of an earlier run)")
	cmd.Flags().BoolVar(&opts.Update, "update", false, "write this run's result to --baseline (atomically) and exit 0")
	cmd.Flags().Float64Var(&opts.Tolerance, "tolerance", opts.Tolerance, "largest allowed drop of mean recall")
	return cmd
}

// runRegress recomputes the experiment and compares it with the baseline.
func runRegress(ctx context.Context, opts *RegressOptions) error {
	format, err := parseFormat(opts.Format, "table", "json")
	if err != nil {
		return err
	}
	if opts.Baseline == "" {
		return usageErrorf("--baseline is required")
	}
	if opts.Tolerance < 0 || opts.Tolerance > 1 {
		return usageErrorf("--tolerance %g must be in [0, 1]", opts.Tolerance)
	}
	stdout, stderr := writerOr(opts.Stdout), writerOr(opts.Stderr)
	now := opts.Now
	if now == nil {
		now = time.Now
	}

	// Read the baseline before the work, so that a missing one fails fast.
	base, baseErr := eval.ReadResult(opts.Baseline)
	if baseErr != nil && !opts.Update {
		hint := "create it with --update"
		if !errors.Is(baseErr, fs.ErrNotExist) {
			hint = "fix it, or rewrite it with --update"
		}
		return usageErrorf("baseline: %v (%s)", baseErr, hint)
	}

	exp, err := opts.prepare(stderr)
	if err != nil {
		return err
	}
	defer exp.close()
	bar := newProgress(stderr, opts.Progress, "layers")
	bar.start(exp.layerCount())
	cur, err := exp.run(ctx, bar.update, now)
	bar.finish()
	if err != nil {
		return err
	}

	if opts.Update {
		if base != nil {
			d := eval.Compare(base, cur, eval.Tolerance{Recall: opts.Tolerance})
			if err := renderDiff(stdout, d, format); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(filepath.Dir(opts.Baseline), 0o755); err != nil {
			return err
		}
		if err := cur.WriteFile(opts.Baseline); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "misabench: wrote baseline %s\n", opts.Baseline)
		return nil
	}

	d := eval.Compare(base, cur, eval.Tolerance{Recall: opts.Tolerance})
	if err := renderDiff(stdout, d, format); err != nil {
		return err
	}
	if d.Failed {
		n := 0
		for _, r := range d.Rows {
			if r.Fail {
				n++
			}
		}
		return failf("regression: %d row(s) worse than baseline %s by more than %g", n, opts.Baseline, opts.Tolerance)
	}
	fmt.Fprintf(stderr, "misabench: no regression against %s (tolerance %g)\n", opts.Baseline, opts.Tolerance)
	return nil
}

func renderDiff(w io.Writer, d eval.Diff, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	return report.DiffTable(w, d)
}
