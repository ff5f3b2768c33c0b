package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"runtime/debug"
	"sync"

	"golang.org/x/sys/unix"
)

// File is a safetensors file, memory-mapped read-only (or, on a file system
// without mmap, read into memory). Open parses and checks the header only;
// a tensor's pages are read when it is decoded.
//
// A File is safe for concurrent use. Close waits for calls in flight; later
// calls fail. Slices returned by Bytes and Data alias the mapping: they are
// valid until Close, and a caller that keeps using them must keep Close from
// running (as trace.File does with its own lock).
type File struct {
	path   string
	hdr    *Header
	mu     sync.RWMutex // read-held while data is in use, write-held by Close
	data   []byte       // the whole file; nil after Close
	mapped bool         // data comes from mmap and must be unmapped
}

// Open memory-maps a safetensors file and checks its header. Opening costs
// a header parse however large the file is. Errors are *Error for bad input
// (a missing file, a directory, a broken header) and *fs.PathError with Op
// "mmap" or "read" when the system fails.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, pathError(path, err)
	}
	defer fh.Close() // the mapping outlives the descriptor
	st, err := fh.Stat()
	if err != nil {
		return nil, pathError(path, err)
	}
	if st.IsDir() {
		return nil, &Error{File: path, Rule: "is a directory, not a safetensors file", Err: ErrDirectory}
	}
	size := st.Size()
	if size < 8 {
		return nil, errTooShort(path, size)
	}
	if size > math.MaxInt {
		return nil, newError(path, "", "file of %d bytes is too large to map", size)
	}
	data, err := unix.Mmap(int(fh.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if errors.Is(err, unix.ENODEV) {
		// A file system without mmap support (some FUSE mounts): read the
		// file instead, which costs its size in memory but still works.
		data = make([]byte, size)
		if _, err := io.ReadFull(fh, data); err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		return FromBytes(path, data)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "mmap", Path: path, Err: err}
	}
	f, err := FromBytes(path, data)
	if err != nil {
		_ = unix.Munmap(data)
		return nil, err
	}
	f.mapped = true
	return f, nil
}

