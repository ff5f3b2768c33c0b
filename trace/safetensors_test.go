package trace

import (
	"slices"
	"testing"
)

// TestParseHeaderLenient checks what other writers do and we accept:
// padding, any entry order, gaps, trailing bytes, empty and scalar tensors,
// extra keys in an entry, dtypes we never decode.
func TestParseHeaderLenient(t *testing.T) {
	data := make([]byte, 64)
	b := tioRaw(` { "z": {"dtype": "F64", "shape": [], "data_offsets": [40, 48], "extra": 1},`+
		`"e1": {"dtype": "F32", "shape": [0, 3], "data_offsets": [8, 8]},`+
		`"e2": {"dtype": "I8", "shape": [0], "data_offsets": [8, 8]},`+
		`"__metadata__": {"k": "v"},`+
		`"a": {"dtype": "U8", "shape": [2, 4], "data_offsets": [0, 8]},`+
		`"big": {"dtype": "F32", "shape": [0, 18446744073709551615], "data_offsets": [8, 8]}} `, data)
	if _, err := parseHeader("f", b); err == nil {
		t.Fatal("accepted a dimension int cannot hold")
	}
	b = tioRaw(` { "z": {"dtype": "F64", "shape": [], "data_offsets": [40, 48], "extra": 1},`+
		`"e1": {"dtype": "F32", "shape": [0, 3], "data_offsets": [8, 8]},`+
		`"e2": {"dtype": "I8", "shape": [0], "data_offsets": [8, 8]},`+
		`"__metadata__": {"k": "v"},`+
		`"a": {"dtype": "U8", "shape": [2, 4], "data_offsets": [0, 8]}} `, data)
	h, err := parseHeader("f", b)
	if err != nil {
		t.Fatal(err)
	}
	if h.meta["k"] != "v" || h.dataStart%8 != 0 {
		t.Errorf("meta %v, data at %d", h.meta, h.dataStart)
	}
	var names []string
	for _, ti := range h.tensors {
		names = append(names, ti.Name)
	}
	if !slices.Equal(names, []string{"a", "e1", "e2", "z"}) {
		t.Errorf("names %v", names)
	}
	z, _ := h.tensor("z")
	if z.NumElements() != 1 || z.Begin != 40 || z.End != 48 || len(z.Shape) != 0 {
		t.Errorf("z = %+v", z)
	}
	if e1, _ := h.tensor("e1"); e1.NumElements() != 0 {
		t.Errorf("e1 = %+v", e1)
	}
}

func TestParseHeaderNoTensors(t *testing.T) {
	h, err := parseHeader("f", tioRaw(`{}`, nil))
	if err != nil || len(h.tensors) != 0 || h.meta == nil {
		t.Fatalf("%+v, %v", h, err)
	}
}
