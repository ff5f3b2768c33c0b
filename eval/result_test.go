package eval

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleResult is a small result built through the accumulator.
func sampleResult(t *testing.T) *Result {
	t.Helper()
	in, l0, l1 := fixture()
	a := NewAccumulator()
	if err := a.Add("s", "ds", 0, in, l0); err != nil {
		t.Fatal(err)
	}
	if err := a.Add("s", "ds", 1, in, l1); err != nil {
		t.Fatal(err)
	}
	return &Result{
		Schema:  SchemaRecallV1,
		Version: "test",
		Created: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Backend: "cpu",
		Config:  map[string]any{"topk": 2.0, "methods": []any{"dsa", "misa"}},
		Inputs:  []InputInfo{{Name: "a.safetensors", Hash: "abc", Model: "m", NCtx: 8, Queries: 3, Layers: []int{0, 1}, Dataset: "ds"}},
		Layers:  a.Layers(),
		Overall: a.Overall(),
		Groups:  a.Groups(),
		Notes:   []string{"synthetic data: not a claim about real models"},
	}
}

func TestResultRoundTrip(t *testing.T) {
	r := sampleResult(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "recall.json")
	if err := r.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadResult(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("round trip changed the result:\n got %+v\nwant %+v", got, r)
	}
	// Only the result is left: no temporary file.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after WriteFile, want 1", len(entries))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, err %v; want 0644", fi.Mode(), err)
	}
}

func TestResultEmptySchemaFilled(t *testing.T) {
	r := sampleResult(t)
	r.Schema = ""
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadResult(path); err != nil || got.Schema != SchemaRecallV1 {
		t.Errorf("schema %q, err %v", got.Schema, err)
	}
	if r.Schema != "" {
		t.Error("WriteFile modified its receiver")
	}
}

func TestReadResultErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	_, err := ReadResult(filepath.Join(dir, "nope.json"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "nope.json") {
		t.Errorf("missing file: %v", err)
	}
	_, err = ReadResult(write("bad.json", `{"schema": "misabench.recall/v1",`))
	if err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("bad JSON: %v", err)
	}
	_, err = ReadResult(write("trace.json", `{"schema": "misabench.trace/v1"}`))
	if err == nil || !strings.Contains(err.Error(), `schema "misabench.trace/v1", want "misabench.recall/v1"`) {
		t.Errorf("wrong schema: %v", err)
	}
	_, err = ReadResult(write("none.json", `{"layers": []}`))
	if err == nil || !strings.Contains(err.Error(), `no "schema"`) {
		t.Errorf("no schema: %v", err)
	}
	_, err = ReadResult(write("types.json", `{"schema": "misabench.recall/v1", "layers": 3}`))
	if err == nil || !strings.Contains(err.Error(), "types.json") {
		t.Errorf("wrong types: %v", err)
	}

	r := sampleResult(t)
	r.Schema = "misabench.recall/v9"
	if err := r.WriteFile(filepath.Join(dir, "v9.json")); err == nil {
		t.Error("WriteFile accepted an unknown schema")
	}
}

func TestWriteAtomicError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keep.txt")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := WriteAtomic(path, func(w io.Writer) error {
		io.WriteString(w, "partial")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom wrapped", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("file now holds %q, want it untouched", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary file left behind: %d entries", len(entries))
	}
	if err := WriteAtomic(filepath.Join(dir, "no", "such", "dir.txt"), func(io.Writer) error { return nil }); err == nil {
		t.Error("WriteAtomic into a missing directory succeeded")
	}
}
