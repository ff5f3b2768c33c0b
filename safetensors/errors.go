package safetensors

import (
	"errors"
	"fmt"
	"io/fs"
)

// Error reports a file that breaks the safetensors format (or a rule of this
// reader), or a path that cannot be opened. It names the file, the tensor
// (empty when the rule is about the file as a whole, "__metadata__" for the
// metadata) and the rule, so that a user can fix the input without a
// debugger. Callers with their own format on top (trace, checkpoint) convert
// it into their error type, keeping the three fields.
//
// Failures of the system rather than of the input (mmap, munmap, a read
// error) are *fs.PathError values instead, with Op "mmap", "munmap" or
// "read".
type Error struct {
	File   string
	Tensor string
	Rule   string

	// Err is the underlying cause, if any (an *fs.PathError for a missing
	// file), so that errors.Is(err, fs.ErrNotExist) works.
	Err error
}

func (e *Error) Error() string {
	if e.Tensor == "" {
		return "safetensors " + e.File + ": " + e.Rule
	}
	return "safetensors " + e.File + ": tensor " + e.Tensor + ": " + e.Rule
}

// Unwrap returns the underlying cause, or nil.
func (e *Error) Unwrap() error { return e.Err }

// newError builds an *Error with a printf-style rule.
func newError(file, tensor, format string, args ...any) *Error {
	return &Error{File: file, Tensor: tensor, Rule: fmt.Sprintf(format, args...)}
}

// pathError turns the error of opening or stating a path into an *Error
// (a missing file is bad input, like a broken one) that still unwraps to the
// original error.
func pathError(path string, err error) error {
	rule := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		// The path is already in the message's prefix; keep the cause only.
		rule = pe.Op + ": " + pe.Err.Error()
	}
	return &Error{File: path, Rule: rule, Err: err}
}

// ErrDirectory is the cause (Error.Err) of the error Open returns for a
// directory, so that formats on top can word the rule their own way.
var ErrDirectory = errors.New("is a directory")

func errTooShort(file string, size int64) error {
	return newError(file, "", "file is %d bytes, shorter than the 8-byte header length", size)
}
