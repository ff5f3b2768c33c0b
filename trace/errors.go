package trace

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/misabench/misabench/safetensors"
)

// FormatError reports input that breaks the trace contract: a file that is
// not a valid v1 trace, metadata or data the writer refuses, or a trace path
// that does not exist. It names the file, the tensor (empty when the rule is
// about the file as a whole) and the rule, so that the user can fix the input
// without a debugger. The CLI maps it to exit code 2 with errors.As.
type FormatError struct {
	File   string
	Tensor string
	Rule   string

	// err is the underlying cause, if any (an *fs.PathError for a missing
	// file), so that errors.Is(err, fs.ErrNotExist) keeps working. It is
	// unexported to keep the exported shape of the type to the three fields
	// callers match on.
	err error
}

func (e *FormatError) Error() string {
	if e.Tensor == "" {
		return "trace " + e.File + ": " + e.Rule
	}
	return "trace " + e.File + ": tensor " + e.Tensor + ": " + e.Rule
}

// Unwrap returns the underlying cause, or nil.
func (e *FormatError) Unwrap() error { return e.err }

// newFormatError builds a *FormatError with a printf-style rule.
func newFormatError(file, tensor, format string, args ...any) *FormatError {
	return &FormatError{File: file, Tensor: tensor, Rule: fmt.Sprintf(format, args...)}
}

// pathError turns the error of opening or stating a trace path into a
// *FormatError (a missing trace is bad input, like a broken one) that still
// unwraps to the original error.
func pathError(path string, err error) error {
	rule := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		// The path is already in the message's prefix; keep the cause only.
		rule = pe.Op + ": " + pe.Err.Error()
	}
	return &FormatError{File: path, Rule: rule, err: err}
}

// fromSafetensors converts the errors of package safetensors into this
// package's: an *safetensors.Error (a file that breaks the safetensors
// rules, a missing path, a fault on the mapping) becomes a *FormatError with
// the same file, tensor and rule, unwrapping to the same cause; a system
// failure (*fs.PathError from mmap, munmap or read) becomes "trace PATH: OP:
// cause". Other errors pass through.
func fromSafetensors(err error) error {
	if err == nil {
		return nil
	}
	if se, ok := err.(*safetensors.Error); ok {
		return &FormatError{File: se.File, Tensor: se.Tensor, Rule: se.Rule, err: se.Err}
	}
	if pe, ok := err.(*fs.PathError); ok && (pe.Op == "mmap" || pe.Op == "munmap" || pe.Op == "read") {
		return fmt.Errorf("trace %s: %s: %w", pe.Path, pe.Op, pe.Err)
	}
	return err
}

// catchFault runs fn with faults on the mapped file turned into a
// *FormatError (see safetensors.CatchFault); fn's own errors pass through.
func catchFault(file string, fn func() error) error {
	return fromSafetensors(safetensors.CatchFault(file, fn))
}
