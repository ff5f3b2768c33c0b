package trace

import (
	"fmt"
	"strings"

	"github.com/misabench/misabench/safetensors"
)

// DType is a safetensors element type, spelled as in the header ("BF16").
// The codec lives in package safetensors.
type DType = safetensors.DType

// The element types a v1 trace uses. q and k may be BF16, F16, F32 or
// F8_E4M3 (with F32 scales); w and scales are F32; q_pos is I64.
const (
	DTypeBF16   DType = safetensors.BF16
	DTypeF16    DType = safetensors.F16
	DTypeF32    DType = safetensors.F32
	DTypeF8E4M3 DType = safetensors.F8E4M3
	DTypeI64    DType = safetensors.I64
)

// TensorInfo describes one tensor of a trace file (see safetensors).
type TensorInfo = safetensors.TensorInfo

// isInput reports whether d may hold q or k.
func isInput(d DType) bool {
	return d == DTypeBF16 || d == DTypeF16 || d == DTypeF32 || d == DTypeF8E4M3
}

// ParseDType parses a dtype name as given by a user (case-insensitive, so
// "bf16" works on a command line). Header dtypes are matched exactly instead.
func ParseDType(s string) (DType, error) {
	d := DType(strings.ToUpper(strings.TrimSpace(s)))
	if d.Size() == 0 {
		return "", fmt.Errorf("unknown dtype %q (a trace uses BF16, F16, F32, F8_E4M3 or I64)", s)
	}
	return d, nil
}

// QuantizeE4M3 quantises src to F8_E4M3 the way DeepSeek's act_quant does
// with ue8m0 scales: one power-of-two scale per run of group values (a
// token's key, or one head of a query), dst[i] = E4M3(src[i]/scale). It is
// the trace writer's encoding, exported for the GPU benchmarks, which feed
// FP8 tensors straight to the kernels. len(src) must be a multiple of group.
func QuantizeE4M3(dst []byte, scale []float32, src []float32, group int) {
	safetensors.QuantizeE4M3(dst, scale, src, group)
}
