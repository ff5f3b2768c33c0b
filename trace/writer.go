package trace

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"

	"github.com/misabench/misabench/safetensors"
)

// WriteOptions chooses how q and k are stored. The zero value stores both as
// F32. Allowed: BF16, F16, F32 and F8_E4M3; F8_E4M3 adds power-of-two F32
// scales, per (row, head) for q and per row for k, computed as DeepSeek's
// act_quant does with scale_fmt "ue8m0".
type WriteOptions struct {
	QType, KType DType
}

func (o WriteOptions) normalize(path string) (WriteOptions, error) {
	for _, p := range []*DType{&o.QType, &o.KType} {
		if *p == "" {
			*p = DTypeF32
		}
		if !isInput(*p) {
			return o, newFormatError(path, "", "cannot store q or k as %s (allowed: %s)", *p, joinDTypes(inputDTypes))
		}
	}
	return o, nil
}

// Writer writes one trace; it is not safe for concurrent use. The header, and so every tensor's place in the
// file, is fixed by Create; WriteLayer fills in one layer at a time, so
// memory stays at one layer however long the trace is. Everything goes to
// a temporary file next to the destination, renamed into place by Close:
// readers never see a half-written trace, and a failed write leaves nothing.
type Writer struct {
	path, tmp string
	f         *os.File // nil once closed or aborted
	meta      Meta
	nq, nkeys int
	opt       WriteOptions
	dataStart int64
	tensors   map[string]TensorInfo
	next      int   // index into meta.Layers of the next layer to write
	err       error // sticky: the first error, after which the writer is dead
	buf       []byte
}

// Create checks meta, qpos and nkeys as Open would check the resulting
// file, and starts writing a trace to a temporary file "path.tmp-*" in the
// same directory (so that the final rename cannot cross file systems).
func Create(path string, meta Meta, qpos []int64, nkeys int, opt WriteOptions) (*Writer, error) {
	opt, err := opt.normalize(path)
	if err != nil {
		return nil, err
	}
	// One set of rules for reading and writing: encode the metadata and
	// parse it back exactly as Open will.
	raw := EncodeMeta(meta)
	m, err := ParseMeta(path, raw)
	if err != nil {
		return nil, err
	}
	nq := len(qpos)
	if nq == 0 {
		return nil, newFormatError(path, qposName, "has no query rows")
	}
	if nkeys < 1 {
		return nil, newFormatError(path, layerTensorName(m.Layers[0], "k"), "has %d key rows; a trace needs at least one", nkeys)
	}
	if nkeys > m.NCtx {
		return nil, newFormatError(path, layerTensorName(m.Layers[0], "k"), "has %d key rows, more than n_ctx = %d", nkeys, m.NCtx)
	}
	if err := checkQPos(path, qpos, nkeys, m.NCtx); err != nil {
		return nil, err
	}

	// Plan the tensors. They are laid out by element size, largest first
	// (as Python's safetensors does), so that every tensor is naturally
	// aligned and the data section has no gaps, which the reference
	// implementation refuses. Offsets need only the shapes.
	plan := []TensorInfo{{Name: qposName, DType: DTypeI64, Shape: []int{nq}}}
	for _, l := range m.Layers {
		plan = append(plan, TensorInfo{Name: layerTensorName(l, "q"), DType: opt.QType, Shape: []int{nq, m.Heads, m.HeadDim}})
		if opt.QType == DTypeF8E4M3 {
			plan = append(plan, TensorInfo{Name: layerTensorName(l, "q_scale"), DType: DTypeF32, Shape: []int{nq, m.Heads}})
		}
		plan = append(plan, TensorInfo{Name: layerTensorName(l, "k"), DType: opt.KType, Shape: []int{nkeys, m.HeadDim}})
		if opt.KType == DTypeF8E4M3 {
			plan = append(plan, TensorInfo{Name: layerTensorName(l, "k_scale"), DType: DTypeF32, Shape: []int{nkeys}})
		}
		plan = append(plan, TensorInfo{Name: layerTensorName(l, "w"), DType: DTypeF32, Shape: []int{nq, m.Heads}})
	}
	slices.SortStableFunc(plan, func(a, b TensorInfo) int { return b.DType.Size() - a.DType.Size() })
	var off uint64
	for i := range plan {
		n := uint64(plan[i].DType.Size())
		overflow := false
		for _, d := range plan[i].Shape {
			hi, lo := bits.Mul64(n, uint64(d))
			overflow = overflow || hi != 0
			n = lo
		}
		if overflow || off+n < off || off+n > math.MaxInt64/2 {
			return nil, newFormatError(path, plan[i].Name, "shape %v is too large to write", plan[i].Shape)
		}
		plan[i].Begin, plan[i].End = int64(off), int64(off+n)
		off += n
	}
	hdr, err := safetensors.EncodeHeader(raw, plan)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", path, err)
	}

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
			// The temporary name in CreateTemp's error would only confuse.
			return nil, fmt.Errorf("trace %s: directory %s does not exist (%w)", path, dir, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("trace %s: %w", path, err)
	}
	w := &Writer{
		path: path, tmp: f.Name(), f: f, meta: m, nq: nq, nkeys: nkeys, opt: opt,
		dataStart: int64(len(hdr)), tensors: make(map[string]TensorInfo, len(plan)),
	}
	for _, t := range plan {
		w.tensors[t.Name] = t
	}
	// Size the file up front: the data is then written in place, in any
	// order, and a crash leaves a temporary file of the right size at worst.
	if err := f.Truncate(w.dataStart + int64(off)); err != nil {
		return nil, w.fail(fmt.Errorf("trace %s: %w", path, err))
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return nil, w.fail(fmt.Errorf("trace %s: %w", path, err))
	}
	qb := make([]byte, 8*nq)
	for i, p := range qpos {
		binary.LittleEndian.PutUint64(qb[8*i:], uint64(p))
	}
	if err := w.writeAt(qposName, qb, 0); err != nil {
		return nil, err
	}
	return w, nil
}

