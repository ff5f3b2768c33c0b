package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/misabench/misabench/trace"
)

// Exit codes (DESIGN.md §6).
const (
	exitOK    = 0
	exitFail  = 1 // a regression, a failed check, or a failure that is not the input's fault
	exitUsage = 2 // bad usage or bad input
)

// exitError carries the exit code an error maps to.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is a bad-usage or bad-input error (exit 2).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// badInput marks err as the input's fault (exit 2), keeping its message.
func badInput(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: exitUsage, err: err}
}

// failf is a failed check (exit 1).
func failf(format string, args ...any) error {
	return &exitError{code: exitFail, err: fmt.Errorf(format, args...)}
}

// classify gives every error a run function returns its exit code: errors
// that already carry one keep it; a trace that breaks the format, a missing
// file is bad input (2); anything else, an interrupted run included, is 1.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	var fe *trace.FormatError
	switch {
	case errors.As(err, &fe), errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return &exitError{code: exitUsage, err: err}
	case errors.Is(err, context.Canceled):
		return &exitError{code: exitFail, err: fmt.Errorf("interrupted: %w", err)}
	}
	return &exitError{code: exitFail, err: err}
}

// exitCode maps an error from the command tree to an exit code. Errors that
// the run functions return are classified (see classify); any other error
// comes from cobra itself — an unknown command or flag, a bad flag value,
// wrong arguments — and is bad usage.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitUsage
}
