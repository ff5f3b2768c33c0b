package trace

import (
	"math"
	"testing"

	"github.com/misabench/misabench/safetensors"
)

func TestParseDType(t *testing.T) {
	for in, want := range map[string]DType{
		"BF16": DTypeBF16, "bf16": DTypeBF16, " f16 ": DTypeF16, "F32": DTypeF32,
		"f8_e4m3": DTypeF8E4M3, "I64": DTypeI64, "F64": "F64",
	} {
		got, err := ParseDType(in)
		if err != nil || got != want {
			t.Errorf("ParseDType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fp8", "F8", "Q4_K"} {
		if _, err := ParseDType(in); err == nil {
			t.Errorf("ParseDType(%q) succeeded", in)
		}
	}
	if DTypeBF16.Size() != 2 || DTypeF8E4M3.Size() != 1 || DTypeI64.Size() != 8 || DType("x").Size() != 0 {
		t.Error("sizes")
	}
}

func TestQuantizeE4M3(t *testing.T) {
	src := []float32{0.5, -3, 100, 1e-3, 0, 0, 0, 0, 7, 7, -7, 448 * 4}
	dst := make([]byte, len(src))
	scale := make([]float32, 3)
	QuantizeE4M3(dst, scale, src, 4)
	if scale[1] != 1 {
		t.Errorf("all-zero group: scale %v, want 1", scale[1])
	}
	for g, s := range scale {
		if fr, _ := math.Frexp(float64(s)); fr != 0.5 {
			t.Errorf("group %d: scale %v is not a power of two", g, s)
		}
	}
	back := make([]float32, len(src))
	if !safetensors.DecodeE4M3Scaled(back, dst, scale, 4) {
		t.Fatal("decode failed")
	}
	for i, v := range src {
		// E4M3 keeps 3 mantissa bits: relative error ≤ 2^-4 for normal values.
		if d := math.Abs(float64(back[i] - v)); d > math.Abs(float64(v))/16+1e-6*float64(scale[i/4]) {
			t.Errorf("value %d: %v round-trips to %v", i, v, back[i])
		}
	}
}
