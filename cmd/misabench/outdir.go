package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// runsDir is where runs go when --out is not given.
const runsDir = "results/runs"

// defaultOutDir is results/runs/<UTC time>, with a suffix if a run of the
// same second already took that name.
func defaultOutDir(now time.Time) string {
	base := filepath.Join(runsDir, now.UTC().Format("20060102-150405"))
	dir := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
			return dir
		}
		dir = fmt.Sprintf("%s-%d", base, i)
	}
}

// writeDir fills the directory out atomically: write puts the files into a
// temporary directory next to out, which then replaces out (when out does
// not exist) or whose files are renamed into it one by one. On any error
// nothing is left behind but the parent directories.
func writeDir(out string, write func(dir string) error) (err error) {
	out = filepath.Clean(out)
	if fi, err := os.Stat(out); err == nil && !fi.IsDir() {
		return usageErrorf("--out %s exists and is not a directory", out)
	}
	parent := filepath.Dir(out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if _, err := os.Lstat(out); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, out); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
		return nil
	}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Rename(filepath.Join(tmp, e.Name()), filepath.Join(out, e.Name())); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
	}
	return os.Remove(tmp)
}
