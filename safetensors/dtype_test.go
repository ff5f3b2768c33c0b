package safetensors

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// TestE4M3LUT checks the decode table against the e4m3fn definition.
func TestE4M3LUT(t *testing.T) {
	known := map[uint8]float32{
		0x00: 0, 0x01: 1.0 / 512, 0x07: 7.0 / 512, 0x08: 1.0 / 64, 0x38: 1, 0x39: 1.125,
		0x7E: 448, 0x77: 240, 0xB8: -1, 0xFE: -448, 0x80: float32(math.Copysign(0, -1)),
	}
	for b, want := range known {
		if got := e4m3LUT[b]; got != want || math.Signbit(float64(got)) != math.Signbit(float64(want)) {
			t.Errorf("e4m3(%#02x) = %v, want %v", b, got, want)
		}
	}
	for b := range 256 {
		v := e4m3LUT[b]
		nan := b&0x7F == 0x7F
		if math.IsNaN(float64(v)) != nan || math.IsInf(float64(v), 0) {
			t.Errorf("e4m3(%#02x) = %v", b, v)
		}
		if !nan && Float32ToE4M3(v) != uint8(b) && v != 0 {
			t.Errorf("encode(decode(%#02x)) = %#02x", b, Float32ToE4M3(v))
		}
	}
}

// TestE4M3Encode compares the encoder with a brute-force search for the
// nearest value (ties to the even code), with saturation to ±448.
func TestE4M3Encode(t *testing.T) {
	nearest := func(x float32) uint8 {
		best, bestErr := uint8(0), math.Inf(1)
		for b := range 256 {
			v := e4m3LUT[b]
			if math.IsNaN(float64(v)) || math.Signbit(float64(v)) != math.Signbit(float64(x)) {
				continue
			}
			e := math.Abs(float64(v) - float64(x))
			if e < bestErr || e == bestErr && b&1 == 0 {
				best, bestErr = uint8(b), e
			}
		}
		return best
	}
	r := rand.New(rand.NewPCG(1, 2))
	vals := []float32{0, 1, 448, 449, 464, 465, 1e9, float32(math.Inf(1)), 1.0 / 1024, 3.0 / 1024, 1.0 / 64, 0.0146484375}
	for range 20000 {
		vals = append(vals, float32(r.NormFloat64()*math.Exp2(float64(r.IntN(24)-14))))
	}
	// Exact midpoints between neighbours exercise ties.
	for b := range 0x7E {
		vals = append(vals, (e4m3LUT[b]+e4m3LUT[b+1])/2)
	}
	for _, x := range vals {
		for _, s := range []float32{1, -1} {
			x := x * s
			got, want := Float32ToE4M3(x), nearest(x)
			if got != want && !(x == 0 && got&0x7F == 0) {
				t.Fatalf("Float32ToE4M3(%v) = %#02x (%v), want %#02x (%v)", x, got, e4m3LUT[got], want, e4m3LUT[want])
			}
		}
	}
	if Float32ToE4M3(float32(math.NaN())) != 0x7F {
		t.Error("NaN")
	}
}

// TestF16 checks every binary16 value round-trips and the encoder rounds
// to nearest, ties to even, against float64 arithmetic.
func TestF16(t *testing.T) {
	for h := range 1 << 16 {
		v := F16ToFloat32(uint16(h))
		e := h >> 10 & 0x1F
		if e == 0x1F {
			if h&0x3FF == 0 && !math.IsInf(float64(v), 0) || h&0x3FF != 0 && !math.IsNaN(float64(v)) {
				t.Fatalf("f16 %#04x = %v", h, v)
			}
			continue
		}
		if got := Float32ToF16(v); got != uint16(h) {
			t.Fatalf("f16 %#04x → %v → %#04x", h, v, got)
		}
		if e == 0 && float64(v) != math.Copysign(float64(h&0x3FF)*math.Exp2(-24), float64(1-2*(h>>15))) {
			t.Fatalf("subnormal %#04x = %v", h, v)
		}
	}
	// Midpoints and neighbours of every positive finite pair.
	for h := range 0x7BFF {
		a, b := float64(F16ToFloat32(uint16(h))), float64(F16ToFloat32(uint16(h+1)))
		mid := float32((a + b) / 2) // exact in float32
		want := uint16(h)
		if h&1 == 1 {
			want++
		}
		if got := Float32ToF16(mid); got != want {
			t.Fatalf("tie %v: got %#04x want %#04x", mid, got, want)
		}
		above := math.Nextafter32(mid, float32(math.Inf(1)))
		if got := Float32ToF16(above); got != uint16(h+1) {
			t.Fatalf("above tie %v: got %#04x", above, got)
		}
	}
	for x, want := range map[float32]uint16{65504: 0x7BFF, 65519.99: 0x7BFF, 65520: 0x7C00, 1e6: 0x7C00, -1e6: 0xFC00, 1e-9: 0} {
		if got := Float32ToF16(x); got != want {
			t.Errorf("Float32ToF16(%v) = %#04x, want %#04x", x, got, want)
		}
	}
}

