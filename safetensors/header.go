package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderLen bounds the JSON header. The reference implementation uses
// the same 100 MB limit; anything larger is a corrupt length, not a real
// header, and must not make us parse (or allocate for) gigabytes of garbage.
const MaxHeaderLen = 100_000_000

// MetadataKey is the reserved header entry that holds string metadata.
const MetadataKey = "__metadata__"

// TensorInfo describes one tensor of a safetensors file. Begin and End are
// byte offsets relative to the start of the data section (after the header).
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	Begin int64
	End   int64
}

// NumElements is the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// RowElements is the number of elements of one row along the first
// dimension (the product of the other dimensions; 1 for a 1-D tensor).
func (t TensorInfo) RowElements() int {
	n := 1
	for _, d := range t.Shape[min(1, len(t.Shape)):] {
		n *= d
	}
	return n
}

// clone returns t with its own copy of the shape.
func (t TensorInfo) clone() TensorInfo {
	t.Shape = slices.Clone(t.Shape)
	return t
}

// Header is a parsed and bounds-checked safetensors header: every tensor's
// byte range lies inside the data section, matches its dtype and shape, and
// overlaps no other tensor, so that slicing the data by it is always safe.
type Header struct {
	meta      map[string]string // never nil
	tensors   []TensorInfo      // sorted by name
	byName    map[string]int    // index into tensors
	dataStart int64             // 8 + header length
}

// Metadata returns a copy of the __metadata__ strings (empty, not nil, when
// the file has none).
func (h *Header) Metadata() map[string]string { return maps.Clone(h.meta) }

// Tensors lists every tensor sorted by name (copies: callers may modify
// them).
func (h *Header) Tensors() []TensorInfo {
	out := make([]TensorInfo, len(h.tensors))
	for i, t := range h.tensors {
		out[i] = t.clone()
	}
	return out
}

// Len is the number of tensors.
func (h *Header) Len() int { return len(h.tensors) }

// Info looks a tensor up by name.
func (h *Header) Info(name string) (TensorInfo, bool) {
	i, ok := h.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return h.tensors[i].clone(), true
}

// DataStart is the file offset of the data section: 8 + the header length.
func (h *Header) DataStart() int64 { return h.dataStart }

// ParseHeader parses and checks the header of a safetensors file whose bytes
// are data (the whole file: a memory map, or a slice in tests). Every tensor
// is checked against the data section's bounds, its dtype size and the other
// tensors, so that a later slice of data can never be out of range. file
// only names the file in errors, which are *Error values.
//
// The parser is strict where a wrong number could result (bounds, overlap,
// byte length = elements × dtype size, duplicate names, an unknown dtype)
// and lenient where writers differ harmlessly: Python's safetensors pads the
// JSON with spaces, orders entries freely and may put "__metadata__"
// anywhere; gaps between tensors and trailing bytes are tolerated.
func ParseHeader(file string, data []byte) (*Header, error) {
	size := int64(len(data))
	if size < 8 {
		return nil, errTooShort(file, size)
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderLen {
		return nil, newError(file, "", "header length %d is absurd (limit %d bytes): not a safetensors file?", n, MaxHeaderLen)
	}
	if int64(n) > size-8 {
		return nil, newError(file, "", "header length %d runs past the end of the %d-byte file: truncated?", n, size)
	}
	raw := data[8 : 8+n]
	if !utf8.Valid(raw) {
		// encoding/json would silently replace bad bytes in names.
		return nil, newError(file, "", "header is not valid UTF-8")
	}
	h := &Header{dataStart: 8 + int64(n), byName: map[string]int{}}
	dataLen := size - h.dataStart

	entries, err := splitObject(raw)
	if err != nil {
		return nil, newError(file, "", "header is not a JSON object: %v", err)
	}
	for _, e := range entries {
		if e.name == MetadataKey {
			if h.meta != nil {
				return nil, newError(file, MetadataKey, "appears twice in the header")
			}
			if h.meta, err = parseMetadataObject(e.value); err != nil {
				return nil, newError(file, MetadataKey, "%v", err)
			}
			continue
		}
		if _, dup := h.byName[e.name]; dup {
			return nil, newError(file, e.name, "appears twice in the header")
		}
		t, err := parseTensorEntry(e.name, e.value, dataLen)
		if err != nil {
			return nil, newError(file, e.name, "%v", err)
		}
		h.byName[e.name] = len(h.tensors)
		h.tensors = append(h.tensors, t)
	}
	if h.meta == nil {
		h.meta = map[string]string{}
	}

	// Overlap: sort by (begin, end) and compare neighbours. Empty tensors
	// occupy no bytes and overlap nothing.
	order := make([]int, 0, len(h.tensors))
	for i, t := range h.tensors {
		if t.End > t.Begin {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		ta, tb := &h.tensors[a], &h.tensors[b]
		if c := cmp.Compare(ta.Begin, tb.Begin); c != 0 {
			return c
		}
		return cmp.Compare(ta.End, tb.End)
	})
	for i := 1; i < len(order); i++ {
		prev, cur := h.tensors[order[i-1]], h.tensors[order[i]]
		if cur.Begin < prev.End {
			return nil, newError(file, cur.Name, "data_offsets [%d,%d] overlap tensor %s [%d,%d]",
				cur.Begin, cur.End, prev.Name, prev.Begin, prev.End)
		}
	}

	slices.SortFunc(h.tensors, func(a, b TensorInfo) int { return cmp.Compare(a.Name, b.Name) })
	for i, t := range h.tensors {
		h.byName[t.Name] = i
	}
	return h, nil
}

type jsonEntry struct {
	name  string
	value json.RawMessage
}

// splitObject splits a JSON object into its entries in file order, keeping
// duplicates (encoding/json into a map would silently keep the last one, and
// a header that names a tensor twice is lying about one of them). Trailing
// whitespace, such as Python's padding, is allowed; anything else is not.
func splitObject(raw []byte) ([]jsonEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, errors.New("does not start with {")
	}
	var out []jsonEntry
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok { // unreachable with encoding/json, which rejects non-string keys
			return nil, errors.New("object key is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, jsonEntry{name, v})
	}
	if _, err := dec.Token(); err != nil { // the closing }
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the object")
	}
	return out, nil
}

// parseMetadataObject decodes __metadata__, which the format defines as a
// string-to-string map.
func parseMetadataObject(v json.RawMessage) (map[string]string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(v, &obj); err != nil || obj == nil {
		return nil, errors.New("is not a JSON object")
	}
	m := make(map[string]string, len(obj))
	for k, raw := range obj {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("value of %q is %s, not a string (safetensors metadata values are strings)", k, clipJSON(raw))
		}
		m[k] = s
	}
	return m, nil
}

