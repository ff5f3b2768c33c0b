package longbench

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadJiebaDirMissing: a missing file is fs.ErrNotExist naming its path,
// found before the dictionary is read (with or without cgo).
func TestLoadJiebaDirMissing(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadJiebaDir(dir)
	if dict, _ := JiebaFiles(dir); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), dict) {
		t.Errorf("empty directory: %v, want not-exist naming %s", err, dict)
	}
	if err := os.WriteFile(filepath.Join(dir, JiebaDictFile), []byte("not a dictionary\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadJiebaDir(dir)
	if _, hmm := JiebaFiles(dir); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), hmm) {
		t.Errorf("no HMM model: %v, want not-exist naming %s", err, hmm)
	}
}
