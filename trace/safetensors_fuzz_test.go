package trace

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// FuzzParseHeader feeds arbitrary bytes to the whole open path (header,
// metadata, layout, q_pos) and, when a file is accepted, decodes every
// layer. Whatever the input, the result must be a *FormatError or success,
// never a panic or an out-of-range slice.
func FuzzParseHeader(f *testing.F) {
	for _, opt := range []WriteOptions{{}, {QType: DTypeBF16, KType: DTypeF8E4M3}, {QType: DTypeF16, KType: DTypeBF16}} {
		src := tioNewSource(9, Meta{Format: FormatV1, Model: "z", NCtx: 4, Heads: 1, HeadDim: 2, TopK: 1, Layers: []int{1}},
			[]int64{0, 3}, 4)
		b, err := os.ReadFile(tioWrite(f, src, opt))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	meta := `"__metadata__": {"format": "misabench.trace/v1", "model": "m", "n_ctx": "2", "heads": "1", "head_dim": "1", "topk": "1", "layers": "0"}`
	for _, h := range []string{
		`{}`, `[]`, `{"a": 1}`, `{` + meta + `}`, `{"__metadata__": {"a": 1}}`,
		`{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}`,
		`{"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}`,
		`{"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}`,
		`{"x": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}, "y": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}}`,
		`{"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}`,
		`{` + meta + `, "q_pos": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]},` +
			`"layers.0.q": {"dtype": "F8_E4M3", "shape": [1, 1, 1], "data_offsets": [8, 9]},` +
			`"layers.0.q_scale": {"dtype": "F32", "shape": [1, 1], "data_offsets": [12, 16]},` +
			`"layers.0.k": {"dtype": "BF16", "shape": [2, 1], "data_offsets": [16, 20]},` +
			`"layers.0.w": {"dtype": "F32", "shape": [1, 1], "data_offsets": [20, 24]}}`,
	} {
		f.Add(tioRaw(h, make([]byte, 24)))
	}
	f.Add([]byte{})
	f.Add(binary.LittleEndian.AppendUint64(nil, 1<<62))

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := newFileBytes("fuzz", data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("not a *FormatError: %v", err)
			}
			return
		}
		_ = file.Tensors()
		if err := file.Validate(context.Background()); err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("not a *FormatError: %v", err)
			}
		}
	})
}
