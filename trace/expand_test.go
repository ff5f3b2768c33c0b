package trace

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"b.safetensors", "a.safetensors", "notes.txt", ".hidden.safetensors", "c.safetensors.tmp-123"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.safetensors"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "link.safetensors")); err != nil {
		t.Fatal(err)
	}
	single := filepath.Join(dir, "notes.txt")
	got, err := Expand([]string{single, dir})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{single, filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors"), filepath.Join(dir, "link.safetensors")}
	if !slices.Equal(got, want) {
		t.Errorf("Expand = %v, want %v", got, want)
	}

	empty := filepath.Join(dir, "sub.safetensors")
	_, err = Expand([]string{dir, empty})
	tioWantFormatError(t, err, empty, "", "directory has no *.safetensors traces")

	missing := filepath.Join(dir, "missing")
	_, err = Expand([]string{missing})
	tioWantFormatError(t, err, missing, "", "no such file or directory")
	if !errors.Is(err, os.ErrNotExist) {
		t.Error("missing path does not unwrap to ErrNotExist")
	}

	if got, err := Expand(nil); err != nil || got != nil {
		t.Errorf("Expand(nil) = %v, %v", got, err)
	}
}
