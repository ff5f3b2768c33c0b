package report

import (
	"io"

	"github.com/misabench/misabench/eval"
)

// WriteAtomic writes path through write: the bytes go to a temporary file in
// the same directory, which is renamed over path only when write succeeded;
// on error it is removed. It is eval.WriteAtomic, re-exported so that callers
// writing views need not import eval for it.
func WriteAtomic(path string, write func(io.Writer) error) error {
	return eval.WriteAtomic(path, write)
}