// WriteLayer writes the next layer, in the order of the metadata's Layers.
// It checks the layer's index and sizes and that every value is finite
// (and, for F16 or BF16, representable). After an error the writer is dead
// and its temporary file removed.
func (w *Writer) WriteLayer(l *Layer) error {
	if w.err != nil {
		return w.err
	}
	if w.next >= len(w.meta.Layers) {
		return w.fail(newFormatError(w.path, "", "all %d layers are already written", len(w.meta.Layers)))
	}
	want := w.meta.Layers[w.next]
	if l == nil {
		return w.fail(newFormatError(w.path, "", "nil layer (want layer %d)", want))
	}
	if l.Index != want {
		return w.fail(newFormatError(w.path, "", "got layer %d, want layer %d (layers go in the order of the metadata: %s)",
			l.Index, want, formatLayerList(w.meta.Layers)))
	}
	h, d := w.meta.Heads, w.meta.HeadDim
	for _, c := range []struct {
		what string
		vals []float32
		n    int
		dims string
	}{
		{"q", l.Q, w.nq * h * d, "Q×heads×head_dim"},
		{"k", l.K, w.nkeys * d, "N×head_dim"},
		{"w", l.W, w.nq * h, "Q×heads"},
	} {
		name := layerTensorName(want, c.what)
		if len(c.vals) != c.n {
			return w.fail(newFormatError(w.path, name, "has %d values, want %d = %s", len(c.vals), c.n, c.dims))
		}
		if i := firstNonFiniteF32(c.vals); i >= 0 {
			return w.fail(newFormatError(w.path, name, "element %s is %v: values must be finite",
				elemIndex(w.tensors[name].Shape, i), c.vals[i]))
		}
	}
	if err := w.writeInput(want, "q", l.Q, w.opt.QType, d); err != nil {
		return err
	}
	if err := w.writeInput(want, "k", l.K, w.opt.KType, d); err != nil {
		return err
	}
	if err := w.writeInput(want, "w", l.W, DTypeF32, 0); err != nil {
		return err
	}
	w.next++
	return nil
}

// writeInput encodes and writes layers.{l}.{what} and, for F8_E4M3, its
// scales (one per run of group values).
func (w *Writer) writeInput(l int, what string, vals []float32, dt DType, group int) error {
	name := layerTensorName(l, what)
	var scale []float32
	if dt == DTypeF8E4M3 {
		scale = make([]float32, len(vals)/group)
		safetensors.UE8M0Scales(scale, vals, group)
		sb := make([]byte, 4*len(scale))
		safetensors.Encode(sb, scale, DTypeF32)
		if err := w.writeAt(layerTensorName(l, what+"_scale"), sb, 0); err != nil {
			return err
		}
	}

	size := dt.Size()
	unit := 1
	if scale != nil {
		unit = group
	}
	step := max(4*chunkElems/unit, 1) * unit // 1M values: a few MB per write
	for a := 0; a < len(vals); a += step {
		b := min(a+step, len(vals))
		if need := (b - a) * size; cap(w.buf) < need {
			w.buf = make([]byte, need)
		}
		buf := w.buf[:(b-a)*size]
		bad, _ := parallelRange(b-a, unit, func(lo, hi int) (int, error) {
			if scale != nil {
				safetensors.EncodeE4M3Scaled(buf[lo:hi], vals[a+lo:a+hi], scale[(a+lo)/group:(a+hi)/group], group)
				return -1, nil
			}
			if i := safetensors.Encode(buf[lo*size:hi*size], vals[a+lo:a+hi], dt); i >= 0 {
				return a + lo + i, nil
			}
			return -1, nil
		})
		if bad >= 0 {
			return w.fail(newFormatError(w.path, name, "element %s = %v overflows %s",
				elemIndex(w.tensors[name].Shape, bad), vals[bad], dt))
		}
		if err := w.writeAt(name, buf, int64(a*size)); err != nil {
			return err
		}
	}
	return nil
}

