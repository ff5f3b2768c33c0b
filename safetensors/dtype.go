package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"
)

// DType is a safetensors element type, spelled as in the header ("BF16").
type DType string

// The element types this package decodes. Every other dtype of the
// specification is parsed and bounds-checked (see DType.Size) but can only
// be read as raw bytes.
const (
	BF16   DType = "BF16"
	F16    DType = "F16"
	F32    DType = "F32"
	F8E4M3 DType = "F8_E4M3"
	I64    DType = "I64"
	I32    DType = "I32"
)

// dtypeSizes lists every dtype of the safetensors specification with a whole
// number of bytes per element. A reader needs the size of all of them, not
// only of those it decodes, because files carry extra tensors (a F64
// statistic, a BOOL mask) that must be bounds-checked and then tolerated.
var dtypeSizes = map[DType]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8, "C64": 8,
}

// Size is the number of bytes of one element, or 0 for an unknown dtype.
func (d DType) Size() int { return dtypeSizes[d] }

// IsFloat reports whether Decode (and File.Float32) can decode d: BF16, F16,
// F32 or F8_E4M3.
func (d DType) IsFloat() bool {
	return d == BF16 || d == F16 || d == F32 || d == F8E4M3
}

// ParseDType parses a dtype name as a user types it (case-insensitive, so
// "bf16" works on a command line). Header dtypes are matched exactly.
func ParseDType(s string) (DType, error) {
	d := DType(strings.ToUpper(strings.TrimSpace(s)))
	if d.Size() == 0 {
		return "", fmt.Errorf("unknown safetensors dtype %q", s)
	}
	return d, nil
}

// e4m3LUT decodes every F8_E4M3 (e4m3fn) byte: 1 sign bit, 4 exponent bits
// with bias 7, 3 mantissa bits, no infinities; 0x7F and 0xFF are NaN. A
// 256-entry table is the fastest decoder and trivially exact.
var e4m3LUT = func() (t [256]float32) {
	for b := range 256 {
		e := (b >> 3) & 0xF
		m := b & 7
		var v float64
		switch {
		case e == 0xF && m == 7:
			v = math.NaN()
		case e == 0:
			v = math.Ldexp(float64(m), -9) // subnormal: m/8 · 2^(1-7)
		default:
			v = math.Ldexp(float64(8+m), e-10) // (1 + m/8) · 2^(e-7)
		}
		if b&0x80 != 0 {
			v = -v
		}
		t[b] = float32(v)
	}
	return t
}()

// E4M3Max is the largest finite F8_E4M3 value; the encoder saturates to it.
const E4M3Max = 448

// E4M3ToFloat32 decodes one F8_E4M3 (e4m3fn) byte.
func E4M3ToFloat32(b uint8) float32 { return e4m3LUT[b] }

// F16ToFloat32 decodes an IEEE binary16 value.
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	e := uint32(h>>10) & 0x1F
	m := uint32(h & 0x3FF)
	switch e {
	case 0: // zero or subnormal: m · 2^-24, exact in float32
		return math.Float32frombits(sign | math.Float32bits(float32(m)*(1.0/(1<<24))))
	case 0x1F: // Inf or NaN
		return math.Float32frombits(sign | 0x7F800000 | m<<13)
	default:
		return math.Float32frombits(sign | (e+(127-15))<<23 | m<<13)
	}
}

// BF16ToFloat32 decodes a bfloat16 value (the upper half of a float32).
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToF16 rounds to the nearest binary16, ties to even; values beyond
// the range round to ±Inf, which callers check for.
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	b &= 0x7FFFFFFF
	switch {
	case b > 0x7F800000: // NaN
		return sign | 0x7E00
	case b >= 0x477FF000: // ≥ 65520, the midpoint above 65504: rounds to Inf
		return sign | 0x7C00
	case b >= 0x38800000: // normal binary16 (≥ 2^-14)
		b += 0x0FFF + (b>>13)&1
		return sign | uint16((b-(127-15)<<23)>>13)
	default: // subnormal or zero: m · 2^-24; the product is exact in float64
		return sign | uint16(math.RoundToEven(float64(math.Float32frombits(b))*(1<<24)))
	}
}

