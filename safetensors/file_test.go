package safetensors

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// encodeF encodes values as dt (BF16, F16, F32) or F8_E4M3 (raw
// rounding, no scale).
func encodeF(t testing.TB, dt DType, v []float32) []byte {
	t.Helper()
	b := make([]byte, len(v)*dt.Size())
	if dt == F8E4M3 {
		for i, x := range v {
			b[i] = Float32ToE4M3(x)
		}
		return b
	}
	if i := Encode(b, v, dt); i >= 0 {
		t.Fatalf("value %v does not fit %s", v[i], dt)
	}
	return b
}

func writeFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testFile writes a file with one tensor of each decodable kind.
func testFile(t testing.TB) (string, map[string][]float32) {
	t.Helper()
	vals := map[string][]float32{
		"a.bf16": {1, -2, 0.5, 3, 4, 5},       // [2,3]
		"b.f16":  {0.25, -1, 65504, 1e-3},     // [4]
		"c.f32":  {math.Pi, -math.MaxFloat32}, // [1,2]
		"d.f8":   {448, -1.5, 0.125, 0, 2, 3}, // [3,2]
	}
	b, err := Marshal(map[string]string{"format": "x"}, []Tensor{
		{"a.bf16", BF16, []int{2, 3}, encodeF(t, BF16, vals["a.bf16"])},
		{"b.f16", F16, []int{4}, encodeF(t, F16, vals["b.f16"])},
		{"c.f32", F32, []int{1, 2}, encodeF(t, F32, vals["c.f32"])},
		{"d.f8", F8E4M3, []int{3, 2}, encodeF(t, F8E4M3, vals["d.f8"])},
		{"pos.i64", I64, []int{3}, binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 0), 7), math.MaxUint64)},
		{"pos.i32", I32, []int{2}, binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 5), math.MaxUint32)},
		{"mask", "BOOL", []int{3}, []byte{1, 0, 1}},
		{"scalar", F32, nil, encodeF(t, F32, []float32{7})},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Decoded values are the dtype's rounding of vals.
	for k, v := range vals {
		dt := map[string]DType{"a.bf16": BF16, "b.f16": F16, "c.f32": F32, "d.f8": F8E4M3}[k]
		enc := encodeF(t, dt, v)
		dec := make([]float32, len(v))
		Decode(dec, enc, dt)
		vals[k] = dec
	}
	return writeFile(t, "t.safetensors", b), vals
}

func TestFileRoundTrip(t *testing.T) {
	path, vals := testFile(t)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !f.Mapped() || f.Name() != path || f.Metadata()["format"] != "x" {
		t.Errorf("mapped %v, name %q, meta %v", f.Mapped(), f.Name(), f.Metadata())
	}
	var names []string
	for _, ti := range f.Tensors() {
		names = append(names, ti.Name)
	}
	if !slices.Equal(names, []string{"a.bf16", "b.f16", "c.f32", "d.f8", "mask", "pos.i32", "pos.i64", "scalar"}) {
		t.Errorf("tensors %v", names)
	}
	for name, want := range vals {
		got, err := f.Float32(name)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s = %v, %v; want %v", name, got, err, want)
		}
	}
	if got, _ := f.Float32("a.bf16"); got[0] != 1 || got[5] != 5 {
		t.Errorf("bf16 %v", got)
	}
	if got, err := f.Float32Rows("d.f8", 1, 3); err != nil || !slices.Equal(got, vals["d.f8"][2:6]) {
		t.Errorf("rows [1,3) of d.f8 = %v, %v", got, err)
	}
	if got, err := f.Float32Rows("a.bf16", 1, 1); err != nil || len(got) != 0 {
		t.Errorf("empty row range = %v, %v", got, err)
	}
	if got, err := f.Float32("scalar"); err != nil || !slices.Equal(got, []float32{7}) {
		t.Errorf("scalar = %v, %v", got, err)
	}
	if got, err := f.Float32Rows("scalar", 0, 1); err != nil || !slices.Equal(got, []float32{7}) {
		t.Errorf("scalar row = %v, %v", got, err)
	}
	for _, r := range [][2]int{{-1, 1}, {2, 1}, {0, 3}} {
		if _, err := f.Float32Rows("a.bf16", r[0], r[1]); err == nil || !strings.Contains(err.Error(), "outside [0, 2)") {
			t.Errorf("rows %v: %v", r, err)
		}
	}
	if got, err := f.Int64("pos.i64"); err != nil || !slices.Equal(got, []int64{0, 7, -1}) {
		t.Errorf("i64 = %v, %v", got, err)
	}
	if got, err := f.Int64("pos.i32"); err != nil || !slices.Equal(got, []int64{5, -1}) {
		t.Errorf("i32 = %v, %v", got, err)
	}
	if b, err := f.Bytes("mask"); err != nil || !slices.Equal(b, []byte{1, 0, 1}) {
		t.Errorf("mask bytes = %v, %v", b, err)
	}
	ti, _ := f.Info("mask")
	if b := f.TensorBytes(ti); !slices.Equal(b, []byte{1, 0, 1}) {
		t.Errorf("TensorBytes = %v", b)
	}
	f.WillNeed(ti) // a hint: must not fail on a small tensor
	if d := f.Data(); int64(len(d)) != fileSize(t, path) {
		t.Errorf("Data is %d bytes", len(d))
	}

	wantError(t, first(f.Float32("mask")), path, "mask", "dtype BOOL cannot be decoded to float32")
	wantError(t, first(f.Int64("c.f32")), path, "c.f32", "dtype F32 is not an integer type")
	wantError(t, first(f.Bytes("nope")), path, "nope", "no such tensor")
	wantError(t, first(f.Float32("nope")), path, "nope", "no such tensor")

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.Float32("a.bf16"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Float32 after Close: %v", err)
	}
	if f.Data() != nil || f.TensorBytes(ti) != nil {
		t.Error("data after Close")
	}
}

