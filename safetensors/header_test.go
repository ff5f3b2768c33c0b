package safetensors

import (
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// raw builds a safetensors file from a JSON header and data, padding the
// header with spaces to 8 bytes as Python's writer does.
func raw(header string, data []byte) []byte {
	for len(header)%8 != 0 {
		header += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

// wantError checks that err is an *Error naming the file, the tensor and a
// rule containing ruleWant, in one line.
func wantError(t testing.TB, err error, file, tensor, ruleWant string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.File != file || e.Tensor != tensor || !strings.Contains(e.Rule, ruleWant) {
		t.Fatalf("got Error{File: %q, Tensor: %q, Rule: %q}\nwant file %q, tensor %q, rule containing %q",
			e.File, e.Tensor, e.Rule, file, tensor, ruleWant)
	}
	msg := err.Error()
	for _, s := range []string{file, tensor, ruleWant} {
		if !strings.Contains(msg, s) {
			t.Fatalf("message %q does not name %q", msg, s)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Fatalf("message %q is not one line", msg)
	}
}

// TestParseHeaderLenient checks what other writers do and we accept:
// padding, any entry order, gaps, trailing bytes, empty and scalar tensors,
// extra keys in an entry, dtypes we never decode.
func TestParseHeaderLenient(t *testing.T) {
	data := make([]byte, 64)
	b := raw(` { "z": {"dtype": "F64", "shape": [], "data_offsets": [40, 48], "extra": 1},`+
		`"e1": {"dtype": "F32", "shape": [0, 3], "data_offsets": [8, 8]},`+
		`"e2": {"dtype": "I8", "shape": [0], "data_offsets": [8, 8]},`+
		`"__metadata__": {"k": "v"},`+
		`"a": {"dtype": "U8", "shape": [2, 4], "data_offsets": [0, 8]},`+
		`"big": {"dtype": "F32", "shape": [0, 18446744073709551615], "data_offsets": [8, 8]}} `, data)
	if _, err := ParseHeader("f", b); err == nil {
		t.Fatal("accepted a dimension int cannot hold")
	}
	b = raw(` { "z": {"dtype": "F64", "shape": [], "data_offsets": [40, 48], "extra": 1},`+
		`"e1": {"dtype": "F32", "shape": [0, 3], "data_offsets": [8, 8]},`+
		`"e2": {"dtype": "I8", "shape": [0], "data_offsets": [8, 8]},`+
		`"__metadata__": {"k": "v"},`+
		`"a": {"dtype": "U8", "shape": [2, 4], "data_offsets": [0, 8]}} `, data)
	h, err := ParseHeader("f", b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Metadata()["k"] != "v" || h.DataStart()%8 != 0 || h.Len() != 4 {
		t.Errorf("meta %v, data at %d, %d tensors", h.Metadata(), h.DataStart(), h.Len())
	}
	var names []string
	for _, ti := range h.Tensors() {
		names = append(names, ti.Name)
	}
	if !slices.Equal(names, []string{"a", "e1", "e2", "z"}) {
		t.Errorf("names %v", names)
	}
	z, _ := h.Info("z")
	if z.NumElements() != 1 || z.RowElements() != 1 || z.Begin != 40 || z.End != 48 || len(z.Shape) != 0 {
		t.Errorf("z = %+v", z)
	}
	if e1, _ := h.Info("e1"); e1.NumElements() != 0 {
		t.Errorf("e1 = %+v", e1)
	}
	if a, _ := h.Info("a"); a.RowElements() != 4 {
		t.Errorf("a = %+v", a)
	}
	// Accessors return copies.
	a, _ := h.Info("a")
	a.Shape[0] = 99
	if a2, _ := h.Info("a"); a2.Shape[0] != 2 {
		t.Error("Info shares the shape")
	}
	m := h.Metadata()
	m["k"] = "w"
	if h.Metadata()["k"] != "v" {
		t.Error("Metadata shares the map")
	}
	if _, ok := h.Info("nope"); ok {
		t.Error("found a missing tensor")
	}
}

func TestParseHeaderNoTensors(t *testing.T) {
	h, err := ParseHeader("f", raw(`{}`, nil))
	if err != nil || h.Len() != 0 || h.Metadata() == nil {
		t.Fatalf("%+v, %v", h, err)
	}
}

// TestParseHeaderRules covers every rule of the header parser.
func TestParseHeaderRules(t *testing.T) {
	f32 := func(name string, shape string, b, e int) string {
		return `"` + name + `": {"dtype": "F32", "shape": ` + shape + `, "data_offsets": [` + strconv.Itoa(b) + `, ` + strconv.Itoa(e) + `]}`
	}
	huge := binary.LittleEndian.AppendUint64(nil, 200_000_000)
	cases := []struct {
		name, tensor, rule string
		data               []byte
	}{
		{"empty", "", "file is 0 bytes, shorter than the 8-byte header length", nil},
		{"short", "", "file is 5 bytes", []byte{1, 2, 3, 4, 5}},
		{"absurd header", "", "header length 200000000 is absurd", append(huge, "{}"...)},
		{"header past end", "", "runs past the end of the 12-byte file", append(binary.LittleEndian.AppendUint64(nil, 9), "{}  "...)},
		{"not json", "", "header is not a JSON object", raw(`{"a": `, nil)},
		{"json array", "", "header is not a JSON object", raw(`[1, 2]`, nil)},
		{"trailing garbage", "", "trailing data", raw(`{} {}`, nil)},
		{"bad utf8", "", "not valid UTF-8", raw("{\"\xff\": 1}", nil)},
		{"duplicate tensor", "x", "appears twice", raw(`{`+f32("x", "[0]", 0, 0)+`,`+f32("x", "[0]", 0, 0)+`}`, nil)},
		{"duplicate metadata", "__metadata__", "appears twice", raw(`{"__metadata__": {}, "__metadata__": {}}`, nil)},
		{"metadata not object", "__metadata__", "is not a JSON object", raw(`{"__metadata__": "x"}`, nil)},
		{"metadata value", "__metadata__", `value of "a" is 1, not a string`, raw(`{"__metadata__": {"a": 1}}`, nil)},
		{"entry not object", "x", "not an object with dtype", raw(`{"x": 3}`, nil)},
		{"no dtype", "x", `has no "dtype"`, raw(`{"x": {"shape": [1], "data_offsets": [0, 4]}}`, make([]byte, 4))},
		{"no shape", "x", `has no "shape"`, raw(`{"x": {"dtype": "F32", "data_offsets": [0, 4]}}`, make([]byte, 4))},
		{"no offsets", "x", `has no "data_offsets"`, raw(`{"x": {"dtype": "F32", "shape": [1]}}`, make([]byte, 4))},
		{"dtype not string", "x", "dtype 3 is not a string", raw(`{"x": {"dtype": 3, "shape": [1], "data_offsets": [0, 4]}}`, make([]byte, 4))},
		{"unknown dtype", "x", `unknown dtype "Q4"`, raw(`{"x": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 4]}}`, make([]byte, 4))},
		{"negative dim", "x", "element -1 is not a non-negative integer", raw(`{`+f32("x", "[-1]", 0, 4)+`}`, make([]byte, 4))},
		{"float dim", "x", "element 1.0 is not", raw(`{`+f32("x", "[1.0]", 0, 4)+`}`, make([]byte, 4))},
		{"string dim", "x", `element "1" is not`, raw(`{`+f32("x", `["1"]`, 0, 4)+`}`, make([]byte, 4))},
		{"offsets not pair", "x", "is not a pair", raw(`{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}`, make([]byte, 4))},
		{"offsets backwards", "x", "end before they begin", raw(`{`+f32("x", "[0]", 4, 0)+`}`, make([]byte, 4))},
		{"offsets past end", "x", "run past the end of the 4-byte data section", raw(`{`+f32("x", "[2]", 0, 8)+`}`, make([]byte, 4))},
		{"size mismatch", "x", "F32 shape [2] needs 8 bytes but data_offsets [0,4] hold 4", raw(`{`+f32("x", "[2]", 0, 4)+`}`, make([]byte, 4))},
		{"size overflow", "x", "needs more than 2^64 bytes", raw(`{`+f32("x", "[4294967296, 4294967296]", 0, 4)+`}`, make([]byte, 4))},
		{"absurd dimension", "x", "absurd dimension", raw(`{`+f32("x", "[0, 18446744073709551615]", 0, 0)+`}`, nil)},
		{"overlap", "y", "overlap tensor x [0,8]", raw(`{`+f32("x", "[2]", 0, 8)+`,`+f32("y", "[1]", 4, 8)+`}`, make([]byte, 8))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseHeader("file.safetensors", c.data)
			wantError(t, err, "file.safetensors", c.tensor, c.rule)
		})
	}
}
