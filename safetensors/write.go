package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// Tensor is one tensor to write: its raw little-endian data must hold
// exactly product(Shape) elements of DType.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// Marshal builds a whole safetensors file in memory: the 8-byte header
// length, the JSON header (metadata first, then the tensors in the given
// order, padded with spaces to a multiple of 8 bytes so that the data
// section is 8-aligned, as Python's writer does), then the data, packed in
// the given order. It is meant for small files (tests, fixtures); a nil or
// empty meta writes no "__metadata__" entry.
func Marshal(meta map[string]string, tensors []Tensor) ([]byte, error) {
	var b bytes.Buffer
	b.Write(make([]byte, 8)) // the length, filled in below
	b.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			b.WriteByte(',')
		}
		first = false
	}
	if len(meta) > 0 {
		sep()
		b.WriteString(`"` + MetadataKey + `":{`)
		for i, k := range slices.Sorted(maps.Keys(meta)) {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(&b, k, meta[k]); err != nil {
				return nil, err
			}
		}
		b.WriteByte('}')
	}
	seen := map[string]bool{}
	var off int64
	for _, t := range tensors {
		if t.Name == MetadataKey || seen[t.Name] {
			return nil, fmt.Errorf("safetensors: Marshal: tensor name %q is reserved or repeated", t.Name)
		}
		seen[t.Name] = true
		size := t.DType.Size()
		if size == 0 {
			return nil, fmt.Errorf("safetensors: Marshal: tensor %s: unknown dtype %q", t.Name, t.DType)
		}
		n := 1
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("safetensors: Marshal: tensor %s: negative dimension in shape %v", t.Name, t.Shape)
			}
			n *= d
		}
		if n*size != len(t.Data) {
			return nil, fmt.Errorf("safetensors: Marshal: tensor %s: %s shape %v needs %d bytes, got %d", t.Name, t.DType, t.Shape, n*size, len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		sep()
		if err := writeJSON(&b, t.Name, struct {
			DType   DType    `json:"dtype"`
			Shape   []int    `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}{t.DType, shape, [2]int64{off, off + int64(len(t.Data))}}); err != nil {
			return nil, err
		}
		off += int64(len(t.Data))
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len()-8 > MaxHeaderLen {
		return nil, fmt.Errorf("safetensors: Marshal: header of %d bytes is over the %d-byte limit", b.Len()-8, MaxHeaderLen)
	}
	out := b.Bytes()
	binary.LittleEndian.PutUint64(out, uint64(len(out)-8))
	for _, t := range tensors {
		out = append(out, t.Data...)
	}
	return out, nil
}

// writeJSON writes "key":value.
func writeJSON(b *bytes.Buffer, key string, v any) error {
	k, err := json.Marshal(key)
	if err != nil {
		return err
	}
	val, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Write(k)
	b.WriteByte(':')
	b.Write(val)
	return nil
}
