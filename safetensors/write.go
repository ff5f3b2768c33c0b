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
	seen := map[string]bool{}
	infos := make([]TensorInfo, 0, len(tensors))
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
		infos = append(infos, TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape, Begin: off, End: off + int64(len(t.Data))})
		off += int64(len(t.Data))
	}
	out, err := EncodeHeader(meta, infos)
	if err != nil {
		return nil, fmt.Errorf("safetensors: Marshal: %w", err)
	}
	for _, t := range tensors {
		out = append(out, t.Data...)
	}
	return out, nil
}

// EncodeHeader builds the 8-byte length and the JSON header of a file with
// these tensors (offsets as given, relative to the data section): metadata
// first when there is any (keys sorted), then the tensors in the given
// order, padded with spaces to a multiple of 8 bytes so that the data
// section is 8-aligned, as Python's writer does.
func EncodeHeader(meta map[string]string, tensors []TensorInfo) ([]byte, error) {
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
	for _, t := range tensors {
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		sep()
		if err := writeJSON(&b, t.Name, struct {
			DType   DType    `json:"dtype"`
			Shape   []int    `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}{t.DType, shape, [2]int64{t.Begin, t.End}}); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len()-8 > MaxHeaderLen {
		return nil, fmt.Errorf("header of %d bytes is over the %d-byte limit", b.Len()-8, MaxHeaderLen)
	}
	out := b.Bytes()
	binary.LittleEndian.PutUint64(out, uint64(len(out)-8))
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