// FromBytes checks a whole safetensors file held in data (bytes in memory,
// in tests and fuzzing) and builds a File over it; name only names it in
// errors. data must not be modified while the File is in use.
func FromBytes(name string, data []byte) (*File, error) {
	f := &File{path: name, data: data}
	err := CatchFault(name, func() error {
		var err error
		f.hdr, err = ParseHeader(name, data)
		return err
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Close unmaps the file. It waits for calls in flight; later calls fail.
// Closing twice is harmless.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	data := f.data
	f.data = nil
	if data == nil || !f.mapped {
		return nil
	}
	if err := unix.Munmap(data); err != nil {
		return &fs.PathError{Op: "munmap", Path: f.path, Err: err}
	}
	return nil
}

// Name is the path the file was opened with.
func (f *File) Name() string { return f.path }

// Header is the parsed header (read-only; its accessors return copies).
func (f *File) Header() *Header { return f.hdr }

// Metadata returns a copy of the __metadata__ strings.
func (f *File) Metadata() map[string]string { return f.hdr.Metadata() }

// Tensors lists every tensor sorted by name.
func (f *File) Tensors() []TensorInfo { return f.hdr.Tensors() }

// Info looks a tensor up by name.
func (f *File) Info(name string) (TensorInfo, bool) { return f.hdr.Info(name) }

// Mapped reports whether the file is memory-mapped (rather than read into
// memory).
func (f *File) Mapped() bool { return f.mapped }

// Data is the whole file (the mapping). See File for how long it is valid;
// reading it may fault if the file is truncated under the mapping (wrap the
// reads in CatchFault). It is nil after Close.
func (f *File) Data() []byte {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.data
}

// Bytes returns the data of a tensor: a slice of the mapping, valid until
// Close (see File).
func (f *File) Bytes(name string) ([]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	return f.slice(t), nil
}

// TensorBytes returns the data of t, a tensor of this file's header, without
// a name lookup (for hot paths). The same validity rules apply as for Bytes.
// It returns nil after Close.
func (f *File) TensorBytes(t TensorInfo) []byte {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.data == nil {
		return nil
	}
	return f.slice(t)
}

func (f *File) slice(t TensorInfo) []byte {
	s := f.hdr.dataStart
	return f.data[s+t.Begin : s+t.End : s+t.End]
}

// lookup finds a tensor of an open file; f.mu is read-held.
func (f *File) lookup(name string) (TensorInfo, error) {
	if f.data == nil {
		return TensorInfo{}, fmt.Errorf("safetensors %s: file is closed", f.path)
	}
	t, ok := f.hdr.Info(name)
	if !ok {
		return t, newError(f.path, name, "no such tensor in the file")
	}
	return t, nil
}

// WillNeed asks the kernel to start reading a tensor's pages ahead of a
// decode loop, so that a cold file is read in large requests rather than
// one fault at a time. It is only a hint, and a no-op for small tensors and
// unmapped files.
func (f *File) WillNeed(t TensorInfo) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if !f.mapped || f.data == nil || t.End-t.Begin < 1<<20 {
		return
	}
	page := int64(os.Getpagesize())
	begin := f.hdr.dataStart + t.Begin
	begin -= begin % page
	_ = unix.Madvise(f.data[begin:f.hdr.dataStart+t.End], unix.MADV_WILLNEED)
}

// Float32 decodes a whole tensor (BF16, F16, F32 or F8_E4M3, the latter
// without any scale) to float32. A NaN or ±Inf is an *Error naming the
// first bad element.
func (f *File) Float32(name string) ([]float32, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	return f.float32Rows(t, 0, rows(t))
}

// Float32Rows decodes rows [lo, hi) of a tensor along its first dimension
// (a 0-D tensor has one row), as Float32 does.
func (f *File) Float32Rows(name string, lo, hi int) ([]float32, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	if n := rows(t); lo < 0 || lo > hi || hi > n {
		return nil, fmt.Errorf("safetensors %s: tensor %s: rows [%d, %d) outside [0, %d)", f.path, name, lo, hi, n)
	}
	return f.float32Rows(t, lo, hi)
}

func rows(t TensorInfo) int {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[0]
}

// float32Rows decodes rows [lo, hi) of t; f.mu is read-held.
func (f *File) float32Rows(t TensorInfo, lo, hi int) ([]float32, error) {
	if !t.DType.IsFloat() {
		return nil, newError(f.path, t.Name, "dtype %s cannot be decoded to float32 (want BF16, F16, F32 or F8_E4M3)", t.DType)
	}
	if t.NumElements() == 0 || lo == hi {
		return []float32{}, nil
	}
	row, size := t.RowElements(), t.DType.Size()
	dst := make([]float32, (hi-lo)*row)
	src := f.slice(t)[lo*row*size : hi*row*size]
	err := CatchFault(f.path, func() error {
		if Decode(dst, src, t.DType) {
			return nil
		}
		for i, v := range dst {
			if v-v != 0 {
				at := lo*row + i
				return newError(f.path, t.Name, "element %s is %v (file offset %d): values must be finite",
					ElemIndex(t.Shape, at), v, f.hdr.dataStart+t.Begin+int64(at*size))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return dst, nil
}

// Int64 decodes an integer tensor (I64 or I32) to int64, as positions are
// stored.
func (f *File) Int64(name string) ([]int64, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	if t.DType != I64 && t.DType != I32 {
		return nil, newError(f.path, t.Name, "dtype %s is not an integer type this reader decodes (want I64 or I32)", t.DType)
	}
	out := make([]int64, t.NumElements())
	src := f.slice(t)
	err = CatchFault(f.path, func() error {
		for i := range out {
			if t.DType == I64 {
				out[i] = int64(binary.LittleEndian.Uint64(src[8*i:]))
			} else {
				out[i] = int64(int32(binary.LittleEndian.Uint32(src[4*i:])))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CatchFault runs fn with memory faults turned into errors. A mapped file
// that another process truncates raises SIGBUS on access; by default that
// kills the program, but a reader must report an error, never crash.
// SetPanicOnFault is per goroutine, so every goroutine that reads a mapping
// must go through here. A fault becomes an *Error naming file; fn's own
// errors pass through unchanged.
func CatchFault(file string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if fault, ok := r.(interface{ Addr() uintptr }); ok {
				err = newError(file, "", "memory fault reading the mapped file at %#x: was it truncated or changed while open?", fault.Addr())
				return
			}
			panic(r)
		}
	}()
	return fn()
}

// ElemIndex formats the multi-dimensional index of flat element i of a
// tensor of the given shape ("[2 0 5]").
func ElemIndex(shape []int, i int) string {
	if len(shape) == 0 {
		return "[]"
	}
	idx := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		if shape[d] > 0 {
			idx[d] = i % shape[d]
			i /= shape[d]
		}
	}
	return fmt.Sprint(idx)
}