// writeAt writes b at byte offset off of the named tensor's data.
func (w *Writer) writeAt(name string, b []byte, off int64) error {
	t := w.tensors[name]
	if off+int64(len(b)) > t.End-t.Begin { // a bug here, not bad input
		return w.fail(fmt.Errorf("trace %s: internal error: write past the end of %s", w.path, name))
	}
	if _, err := w.f.WriteAt(b, w.dataStart+t.Begin+off); err != nil {
		return w.fail(fmt.Errorf("trace %s: %w", w.path, err))
	}
	return nil
}

// Close checks that every layer was written, syncs the temporary file and
// renames it to the destination path. On any error the temporary file is
// removed and nothing is left at path.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.next < len(w.meta.Layers) {
		return w.fail(newFormatError(w.path, "", "closed after %d of %d layers (missing layer %d)",
			w.next, len(w.meta.Layers), w.meta.Layers[w.next]))
	}
	// The file must be on disk before its name is: otherwise a crash can
	// leave a complete-looking trace full of zeros.
	if err := w.f.Sync(); err != nil {
		return w.fail(fmt.Errorf("trace %s: sync: %w", w.path, err))
	}
	// CreateTemp makes the file private (0600); a trace is data to share.
	if err := w.f.Chmod(0o644); err != nil {
		return w.fail(fmt.Errorf("trace %s: %w", w.path, err))
	}
	f := w.f
	w.f = nil
	if err := f.Close(); err != nil {
		_ = os.Remove(w.tmp)
		w.err = fmt.Errorf("trace %s: %w", w.path, err)
		return w.err
	}
	if err := os.Rename(w.tmp, w.path); err != nil {
		_ = os.Remove(w.tmp)
		w.err = fmt.Errorf("trace %s: %w", w.path, err)
		return w.err
	}
	w.err = fmt.Errorf("trace %s: writer already closed", w.path)
	syncDir(filepath.Dir(w.path))
	return nil
}

// syncDir makes a rename in dir durable. It is best effort: the data
// itself is already synced, and some file systems refuse to sync a
// directory.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// Abort stops writing and removes the temporary file. It is safe to call
// at any time, also after Close (then it does nothing), so that
// "defer w.Abort()" is the way to clean up on every error path.
func (w *Writer) Abort() {
	if w.err == nil {
		w.err = fmt.Errorf("trace %s: writer aborted", w.path)
	}
	w.removeTemp()
}

// fail records err as the writer's error, removes the temporary file and
// returns err.
func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	w.removeTemp()
	return err
}

func (w *Writer) removeTemp() {
	if w.f == nil {
		return
	}
	_ = w.f.Close()
	_ = os.Remove(w.tmp)
	w.f = nil
}

// WriteSource writes every layer of src to a trace at path: Create, each
// layer in order, Close. On an error or a cancelled ctx, nothing is left at
// path.
func WriteSource(ctx context.Context, path string, src Source, opt WriteOptions) error {
	w, err := Create(path, src.Meta(), src.QPos(), src.NKeys(), opt)
	if err != nil {
		return err
	}
	defer w.Abort()
	for _, l := range w.meta.Layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		layer, err := src.Layer(ctx, l)
		if err != nil {
			return fmt.Errorf("write %s: layer %d of %s: %w", path, l, src.Name(), err)
		}
		if err := w.WriteLayer(layer); err != nil {
			return err
		}
	}
	return w.Close()
}

func absF32(v float32) float32 {
	return math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
}

// firstNonFiniteF32 returns the index of the first NaN or ±Inf in v, or -1.
func firstNonFiniteF32(v []float32) int {
	var acc uint32
	for _, x := range v {
		acc |= (math.Float32bits(x) & 0x7F800000) + 0x800000
	}
	if acc&0x80000000 == 0 {
		return -1
	}
	for i, x := range v {
		if x-x != 0 {
			return i
		}
	}
	return -1 // unreachable
}

// File is a Source: a trace read back can be written again (re-encoded).
var _ Source = (*File)(nil)
