package eval

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// SchemaRecallV1 is the schema of a recall result file.
const SchemaRecallV1 = "misabench.recall/v1"

// InputInfo identifies one trace a result was computed from.
type InputInfo struct {
	Name    string `json:"name"`
	Hash    string `json:"hash"`
	Model   string `json:"model"`
	NCtx    int    `json:"n_ctx"`
	Queries int    `json:"queries"`
	Layers  []int  `json:"layers"`
	Dataset string `json:"dataset,omitempty"`
}

// Result is the content of a recall result file.
type Result struct {
	Schema  string    `json:"schema"`  // SchemaRecallV1
	Version string    `json:"version"` // misabench version that wrote it
	Created time.Time `json:"created"`
	Backend string    `json:"backend"`
	// Config is the effective configuration, after flags, file and
	// environment were merged.
	Config  map[string]any `json:"config,omitempty"`
	Inputs  []InputInfo    `json:"inputs"`
	Layers  []Stats        `json:"layers"`
	Overall []Stats        `json:"overall"`
	Groups  []Stats        `json:"groups,omitempty"`
	// Notes are caveats a reader must see with the numbers, e.g. that the
	// data are synthetic.
	Notes []string `json:"notes,omitempty"`
}

// Encode writes r as indented JSON. An empty Schema is written as
// SchemaRecallV1; any other schema is refused, since ReadResult would refuse
// the file later.
func (r *Result) Encode(w io.Writer) error {
	out := *r
	if out.Schema == "" {
		out.Schema = SchemaRecallV1
	}
	if out.Schema != SchemaRecallV1 {
		return fmt.Errorf("encode result: schema %q, want %q", out.Schema, SchemaRecallV1)
	}
	b, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	return nil
}

// WriteFile writes r to path as indented JSON, atomically: a reader (or a
// crash) never sees a half-written result.
func (r *Result) WriteFile(path string) error {
	return WriteAtomic(path, r.Encode)
}

// ReadResult reads a result file and checks its schema.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read result: %s does not exist: %w", path, err)
		}
		return nil, fmt.Errorf("read result: %w", err)
	}
	// Check the schema before the full decode, so that a file of another
	// kind is reported as such rather than as a confusing type error.
	var head struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("read result %s: not valid JSON: %w", path, err)
	}
	if head.Schema != SchemaRecallV1 {
		if head.Schema == "" {
			return nil, fmt.Errorf("read result %s: no \"schema\" key, want %q", path, SchemaRecallV1)
		}
		return nil, fmt.Errorf("read result %s: schema %q, want %q", path, head.Schema, SchemaRecallV1)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read result %s: %w", path, err)
	}
	return &r, nil
}

// WriteAtomic writes a file through write and then moves it into place: the
// data go to a temporary file in the same directory (so the rename cannot
// cross file systems), which is synced, closed and renamed over path. On
// any error the temporary file is removed and path is left as it was.
func WriteAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// Buffer small writers (encoders, CSV) so they do not issue a syscall
	// per record.
	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// CreateTemp makes the file private (0600); a result is meant to be read.
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
