package trace

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	ownst "github.com/misabench/misabench/safetensors"
	"github.com/nlpodyssey/safetensors"
	"golang.org/x/sys/unix"
)

// tioBenchSource is a trace of long-context shape (64 heads × 128, 128K
// keys) whose layers all share one set of random values, so that building
// it costs one layer of memory.
func tioBenchSource(nq, nkeys, nlayers int) Source {
	meta := Meta{Format: FormatV1, Model: "bench", NCtx: nkeys, Heads: 64, HeadDim: 128, TopK: 2048}
	for l := range nlayers {
		meta.Layers = append(meta.Layers, l)
	}
	qpos := make([]int64, nq)
	for i := range qpos {
		qpos[i] = int64(nkeys - nq + i)
	}
	r := rand.New(rand.NewPCG(1, 1))
	gen := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	layer := &Layer{Q: gen(nq * 64 * 128), K: gen(nkeys * 128), W: gen(nq * 64)}
	src := &tioSource{meta: meta, qpos: qpos, nkeys: nkeys, layers: map[int]*Layer{}}
	for _, l := range meta.Layers {
		c := *layer
		c.Index = l
		src.layers[l] = &c
	}
	return src
}

// BenchmarkOpen compares opening a 441 MiB trace (11 layers of BF16 q
// [512,64,128] and k [131072,128]) with our mmap reader and with
// github.com/nlpodyssey/safetensors, which needs the file as one []byte:
// read onto the heap (its intended use) or, to be fair, an mmap'd slice.
// Each iteration opens the file and looks up one tensor. The page cache is
// warm for all of them (the file was just written), which favours ReadFile:
// from a cold cache it would also read all 441 MiB from disk.
func BenchmarkOpen(b *testing.B) {
	if testing.Short() {
		b.Skip("writes a 441 MiB file")
	}
	path := filepath.Join(b.TempDir(), "big.safetensors")
	if err := WriteSource(context.Background(), path, tioBenchSource(512, 128<<10, 11),
		WriteOptions{QType: DTypeBF16, KType: DTypeBF16}); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("trace of %d MB", st.Size()>>20)

	b.Run("own-mmap", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := Open(path)
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := f.st.Info("layers.7.k"); !ok {
				b.Fatal("no tensor")
			}
			f.Close()
		}
	})
	b.Run("nlpodyssey-readfile", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			data, err := os.ReadFile(path)
			if err != nil {
				b.Fatal(err)
			}
			st, err := safetensors.Deserialize(data)
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := st.Tensor("layers.7.k"); !ok {
				b.Fatal("no tensor")
			}
		}
	})
	b.Run("nlpodyssey-mmap", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fh, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			data, err := unix.Mmap(int(fh.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
			fh.Close()
			if err != nil {
				b.Fatal(err)
			}
			st, err := safetensors.Deserialize(data)
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := st.Tensor("layers.7.k"); !ok {
				b.Fatal("no tensor")
			}
			unix.Munmap(data)
		}
	})
}

// BenchmarkLayer decodes one long-context layer (k [131072,128], q
// [64,64,128]) per dtype; bytes/s counts float32 output. "reuse" decodes
// into the same buffers, as Validate does; "alloc" is Layer.
func BenchmarkLayer(b *testing.B) {
	src := tioBenchSource(64, 128<<10, 1)
	for _, dt := range []DType{DTypeBF16, DTypeF16, DTypeF32, DTypeF8E4M3} {
		path := filepath.Join(b.TempDir(), string(dt)+".safetensors")
		if err := WriteSource(context.Background(), path, src, WriteOptions{QType: dt, KType: dt}); err != nil {
			b.Fatal(err)
		}
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		out := 4 * int64(64*64*128+(128<<10)*128+64*64)
		b.Run(string(dt)+"/reuse", func(b *testing.B) {
			b.SetBytes(out)
			var l Layer
			for b.Loop() {
				if err := f.decodeLayer(context.Background(), 0, &l); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(dt)+"/alloc", func(b *testing.B) {
			b.SetBytes(out)
			for b.Loop() {
				if _, err := f.Layer(context.Background(), 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeBF16K is the inner loop alone on a 128K×128 BF16 k, one
// goroutine, to separate the loop's speed from parallelism and page faults.
func BenchmarkDecodeBF16K(b *testing.B) {
	n := (128 << 10) * 128
	src := make([]byte, 2*n)
	for i := range src {
		src[i] = byte(i * 7)
	}
	src[1], src[3] = 0x3F, 0x3F
	dst := make([]float32, n)
	b.SetBytes(int64(4 * n))
	for b.Loop() {
		ownst.Decode(dst, src, DTypeBF16)
	}
}

// BenchmarkWriteLayer encodes and writes one long-context layer.
func BenchmarkWriteLayer(b *testing.B) {
	src := tioBenchSource(64, 128<<10, 1)
	for _, dt := range []DType{DTypeBF16, DTypeF8E4M3} {
		b.Run(string(dt), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "w.safetensors")
			for b.Loop() {
				if err := WriteSource(context.Background(), path, src, WriteOptions{QType: dt, KType: dt}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