func first[T any](_ T, err error) error { return err }

func fileSize(t testing.TB, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestFloat32NonFinite checks that a NaN or Inf is reported with its index
// and file offset, in every dtype.
func TestFloat32NonFinite(t *testing.T) {
	cases := []struct {
		dt   DType
		bits []byte
		want string
	}{
		{BF16, []byte{0x80, 0x7F}, "element [1 0] is +Inf"},
		{F16, []byte{0x00, 0xFE}, "element [1 0] is NaN"},
		{F32, binary.LittleEndian.AppendUint32(nil, 0xFF800000), "element [1 0] is -Inf"},
		{F8E4M3, []byte{0x7F}, "element [1 0] is NaN"},
	}
	for _, c := range cases {
		t.Run(string(c.dt), func(t *testing.T) {
			data := make([]byte, 4*c.dt.Size())
			copy(data[2*c.dt.Size():], c.bits)
			b, err := Marshal(nil, []Tensor{{"x", c.dt, []int{2, 2}, data}})
			if err != nil {
				t.Fatal(err)
			}
			f, err := FromBytes("mem", b)
			if err != nil {
				t.Fatal(err)
			}
			if f.Mapped() {
				t.Error("FromBytes says mapped")
			}
			off := f.Header().DataStart() + int64(2*c.dt.Size())
			_, err = f.Float32("x")
			wantError(t, err, "mem", "x", c.want+" (file offset "+strconv.FormatInt(off, 10)+"): values must be finite")
			if got, err := f.Float32Rows("x", 0, 1); err != nil || !slices.Equal(got, []float32{0, 0}) {
				t.Errorf("clean row = %v, %v", got, err)
			}
		})
	}
}

func TestOpenRules(t *testing.T) {
	dir := t.TempDir()
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(dir, "nope.safetensors")
		_, err := Open(path)
		wantError(t, err, path, "", "open: no such file or directory")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Error("does not unwrap to ErrNotExist")
		}
	})
	t.Run("directory", func(t *testing.T) {
		_, err := Open(dir)
		wantError(t, err, dir, "", "is a directory")
		if !errors.Is(err, ErrDirectory) {
			t.Error("does not unwrap to ErrDirectory")
		}
	})
	t.Run("short", func(t *testing.T) {
		path := writeFile(t, "short", []byte{1, 2, 3})
		_, err := Open(path)
		wantError(t, err, path, "", "file is 3 bytes")
	})
	t.Run("bad header", func(t *testing.T) {
		path := writeFile(t, "bad", raw(`{"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}`, make([]byte, 4)))
		_, err := Open(path)
		wantError(t, err, path, "x", "run past the end of the 4-byte data section")
	})
}

// TestTruncatedWhileOpen truncates a mapped file under the reader: touching
// the lost pages raises SIGBUS, which must become an error.
func TestTruncatedWhileOpen(t *testing.T) {
	n := 4 * os.Getpagesize()
	b, err := Marshal(nil, []Tensor{{"x", F32, []int{n}, make([]byte, 4*n)}})
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "t.safetensors", b)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Truncate(path, 64); err != nil {
		t.Fatal(err)
	}
	_, err = f.Float32("x")
	wantError(t, err, path, "", "memory fault reading the mapped file")
	_, err = f.Float32Rows("x", n-4, n)
	wantError(t, err, path, "", "memory fault reading the mapped file")
}

func TestMarshal(t *testing.T) {
	b, err := Marshal(map[string]string{"b": "2", "a": "1"}, []Tensor{
		{"w", F32, []int{2}, make([]byte, 8)},
		{"e", BF16, []int{0, 5}, nil},
		{"s", "U8", []int{}, []byte{9}},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 || !strings.HasPrefix(string(b[8:]), `{"__metadata__":{"a":"1","b":"2"},"w":`) {
		t.Errorf("header %q", b[8:8+n])
	}
	h, err := ParseHeader("m", b)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := h.Info("s"); s.Begin != 8 || s.End != 9 || len(s.Shape) != 0 {
		t.Errorf("s = %+v", s)
	}
	if h.Metadata()["b"] != "2" {
		t.Errorf("meta %v", h.Metadata())
	}
	if b, err := Marshal(nil, nil); err != nil || string(b[8:10]) != "{}" {
		t.Errorf("empty file %q, %v", b, err)
	}
	for _, bad := range [][]Tensor{
		{{"x", F32, []int{2}, make([]byte, 4)}},
		{{"x", "Q4", []int{1}, make([]byte, 1)}},
		{{"x", F32, []int{-1}, nil}},
		{{"x", F32, nil, make([]byte, 4)}, {"x", F32, nil, make([]byte, 4)}},
		{{MetadataKey, F32, nil, make([]byte, 4)}},
	} {
		if _, err := Marshal(nil, bad); err == nil {
			t.Errorf("Marshal accepted %+v", bad)
		}
	}
}
