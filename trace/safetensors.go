// Reading safetensors: why misabench has its own reader.
//
// The format is simple: an 8-byte little-endian header length n, n bytes of
// JSON (tensor name → dtype, shape, data_offsets, plus an optional
// "__metadata__" object of strings), then the data. We evaluated
// github.com/nlpodyssey/safetensors against the small reader below
// (BenchmarkOpen in bench_test.go: open a 441 MiB trace of 34 tensors and
// look one up; 2-core AMD EPYC VM, warm page cache) and kept our own:
//
//	our mmap reader              0.18 ms     76 KB allocated
//	nlpodyssey + os.ReadFile     57-72 ms   463 MB allocated (the whole file)
//	nlpodyssey over our mmap     0.12 ms     43 KB allocated
//
//   - nlpodyssey's Deserialize takes the whole file as one []byte; its
//     intended use, os.ReadFile, copies every byte onto the heap before the
//     first tensor is looked at. That is 300× slower from a warm cache (and
//     reads gigabytes from disk from a cold one) and needs the file's size in
//     RAM per open trace. Opening must touch only the header, decoding only
//     the layer it decodes: that is what mmap gives.
//   - Fed our mmap'd slice instead, its header parse is a little faster than
//     ours (one reflective json.Unmarshal, no duplicate-name check), but it
//     still cannot serve: it has no F8_E4M3 dtype, so FP8 traces fail to
//     open; it refuses gaps between tensors, which our reader tolerates; and
//     its errors do not say which tensor broke which rule, while ours must
//     name the file, the tensor and the rule (DESIGN §3). Wrapping it would
//     mean parsing the header twice for the checks it lacks.
//   - Safety on multi-gigabyte files: offsets are checked against the
//     mapping with overflow-checked arithmetic before any slice is taken, and
//     a file truncated under the mapping (SIGBUS) becomes an error through
//     debug.SetPanicOnFault (see catchFault), never a crash. The parser is
//     small and fuzzed (FuzzParseHeader).
//
// The reader is strict where a wrong number could result (bounds, overlap,
// byte length = elements × dtype size, duplicate names) and lenient where
// other writers differ harmlessly: Python's safetensors pads the JSON with
// spaces, orders entries freely and may put "__metadata__" anywhere; gaps
// between tensors and trailing bytes are tolerated.

package trace

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
)

// maxHeaderLen bounds the JSON header. The reference implementation uses the
// same 100 MB limit; anything larger is a corrupt length, not a real header,
// and must not make us parse (or allocate for) gigabytes of garbage.
const maxHeaderLen = 100_000_000

// metadataKey is the reserved header entry that holds string metadata.
const metadataKey = "__metadata__"

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

// header is a parsed and bounds-checked safetensors header.
type header struct {
	meta      map[string]string // nil when the file has no __metadata__
	tensors   []TensorInfo      // sorted by name
	byName    map[string]int    // index into tensors
	dataStart int64             // 8 + header length
}

func (h *header) tensor(name string) (TensorInfo, bool) {
	i, ok := h.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return h.tensors[i], true
}

func errTooShort(file string, size int64) error {
	return newFormatError(file, "", "file is %d bytes, shorter than the 8-byte header length", size)
}

// parseHeader parses and checks the header of a safetensors file whose bytes
// are data (the whole file: a memory map, or a slice in tests). Every tensor
// is checked against the data section's bounds, its dtype size and the other
// tensors, so that a later slice of data can never be out of range.
func parseHeader(file string, data []byte) (*header, error) {
	size := int64(len(data))
	if size < 8 {
		return nil, errTooShort(file, size)
	}
	n := binary.LittleEndian.Uint64(data)
	if n > maxHeaderLen {
		return nil, newFormatError(file, "", "header length %d is absurd (limit %d bytes): not a safetensors file?", n, maxHeaderLen)
	}
	if int64(n) > size-8 {
		return nil, newFormatError(file, "", "header length %d runs past the end of the %d-byte file: truncated?", n, size)
	}
	raw := data[8 : 8+n]
	if !utf8.Valid(raw) {
		// encoding/json would silently replace bad bytes in names.
		return nil, newFormatError(file, "", "header is not valid UTF-8")
	}
	h := &header{dataStart: 8 + int64(n), byName: map[string]int{}}
	dataLen := size - h.dataStart

	entries, err := splitObject(raw)
	if err != nil {
		return nil, newFormatError(file, "", "header is not a JSON object: %v", err)
	}
	for _, e := range entries {
		if e.name == metadataKey {
			if h.meta != nil {
				return nil, newFormatError(file, metadataKey, "appears twice in the header")
			}
			if h.meta, err = parseMetadataObject(e.value); err != nil {
				return nil, newFormatError(file, metadataKey, "%v", err)
			}
			continue
		}
		if _, dup := h.byName[e.name]; dup {
			return nil, newFormatError(file, e.name, "appears twice in the header")
		}
		t, err := parseTensorEntry(e.name, e.value, dataLen)
		if err != nil {
			return nil, newFormatError(file, e.name, "%v", err)
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
			return nil, newFormatError(file, cur.Name, "data_offsets [%d,%d] overlap tensor %s [%d,%d]",
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

// clip shortens a JSON value for an error message.
func clipJSON(v []byte) string {
	const limit = 40
	if len(v) > limit {
		return string(v[:limit]) + "…"
	}
	return string(v)
}