// Float32ToBF16 rounds to the nearest bfloat16, ties to even. Values within
// half an ulp of MaxFloat32 round to Inf, which callers check for.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7FFFFFFF > 0x7F800000 { // keep NaN a NaN
		return uint16(b>>16) | 0x40
	}
	b += 0x7FFF + (b>>16)&1
	return uint16(b >> 16)
}

// Float32ToE4M3 rounds to the nearest F8_E4M3 value, ties to even,
// saturating to ±448 (as torch's float8_e4m3fn cast with clamping does).
// NaN maps to 0x7F.
func Float32ToE4M3(f float32) uint8 {
	b := math.Float32bits(f)
	sign := uint8(b>>24) & 0x80
	b &= 0x7FFFFFFF
	switch {
	case b > 0x7F800000:
		return sign | 0x7F
	case b >= 0x3C800000: // normal E4M3 range (≥ 2^-6)
		b += 0x7FFFF + (b>>20)&1
		e := int(b>>23) - 127
		m := uint8(b>>20) & 7
		if e > 8 || e == 8 && m == 7 { // above 448 (or Inf): saturate
			return sign | 0x7E
		}
		return sign | uint8(e+7)<<3 | m
	default: // subnormal or zero: m · 2^-9 with m ≤ 8 (8 is the first normal, code 0x08)
		return sign | uint8(math.RoundToEven(float64(math.Float32frombits(b))*(1<<9)))
	}
}

// nonFinite reports whether an element of type d with raw bits u is NaN or
// ±Inf. F8_E4M3 has no infinities: only its NaN codes are rejected.
func nonFinite(d DType, u uint32) bool {
	switch d {
	case BF16:
		return u&0x7F80 == 0x7F80
	case F16:
		return u&0x7C00 == 0x7C00
	case F8E4M3:
		return u&0x7F == 0x7F
	default:
		return u&0x7F800000 == 0x7F800000
	}
}

// Decode decodes len(dst) elements of type d (BF16, F16, F32 or F8_E4M3:
// see DType.IsFloat) from src, which must hold at least len(dst) elements,
// and reports whether they were all finite. It is a hot loop: one pass, no
// branches on the data, and the finiteness test folded into an
// OR-accumulator so that a clean tensor (the common case) costs nothing
// extra; callers locate the bad element on failure. It panics on a dtype
// it cannot decode.
func Decode(dst []float32, src []byte, d DType) bool {
	switch d {
	case BF16:
		return decodeBF16(dst, src)
	case F16:
		return decodeF16(dst, src)
	case F32:
		return decodeF32(dst, src)
	case F8E4M3:
		src = src[:len(dst)]
		var acc uint8
		for i, b := range src {
			acc |= (b & 0x7F) + 1 // carries into bit 7 iff the code is a NaN
			dst[i] = e4m3LUT[b]
		}
		return acc&0x80 == 0
	}
	panic("safetensors: Decode of " + string(d))
}

// decodeBF16 decodes four values per 64-bit load: BF16 is the upper half
// of a float32, so decoding is a shift, and the loop is bound by memory.
// Each 16-bit lane's exponent check (lane & 0x7F80) + 0x80 reaches 0x8000
// iff the exponent is all ones, and never carries into the next lane.
func decodeBF16(dst []float32, src []byte) bool {
	n := len(dst)
	src = src[:2*n]
	var acc uint64
	i := 0
	for ; i+4 <= n; i += 4 {
		u := binary.LittleEndian.Uint64(src[2*i:])
		acc |= (u & 0x7F807F807F807F80) + 0x0080008000800080
		d := dst[i : i+4 : i+4]
		d[0] = math.Float32frombits(uint32(u) << 16)
		d[1] = math.Float32frombits(uint32(u) & 0xFFFF0000)
		d[2] = math.Float32frombits(uint32(u>>32) << 16)
		d[3] = math.Float32frombits(uint32(u>>32) & 0xFFFF0000)
	}
	for ; i < n; i++ {
		u := uint64(binary.LittleEndian.Uint16(src[2*i:]))
		acc |= (u & 0x7F80) + 0x80
		dst[i] = math.Float32frombits(uint32(u) << 16)
	}
	return acc&0x8000800080008000 == 0
}

