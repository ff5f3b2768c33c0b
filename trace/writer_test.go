package trace

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tioDirEmpty fails the test if dir holds any file: a failed or aborted
// write must leave neither the trace nor its temporary file.
func tioDirEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
}

func TestWriterLeavesNothingOnError(t *testing.T) {
	layerOf := func(src *tioSource, l int) *Layer {
		c := *src.layers[l]
		c.Q, c.K, c.W = slices.Clone(c.Q), slices.Clone(c.K), slices.Clone(c.W)
		return &c
	}
	cases := []struct {
		name, tensor, rule string
		opt                WriteOptions
		run                func(w *Writer, src *tioSource) error
	}{
		{"abort", "", "aborted", WriteOptions{}, func(w *Writer, src *tioSource) error {
			if err := w.WriteLayer(src.layers[0]); err != nil {
				return err
			}
			w.Abort()
			return w.Close()
		}},
		{"close early", "", "closed after 1 of 2 layers (missing layer 3)", WriteOptions{}, func(w *Writer, src *tioSource) error {
			if err := w.WriteLayer(src.layers[0]); err != nil {
				return err
			}
			return w.Close()
		}},
		{"wrong order", "", "got layer 3, want layer 0", WriteOptions{}, func(w *Writer, src *tioSource) error {
			return w.WriteLayer(src.layers[3])
		}},
		{"nil layer", "", "nil layer", WriteOptions{}, func(w *Writer, src *tioSource) error {
			return w.WriteLayer(nil)
		}},
		{"too many", "", "all 2 layers are already written", WriteOptions{}, func(w *Writer, src *tioSource) error {
			for _, l := range []int{0, 3, 3} {
				if err := w.WriteLayer(src.layers[l]); err != nil {
					return err
				}
			}
			return nil
		}},
		{"short q", "layers.0.q", "has 39 values, want 40 = Q×heads×head_dim", WriteOptions{}, func(w *Writer, src *tioSource) error {
			l := layerOf(src, 0)
			l.Q = l.Q[1:]
			return w.WriteLayer(l)
		}},
		{"long k", "layers.0.k", "has 257 values, want 256", WriteOptions{}, func(w *Writer, src *tioSource) error {
			l := layerOf(src, 0)
			l.K = append(l.K, 1)
			return w.WriteLayer(l)
		}},
		{"NaN w", "layers.3.w", "element [2 1] is NaN", WriteOptions{}, func(w *Writer, src *tioSource) error {
			if err := w.WriteLayer(src.layers[0]); err != nil {
				return err
			}
			l := layerOf(src, 3)
			l.W[5] = float32(math.NaN())
			return w.WriteLayer(l)
		}},
		{"Inf q", "layers.0.q", "element [4 1 3] is -Inf", WriteOptions{QType: DTypeF8E4M3}, func(w *Writer, src *tioSource) error {
			l := layerOf(src, 0)
			l.Q[39] = float32(math.Inf(-1))
			return w.WriteLayer(l)
		}},
		{"F16 overflow", "layers.0.k", "element [3 2] = 1e+06 overflows F16", WriteOptions{KType: DTypeF16}, func(w *Writer, src *tioSource) error {
			l := layerOf(src, 0)
			l.K[14] = 1e6
			return w.WriteLayer(l)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.safetensors")
			src := tioDefaultSource()
			w, err := Create(path, src.meta, src.qpos, src.nkeys, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			err = c.run(w, src)
			if err == nil {
				err = w.Close()
			}
			if err == nil {
				t.Fatal("no error")
			}
			if c.name == "abort" {
				if err.Error() != "trace "+path+": writer aborted" {
					t.Errorf("err = %v", err)
				}
			} else {
				tioWantFormatError(t, err, path, c.tensor, c.rule)
			}
			// The writer is dead: every later call fails the same way.
			if err2 := w.WriteLayer(src.layers[0]); err2 == nil {
				t.Error("WriteLayer after failure succeeded")
			}
			if err2 := w.Close(); err2 == nil {
				t.Error("Close after failure succeeded")
			}
			w.Abort()
			tioDirEmpty(t, dir)
		})
	}
}

func TestCreateRules(t *testing.T) {
	src := tioDefaultSource()
	meta := func(edit func(m *Meta)) Meta {
		m := tioMeta()
		edit(&m)
		return m
	}
	cases := []struct {
		name, tensor, rule string
		meta               Meta
		qpos               []int64
		nkeys              int
		opt                WriteOptions
	}{
		{"bad qtype", "", "cannot store q or k as I64", tioMeta(), src.qpos, 64, WriteOptions{QType: DTypeI64}},
		{"bad ktype", "", "cannot store q or k as F64", tioMeta(), src.qpos, 64, WriteOptions{KType: "F64"}},
		{"wrong format", "__metadata__", `is not "misabench.trace/v1"`, meta(func(m *Meta) { m.Format = "v0" }), src.qpos, 64, WriteOptions{}},
		{"no layers", "__metadata__", `key "layers"`, meta(func(m *Meta) { m.Layers = nil }), src.qpos, 64, WriteOptions{}},
		{"no heads", "__metadata__", `key "heads": "0"`, meta(func(m *Meta) { m.Heads = 0 }), src.qpos, 64, WriteOptions{}},
		{"no model", "__metadata__", `key "model": is empty`, meta(func(m *Meta) { m.Model = "" }), src.qpos, 64, WriteOptions{}},
		{"needle outside", "__metadata__", "outside [0, n_ctx = 64)", meta(func(m *Meta) { m.Needle = []Span{{60, 65}} }), src.qpos, 64, WriteOptions{}},
		{"no queries", "q_pos", "has no query rows", tioMeta(), nil, 64, WriteOptions{}},
		{"no keys", "layers.0.k", "has 0 key rows", tioMeta(), src.qpos, 0, WriteOptions{}},
		{"too many keys", "layers.0.k", "more than n_ctx = 64", tioMeta(), src.qpos, 65, WriteOptions{}},
		{"unsorted", "q_pos", "q_pos[1] = 2 is below q_pos[0] = 3", tioMeta(), []int64{3, 2}, 64, WriteOptions{}},
		{"beyond N", "q_pos", "q_pos[0] = 40 is outside [0, N = 40)", tioMeta(), []int64{40}, 40, WriteOptions{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "x.safetensors")
			w, err := Create(path, c.meta, c.qpos, c.nkeys, c.opt)
			if err == nil {
				w.Abort()
				t.Fatal("Create succeeded")
			}
			tioWantFormatError(t, err, path, c.tensor, c.rule)
			tioDirEmpty(t, dir)
		})
	}
}

