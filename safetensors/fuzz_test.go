package safetensors

import (
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzHeader feeds arbitrary bytes to the header parser and, when a file is
// accepted, reads every tensor. Whatever the input, the result must be an
// *Error or success, never a panic or an out-of-range slice.
func FuzzHeader(f *testing.F) {
	good, err := Marshal(map[string]string{"k": "v"}, []Tensor{
		{"a", BF16, []int{2, 2}, make([]byte, 8)},
		{"b", F8E4M3, []int{3}, []byte{0x7F, 1, 2}},
		{"c", I64, []int{1}, make([]byte, 8)},
		{"d", I32, []int{2, 1}, make([]byte, 8)},
		{"e", F16, []int{0, 3}, nil},
		{"s", F32, nil, make([]byte, 4)},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, h := range []string{
		`{}`, `[]`, `{"a": 1}`, `{"__metadata__": {"a": 1}}`, `{"__metadata__": {"a": "b"}}`,
		`{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}`,
		`{"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}`,
		`{"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}`,
		`{"x": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}, "y": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}}`,
		`{"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}`,
		`{"x": {"dtype": "I32", "shape": [0, 9223372036854775807], "data_offsets": [0, 0]}}`,
	} {
		f.Add(raw(h, make([]byte, 24)))
	}
	f.Add([]byte{})
	f.Add(binary.LittleEndian.AppendUint64(nil, 1<<62))

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := FromBytes("fuzz", data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %v", err)
			}
			return
		}
		for _, ti := range file.Tensors() {
			var err error
			switch {
			case ti.DType.IsFloat():
				_, err = file.Float32(ti.Name)
				if err == nil && len(ti.Shape) > 0 {
					_, err = file.Float32Rows(ti.Name, ti.Shape[0]/2, ti.Shape[0])
				}
			case ti.DType == I64 || ti.DType == I32:
				_, err = file.Int64(ti.Name)
			default:
				var b []byte
				b, err = file.Bytes(ti.Name)
				if err == nil && int64(len(b)) != ti.End-ti.Begin {
					t.Fatalf("%s: %d bytes, want %d", ti.Name, len(b), ti.End-ti.Begin)
				}
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("%s: not an *Error: %v", ti.Name, err)
				}
			}
		}
	})
}