// f16LUT decodes every binary16 bit pattern. A table lookup, four per
// 64-bit load, measured twice as fast as the bit-twiddling conversion
// (whose zero/subnormal/Inf cases need a branch or a second pass). The
// 256 KB table is built on first use, so programs that never read F16 do not
// pay for it.
var f16LUT = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for h := range t {
		t[h] = F16ToFloat32(uint16(h))
	}
	return &t
})

// decodeF16 decodes binary16 through f16LUT; the finiteness check works on
// four 16-bit lanes at once as in decodeBF16.
func decodeF16(dst []float32, src []byte) bool {
	lut := f16LUT()
	n := len(dst)
	src = src[:2*n]
	var acc uint64
	i := 0
	for ; i+4 <= n; i += 4 {
		u := binary.LittleEndian.Uint64(src[2*i:])
		acc |= (u & 0x7C007C007C007C00) + 0x0400040004000400
		d := dst[i : i+4 : i+4]
		d[0] = lut[uint16(u)]
		d[1] = lut[uint16(u>>16)]
		d[2] = lut[uint16(u>>32)]
		d[3] = lut[uint16(u>>48)]
	}
	for ; i < n; i++ {
		h := binary.LittleEndian.Uint16(src[2*i:])
		acc |= uint64(h&0x7C00) + 0x400
		dst[i] = lut[h]
	}
	return acc&0x8000800080008000 == 0
}

// decodeF32 copies little-endian float32s, four per iteration so that the
// bounds checks amortise.
func decodeF32(dst []float32, src []byte) bool {
	n := len(dst)
	src = src[:4*n]
	const m, c = 0x7F800000, 0x800000 // (u&m)+c reaches bit 31 iff the exponent is all ones
	var acc uint32
	i := 0
	for ; i+4 <= n; i += 4 {
		s := src[4*i : 4*i+16 : 4*i+16]
		u0 := binary.LittleEndian.Uint32(s[0:])
		u1 := binary.LittleEndian.Uint32(s[4:])
		u2 := binary.LittleEndian.Uint32(s[8:])
		u3 := binary.LittleEndian.Uint32(s[12:])
		acc |= (u0&m + c) | (u1&m + c) | (u2&m + c) | (u3&m + c)
		d := dst[i : i+4 : i+4]
		d[0] = math.Float32frombits(u0)
		d[1] = math.Float32frombits(u1)
		d[2] = math.Float32frombits(u2)
		d[3] = math.Float32frombits(u3)
	}
	for ; i < n; i++ {
		u := binary.LittleEndian.Uint32(src[4*i:])
		acc |= u&m + c
		dst[i] = math.Float32frombits(u)
	}
	return acc&0x80000000 == 0
}

// DecodeE4M3Scaled decodes F8_E4M3 elements and multiplies each run of group
// elements by its scale (scale[i] applies to dst[i*group:(i+1)*group]; len(dst)
// must be len(scale)·group). It reports whether every result is finite: a
// NaN code, or a finite code times a huge scale that overflows float32,
// both fail.
func DecodeE4M3Scaled(dst []float32, src []byte, scale []float32, group int) bool {
	src = src[:len(dst)]
	ok := true
	for g, s := range scale {
		d := dst[g*group : (g+1)*group]
		b := src[g*group : (g+1)*group]
		var acc uint32
		for i := range d {
			v := e4m3LUT[b[i]] * s
			acc |= (math.Float32bits(v) & 0x7F800000) + 0x800000 // bit 31 set iff v is NaN or ±Inf
			d[i] = v
		}
		if acc&0x80000000 != 0 {
			ok = false
		}
	}
	return ok
}

// rawBits returns the raw bits of element i of a tensor of type d (1, 2 or
// 4 bytes wide), for error messages and finiteness checks outside the hot
// loops.
func rawBits(src []byte, d DType, i int) uint32 {
	switch d.Size() {
	case 1:
		return uint32(src[i])
	case 2:
		return uint32(binary.LittleEndian.Uint16(src[2*i:]))
	default:
		return binary.LittleEndian.Uint32(src[4*i:])
	}
}

// DecodeAt decodes element i of src (type d, a float dtype), for error
// messages.
func DecodeAt(src []byte, d DType, i int) float32 {
	var v [1]float32
	n := d.Size()
	Decode(v[:], src[n*i:n*(i+1)], d)
	return v[0]
}