func TestCreateMissingDir(t *testing.T) {
	src := tioDefaultSource()
	path := filepath.Join(t.TempDir(), "no", "such", "x.safetensors")
	w, err := Create(path, tioMeta(), src.qpos, 64, WriteOptions{})
	if err == nil {
		w.Abort()
		t.Fatal("Create succeeded")
	}
	if want := "directory " + filepath.Dir(path) + "/ does not exist"; !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), ".tmp-") {
		t.Errorf("error %q: want it to say %q and not name the temporary file", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %q does not wrap fs.ErrNotExist (the CLI's exit 2)", err)
	}
}

func TestWriteSourceCancel(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.safetensors")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WriteSource(ctx, path, tioDefaultSource(), WriteOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	tioDirEmpty(t, dir)
}

func TestWriteSourceLayerError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "e.safetensors")
	src := tioDefaultSource()
	src.layers[3].K[0] = float32(math.NaN())
	err := WriteSource(context.Background(), path, src, WriteOptions{})
	tioWantFormatError(t, err, path, "layers.3.k", "element [0 0] is NaN")
	tioDirEmpty(t, dir)
}

// TestWriteOverwritesAtomically re-encodes a trace onto its own path while
// it is open: the mapping keeps the old data, the new file replaces it.
func TestWriteOverwritesAtomically(t *testing.T) {
	path := tioWrite(t, tioDefaultSource(), WriteOptions{})
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := WriteSource(context.Background(), path, f, WriteOptions{QType: DTypeBF16, KType: DTypeF8E4M3}); err != nil {
		t.Fatal(err)
	}
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.Hash() == g.Hash() {
		t.Error("same hash after re-encoding")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("%d files in the directory", len(entries))
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
}

func TestEncodeMetaRoundTrip(t *testing.T) {
	m := tioMeta()
	raw := EncodeMeta(m)
	want := map[string]string{
		"format": FormatV1, "model": "tiny", "n_ctx": "64", "heads": "2", "head_dim": "4", "topk": "8",
		"layers": "0,3", "dataset": "unit", "sample_id": "s1", "needle": "[[10,14]]", "depth_percent": "25",
		"question": "[50,60]", "tool": "test",
	}
	if len(raw) != len(want) {
		t.Errorf("raw = %v", raw)
	}
	for k, v := range want {
		if raw[k] != v {
			t.Errorf("%s = %q, want %q", k, raw[k], v)
		}
	}
	back, err := ParseMeta("f", raw)
	if err != nil || !tioMetaEqual(back, m) {
		t.Errorf("ParseMeta(EncodeMeta(m)) = %+v, %v", back, err)
	}
	// Extra keys cannot shadow the format's keys; an empty format is v1.
	m.Format = ""
	m.Extra = map[string]string{"n_ctx": "1"}
	raw = EncodeMeta(m)
	if raw["n_ctx"] != "64" || raw["format"] != FormatV1 {
		t.Errorf("raw = %v", raw)
	}
	// Lenient where harmless: spaces in the layer list, no optional keys.
	back, err = ParseMeta("f", map[string]string{"format": FormatV1, "model": "m", "n_ctx": "9", "heads": "1",
		"head_dim": "2", "topk": "3", "layers": "2, 0"})
	if err != nil || !slices.Equal(back.Layers, []int{2, 0}) || back.Needle != nil || back.Question != nil || back.Extra != nil {
		t.Errorf("ParseMeta = %+v, %v", back, err)
	}
}