// parseTensorEntry decodes and checks one tensor entry against a data
// section of dataLen bytes.
func parseTensorEntry(name string, v json.RawMessage, dataLen int64) (TensorInfo, error) {
	t := TensorInfo{Name: name}
	// RawMessage fields, decoded one by one below, give each field its own
	// error message; a missing field stays nil (null would be "null").
	var e struct {
		DType       json.RawMessage `json:"dtype"`
		Shape       json.RawMessage `json:"shape"`
		DataOffsets json.RawMessage `json:"data_offsets"`
	}
	if b := bytes.TrimLeft(v, " \t\r\n"); len(b) == 0 || b[0] != '{' || json.Unmarshal(v, &e) != nil {
		return t, fmt.Errorf("header entry is %s, not an object with dtype, shape and data_offsets", clipJSON(v))
	}
	for _, f := range []struct {
		key string
		raw json.RawMessage
	}{{"dtype", e.DType}, {"shape", e.Shape}, {"data_offsets", e.DataOffsets}} {
		if f.raw == nil {
			return t, fmt.Errorf("header entry has no %q", f.key)
		}
	}
	var dt string
	if err := json.Unmarshal(e.DType, &dt); err != nil {
		return t, fmt.Errorf("dtype %s is not a string", clipJSON(e.DType))
	}
	t.DType = DType(dt)
	size := t.DType.Size()
	if size == 0 {
		return t, fmt.Errorf("unknown dtype %q", dt)
	}

	shape, err := naturals(e.Shape)
	if err != nil {
		return t, fmt.Errorf("shape %s: %v", clipJSON(e.Shape), err)
	}
	off, err := naturals(e.DataOffsets)
	if err != nil || len(off) != 2 {
		return t, fmt.Errorf("data_offsets %s is not a pair [begin, end] of byte offsets", clipJSON(e.DataOffsets))
	}
	if off[0] > off[1] {
		return t, fmt.Errorf("data_offsets [%d,%d] end before they begin", off[0], off[1])
	}
	if off[1] > uint64(dataLen) {
		return t, fmt.Errorf("data_offsets [%d,%d] run past the end of the %d-byte data section: truncated file or lying header", off[0], off[1], dataLen)
	}
	t.Begin, t.End = int64(off[0]), int64(off[1])

	// Bytes = product(shape) × size, overflow-checked: a lying shape must be
	// refused, not wrapped around into a plausible number.
	want := uint64(size)
	overflow := false
	for _, d := range shape {
		hi, lo := bits.Mul64(want, d)
		overflow = overflow || hi != 0
		want = lo
	}
	if overflow || want != off[1]-off[0] {
		return t, fmt.Errorf("%s shape %v needs %s bytes but data_offsets [%d,%d] hold %d",
			dt, shape, bytesNeeded(overflow, want), off[0], off[1], off[1]-off[0])
	}
	t.Shape = make([]int, len(shape))
	for i, d := range shape {
		// d ≤ dataLen unless another dimension is 0; refuse what int cannot hold.
		if d > math.MaxInt {
			return t, fmt.Errorf("shape %v has an absurd dimension", shape)
		}
		t.Shape[i] = int(d)
	}
	return t, nil
}

func bytesNeeded(overflow bool, n uint64) string {
	if overflow {
		return "more than 2^64"
	}
	return strconv.FormatUint(n, 10)
}

// naturals decodes a JSON array of non-negative integers.
func naturals(v json.RawMessage) ([]uint64, error) {
	// Elements stay raw so that only integer literals pass: a json.Number
	// would also accept the string "3", and a float64 would round 2^60+1.
	var elems []json.RawMessage
	if err := json.Unmarshal(v, &elems); err != nil || elems == nil {
		return nil, errors.New("is not a list of non-negative integers")
	}
	out := make([]uint64, len(elems))
	for i, e := range elems {
		n, err := strconv.ParseUint(string(bytes.TrimSpace(e)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("element %s is not a non-negative integer", clipJSON(e))
		}
		out[i] = n
	}
	return out, nil
}

// clipJSON shortens a JSON value for an error message.
func clipJSON(v []byte) string {
	const limit = 40
	if len(v) > limit {
		return string(v[:limit]) + "…"
	}
	return string(v)
}