func TestBF16(t *testing.T) {
	for _, c := range []struct {
		in   uint32
		want uint16
	}{
		{0x3F800000, 0x3F80}, {0x3F808000, 0x3F80}, {0x3F818000, 0x3F82}, {0x3F808001, 0x3F81},
		{0xBF80FFFF, 0xBF81}, {0x7F7FFFFF, 0x7F80}, {0x7F800000, 0x7F80}, {0x00000001, 0x0000},
	} {
		if got := Float32ToBF16(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("Float32ToBF16(%#08x) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	if got := Float32ToBF16(float32(math.NaN())); got&0x7F80 != 0x7F80 || got&0x7F == 0 {
		t.Errorf("NaN → %#04x", got)
	}
}

// TestDecodeRawFinite checks the branch-free finiteness accumulators of
// every dtype on the boundary codes.
func TestDecodeRawFinite(t *testing.T) {
	cases := []struct {
		dt   DType
		good []uint32
		bad  []uint32
	}{
		{BF16, []uint32{0, 0x7F7F, 0xFF7F, 0x0080, 0x8000}, []uint32{0x7F80, 0xFF80, 0x7FC0, 0x7F81}},
		{F16, []uint32{0, 0x7BFF, 0xFBFF, 0x0001}, []uint32{0x7C00, 0xFC00, 0x7E00}},
		{F32, []uint32{0, 0x7F7FFFFF, 0xFF7FFFFF, 1}, []uint32{0x7F800000, 0xFF800000, 0x7FC00000}},
		{F8E4M3, []uint32{0, 0x7E, 0xFE, 0x78}, []uint32{0x7F, 0xFF}},
	}
	for _, c := range cases {
		for _, u := range append(c.good, c.bad...) {
			wantOK := true
			for _, b := range c.bad {
				wantOK = wantOK && u != b
			}
			src := make([]byte, 5*c.dt.Size())
			put := func(i int, u uint32) {
				switch c.dt.Size() {
				case 1:
					src[i] = byte(u)
				case 2:
					binary.LittleEndian.PutUint16(src[2*i:], uint16(u))
				case 4:
					binary.LittleEndian.PutUint32(src[4*i:], u)
				}
			}
			if nonFinite(c.dt, u) == wantOK {
				t.Errorf("%s %#x: nonFinite wrong", c.dt, u)
			}
			for at := range 5 { // in the unrolled body and in the tail
				clear(src)
				put(at, u)
				dst := make([]float32, 5)
				if ok := Decode(dst, src, c.dt); ok != wantOK {
					t.Errorf("%s %#x at %d: ok = %v", c.dt, u, at, ok)
				}
				if f := dst[at]; (f-f == 0) != wantOK || f != DecodeAt(src, c.dt, at) && f == f {
					t.Errorf("%s %#x decoded to %v", c.dt, u, f)
				}
			}
		}
	}
}

func TestUE8M0Scale(t *testing.T) {
	for amax, want := range map[float32]float32{
		0: 1, 448: 1, 449: 2, 896: 2, 1: 1.0 / 256, 447: 1, 224: 0.5, 225: 1, 1e-45: float32(math.Exp2(-126)), 3e38: float32(math.Exp2(120)),
	} {
		if got := UE8M0Scale(amax); got != want {
			t.Errorf("UE8M0Scale(%v) = %v, want %v", amax, got, want)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 10000 {
		amax := float32(math.Exp2(r.Float64()*80 - 40))
		s := UE8M0Scale(amax)
		if amax/s > 448 || amax/(s/2) <= 448 {
			t.Fatalf("UE8M0Scale(%v) = %v is not the smallest power of two ≥ amax/448", amax, s)
		}
	}
}

func TestEncodeRawOverflow(t *testing.T) {
	dst := make([]byte, 8)
	if i := Encode(dst, []float32{1, 2, 70000, 3}, F16); i != 2 {
		t.Errorf("F16 overflow at %d", i)
	}
	if i := Encode(dst, []float32{1, math.MaxFloat32, 0, 0}, BF16); i != 1 {
		t.Errorf("BF16 overflow at %d", i)
	}
	if i := Encode(dst, []float32{1, 65504, -65504, 0}, F16); i != -1 {
		t.Errorf("F16 max flagged at %d", i)
	}
}

// TestDecodeMatchesScalar checks the fast decoders against the scalar
// definitions on every 16-bit pattern.
func TestDecodeMatchesScalar(t *testing.T) {
	src := make([]byte, 2<<16)
	for h := range 1 << 16 {
		binary.LittleEndian.PutUint16(src[2*h:], uint16(h))
	}
	dst := make([]float32, 1<<16)
	Decode(dst, src, F16)
	for h, v := range dst {
		want := F16ToFloat32(uint16(h))
		if math.Float32bits(v) != math.Float32bits(want) {
			t.Fatalf("F16 %#04x: %v, want %v", h, v, want)
		}
	}
	Decode(dst, src, BF16)
	for h, v := range dst {
		if math.Float32bits(v) != uint32(h)<<16 {
			t.Fatalf("BF16 %#04x: %v", h, v)
		}
	}
}
