// Command misabench measures how much of DeepSeek Sparse Attention's indexer
// can be skipped (MISA, MISA†, HISA against dense DSA) and at what cost in
// token recall. See README.md and DESIGN.md.
//
// This package only parses flags and wires packages together; the work is
// done by trace, indexer, eval and report.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mattn/go-isatty"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the process exit code:
// 0 ok, 1 a regression or a failed check, 2 bad usage or bad input.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := newApp(stdout, stderr)
	if f, ok := stderr.(*os.File); ok {
		a.errTTY = isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
	}
	root := newRootCmd(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	fmt.Fprintf(stderr, "misabench: %s\n", oneLine(err.Error()))
	return code
}

// oneLine folds a multi-line error message into one line.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}