// Encode encodes src into dst as type d (BF16, F16 or F32; dst holds at
// least len(src) elements). It returns the index of the first element whose
// encoding is not finite (a value too large for F16 or, at the very top of
// the range, BF16, or a NaN or Inf in src for BF16 and F16), or -1. F32 is
// copied as is. It panics on another dtype: F8_E4M3 needs scales
// (QuantizeE4M3).
func Encode(dst []byte, src []float32, d DType) int {
	switch d {
	case BF16:
		dst = dst[:2*len(src)]
		var acc uint16
		for i, v := range src {
			u := Float32ToBF16(v)
			acc |= (u & 0x7F80) + 0x80
			binary.LittleEndian.PutUint16(dst[2*i:], u)
		}
		if acc&0x8000 != 0 {
			return firstNonFinite(dst, d)
		}
	case F16:
		dst = dst[:2*len(src)]
		var acc uint16
		for i, v := range src {
			u := Float32ToF16(v)
			acc |= (u & 0x7C00) + 0x400
			binary.LittleEndian.PutUint16(dst[2*i:], u)
		}
		if acc&0x8000 != 0 {
			return firstNonFinite(dst, d)
		}
	case F32:
		dst = dst[:4*len(src)]
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	default:
		panic("safetensors: Encode to " + string(d))
	}
	return -1
}

// firstNonFinite returns the index of the first element of src (type d)
// that is NaN or ±Inf, or -1.
func firstNonFinite(src []byte, d DType) int {
	n := len(src) / d.Size()
	for i := range n {
		if nonFinite(d, rawBits(src, d, i)) {
			return i
		}
	}
	return -1
}

// UE8M0Scales sets scale[g] to the ue8m0 scale (UE8M0Scale) of
// src[g*group:(g+1)*group].
func UE8M0Scales(scale, src []float32, group int) {
	for g := range scale {
		var amax float32
		for _, v := range src[g*group : (g+1)*group] {
			amax = max(amax, math.Float32frombits(math.Float32bits(v)&0x7FFFFFFF))
		}
		scale[g] = UE8M0Scale(amax)
	}
}

// QuantizeE4M3 quantises src to F8_E4M3 the way DeepSeek's act_quant does
// with ue8m0 scales: one power-of-two scale per run of group values (a
// token's key, or one head of a query), dst[i] = E4M3(src[i]/scale).
// len(src) must be a multiple of group, len(scale) = len(src)/group and
// len(dst) ≥ len(src).
func QuantizeE4M3(dst []byte, scale []float32, src []float32, group int) {
	if group < 1 || len(src)%group != 0 || len(scale) != len(src)/group || len(dst) < len(src) {
		panic(fmt.Sprintf("safetensors: QuantizeE4M3: %d values, group %d, %d scales, %d bytes", len(src), group, len(scale), len(dst)))
	}
	UE8M0Scales(scale, src, group)
	EncodeE4M3Scaled(dst, src, scale, group)
}

// EncodeE4M3Scaled stores src[i]/scale as F8_E4M3, one scale per run of
// group elements. The scales must be powers of two (UE8M0Scales): division
// by one is exact, so the only rounding is the final one to E4M3.
func EncodeE4M3Scaled(dst []byte, src []float32, scale []float32, group int) {
	dst = dst[:len(src)]
	for g, s := range scale {
		inv := 1 / s // exact: s is a power of two
		d := dst[g*group : (g+1)*group]
		for i, v := range src[g*group : (g+1)*group] {
			d[i] = Float32ToE4M3(v * inv)
		}
	}
}

// UE8M0Scale is the scale DeepSeek's act_quant uses with scale_fmt "ue8m0":
// the smallest power of two s with amax/s ≤ 448, so that every value of the
// group fits E4M3 without saturating. An all-zero group gets 1. The result is
// kept within float32's normal range so that it stays finite and positive.
func UE8M0Scale(amax float32) float32 {
	if !(amax > 0) {
		return 1
	}
	frac, exp := math.Frexp(float64(amax) / E4M3Max) // v = frac · 2^exp, frac ∈ [0.5, 1)
	if frac == 0.5 {
		exp-- // v is a power of two already
	}
	exp = min(max(exp, -126), 127)
	return float32(math.Ldexp(1, exp))
}
