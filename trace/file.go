package trace

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/misabench/misabench/safetensors"
)

// File is a trace file on disk, memory-mapped. Open checks everything that
// can be checked without decoding the data (header, shapes, metadata, q_pos);
// Layer decodes one layer and checks its values; Validate checks them all.
//
// A File is safe for concurrent use. Close must not be called while other
// calls are in flight: it waits for them.
type File struct {
	path   string
	st     *safetensors.File // the mapped file and its checked header
	closed bool              // set by Close, under mu
	meta   Meta
	qpos   []int64
	nkeys  int
	layers map[int]layerTensors

	mu       sync.RWMutex // read-held while st's data is in use, write-held by Close
	hashOnce sync.Once
	hash     string
}

// layerTensors are the checked tensors of one layer. qScale and kScale are
// set iff q and k are F8_E4M3.
type layerTensors struct {
	q, k, w        TensorInfo
	qScale, kScale *TensorInfo
}

// Tensor names of the format (DESIGN §3).
const qposName = "q_pos"

// metadataKey names the metadata in errors.
const metadataKey = safetensors.MetadataKey

func layerTensorName(l int, what string) string {
	return "layers." + strconv.Itoa(l) + "." + what
}

// Open memory-maps a trace and checks its header, metadata, shapes and query
// positions. It does not decode any layer: Layer and Validate do.
//
// The file is mapped read-only and shared, so opening costs a header parse
// however large the trace is, and pages are read from the page cache only
// when a layer is decoded.
func Open(path string) (*File, error) {
	st, err := safetensors.Open(path)
	if errors.Is(err, safetensors.ErrDirectory) {
		return nil, newFormatError(path, "", "is a directory, not a trace file")
	}
	if err != nil {
		return nil, fromSafetensors(err)
	}
	f, err := newFile(st)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return f, nil
}

// newFile checks a whole trace over an open safetensors file (a mapping,
// or bytes in tests and fuzzing) and builds a File over it.
func newFile(st *safetensors.File) (*File, error) {
	f := &File{path: st.Name(), st: st}
	err := catchFault(f.path, func() error {
		var err error
		if f.meta, err = ParseMeta(f.path, st.Metadata()); err != nil {
			return err
		}
		return f.checkLayout()
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// newFileBytes checks a trace held in data (tests and fuzzing).
func newFileBytes(path string, data []byte) (*File, error) {
	st, err := safetensors.FromBytes(path, data)
	if err != nil {
		return nil, fromSafetensors(err)
	}
	return newFile(st)
}

// checkLayout checks the tensors the format names against the metadata and
// each other, then the query positions.
func (f *File) checkLayout() error {
	m := &f.meta
	qp, ok := f.st.Info(qposName)
	if !ok {
		return newFormatError(f.path, qposName, "missing")
	}
	if err := f.checkTensor(qp, []DType{DTypeI64}, nil); err != nil {
		return err
	}
	if len(qp.Shape) != 1 {
		return newFormatError(f.path, qposName, "shape %v is not [Q]", qp.Shape)
	}
	nq := qp.Shape[0]
	if nq < 1 {
		return newFormatError(f.path, qposName, "has no query rows")
	}

	f.nkeys = -1
	f.layers = make(map[int]layerTensors, len(m.Layers))
	for _, l := range m.Layers {
		var lt layerTensors
		var err error
		get := func(what string) (TensorInfo, error) {
			name := layerTensorName(l, what)
			t, ok := f.st.Info(name)
			if !ok {
				return t, newFormatError(f.path, name, "missing (layer %d is listed in the metadata)", l)
			}
			return t, nil
		}
		if lt.q, err = get("q"); err != nil {
			return err
		}
		if err := f.checkTensor(lt.q, inputDTypes, []int{nq, m.Heads, m.HeadDim}); err != nil {
			return err
		}
		if lt.k, err = get("k"); err != nil {
			return err
		}
		if err := f.checkTensor(lt.k, inputDTypes, nil); err != nil {
			return err
		}
		if len(lt.k.Shape) != 2 {
			return newFormatError(f.path, lt.k.Name, "shape %v is not [N, head_dim]", lt.k.Shape)
		}
		if lt.k.Shape[0] < 1 {
			return newFormatError(f.path, lt.k.Name, "has no key rows (N = 0)")
		}
		if f.nkeys < 0 {
			f.nkeys = lt.k.Shape[0] // every layer must agree with the first
		}
		if err := f.checkTensor(lt.k, nil, []int{f.nkeys, m.HeadDim}); err != nil {
			return err
		}
		if lt.w, err = get("w"); err != nil {
			return err
		}
		if err := f.checkTensor(lt.w, []DType{DTypeF32}, []int{nq, m.Heads}); err != nil {
			return err
		}
		if lt.qScale, err = f.scaleTensor(l, "q", lt.q.DType, []int{nq, m.Heads}); err != nil {
			return err
		}
		if lt.kScale, err = f.scaleTensor(l, "k", lt.k.DType, []int{f.nkeys}); err != nil {
			return err
		}
		f.layers[l] = lt
	}
	if f.nkeys > m.NCtx {
		return newFormatError(f.path, layerTensorName(m.Layers[0], "k"), "has %d key rows, more than n_ctx = %d", f.nkeys, m.NCtx)
	}

	src := f.st.TensorBytes(qp)
	f.qpos = make([]int64, nq)
	for i := range f.qpos {
		f.qpos[i] = int64(binary.LittleEndian.Uint64(src[8*i:]))
	}
	return checkQPos(f.path, f.qpos, f.nkeys, m.NCtx)
}

var inputDTypes = []DType{DTypeBF16, DTypeF16, DTypeF32, DTypeF8E4M3}

// checkTensor checks a tensor's dtype against the allowed ones and, when
// want is not nil, its shape.
func (f *File) checkTensor(t TensorInfo, dtypes []DType, want []int) error {
	okType := dtypes == nil
	for _, d := range dtypes {
		okType = okType || t.DType == d
	}
	if !okType {
		return newFormatError(f.path, t.Name, "dtype %s is not allowed here (want %s)", t.DType, joinDTypes(dtypes))
	}
	if want != nil && !slices.Equal(t.Shape, want) {
		return newFormatError(f.path, t.Name, "shape %v, want %v (from %s)", t.Shape, want, shapeOrigin(t.Name))
	}
	return nil
}

// shapeOrigin says where an expected shape comes from, for error messages.
func shapeOrigin(name string) string {
	switch {
	case strings.HasSuffix(name, ".k"), strings.HasSuffix(name, ".k_scale"):
		return "the first layer's k and metadata head_dim"
	default:
		return "q_pos length and metadata heads/head_dim"
	}
}

// scaleTensor finds and checks layers.{l}.{what}_scale, which must exist iff
// the layer's tensor of that name is F8_E4M3: a scale next to a BF16 tensor
// would be silently ignored by one reader and applied by another.
func (f *File) scaleTensor(l int, what string, dt DType, shape []int) (*TensorInfo, error) {
	name := layerTensorName(l, what+"_scale")
	t, ok := f.st.Info(name)
	switch {
	case dt == DTypeF8E4M3 && !ok:
		return nil, newFormatError(f.path, name, "missing (required because %s is F8_E4M3)", layerTensorName(l, what))
	case dt != DTypeF8E4M3 && ok:
		return nil, newFormatError(f.path, name, "present but %s is %s, not F8_E4M3", layerTensorName(l, what), dt)
	case !ok:
		return nil, nil
	}
	if err := f.checkTensor(t, []DType{DTypeF32}, shape); err != nil {
		return nil, err
	}
	return &t, nil
}

// checkQPos checks query positions: ascending (repeats allowed), inside
// [0, nkeys) so that every query row sees its own key, and inside n_ctx.
func checkQPos(file string, qpos []int64, nkeys, nctx int) error {
	for i, p := range qpos {
		switch {
		case p < 0 || p >= int64(nkeys):
			return newFormatError(file, qposName, "q_pos[%d] = %d is outside [0, N = %d) (N = rows of k)", i, p, nkeys)
		case p >= int64(nctx):
			return newFormatError(file, qposName, "q_pos[%d] = %d is beyond n_ctx = %d", i, p, nctx)
		case i > 0 && p < qpos[i-1]:
			return newFormatError(file, qposName, "q_pos[%d] = %d is below q_pos[%d] = %d: positions must be ascending", i, p, i-1, qpos[i-1])
		}
	}
	return nil
}

// Close unmaps the file. It waits for Layer, Validate and Hash calls in
// flight; later calls fail. Closing twice is harmless.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	return fromSafetensors(f.st.Close())
}

// Name is the path the file was opened with.
func (f *File) Name() string { return f.path }

// Meta is the parsed metadata (a copy: callers may modify it).
func (f *File) Meta() Meta {
	m := f.meta
	m.Layers = slices.Clone(m.Layers)
	m.Needle = slices.Clone(m.Needle)
	if m.DepthPercent != nil {
		v := *m.DepthPercent
		m.DepthPercent = &v
	}
	if m.Question != nil {
		v := *m.Question
		m.Question = &v
	}
	if m.Extra != nil {
		m.Extra = maps.Clone(m.Extra)
	}
	return m
}

// QPos are the query positions, ascending (a copy).
func (f *File) QPos() []int64 { return slices.Clone(f.qpos) }

// NKeys is the number of key rows N.
func (f *File) NKeys() int { return f.nkeys }

// Tensors lists every tensor of the file sorted by name, including tensors
// the format does not name (other tools add extras; they are tolerated).
func (f *File) Tensors() []TensorInfo {
	return f.st.Tensors()
}

// RawMeta returns a copy of the __metadata__ strings as stored.
func (f *File) RawMeta() map[string]string {
	return f.st.Metadata()
}

// Hash is the sha256 of the whole file, hex-encoded. It reads the entire
// file, so it is computed on first use (results need it; inspecting and
// validating do not) and cached. It is empty if the file was closed first
// or could not be read.
func (f *File) Hash() string {
	f.hashOnce.Do(func() {
		f.mu.RLock()
		defer f.mu.RUnlock()
		if f.closed {
			return
		}
		data := f.st.Data()
		_ = catchFault(f.path, func() error {
			sum := sha256.Sum256(data)
			f.hash = hex.EncodeToString(sum[:])
			return nil
		})
	})
	return f.hash
}

// Layer decodes layer l to float32 with FP8 scales folded in, and checks
// every value: a NaN or ±Inf, or a scale that is not finite and positive, is
// a *FormatError naming the tensor and the first bad element.
func (f *File) Layer(ctx context.Context, l int) (*Layer, error) {
	out := &Layer{}
	if err := f.decodeLayer(ctx, l, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Validate decodes every layer and checks every value, one layer at a time
// (memory stays at one layer). It returns the first problem found.
func (f *File) Validate(ctx context.Context) error {
	var buf Layer
	for _, l := range f.meta.Layers {
		if err := f.decodeLayer(ctx, l, &buf); err != nil {
			return err
		}
	}
	return nil
}

// decodeLayer decodes layer l into out, reusing out's slices when they are
// large enough.
func (f *File) decodeLayer(ctx context.Context, l int, out *Layer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return fmt.Errorf("trace %s: file is closed", f.path)
	}
	lt, ok := f.layers[l]
	if !ok {
		return newFormatError(f.path, "", "layer %d is not in the trace (layers %s)", l, formatLayerList(f.meta.Layers))
	}
	nq, h, d := len(f.qpos), f.meta.Heads, f.meta.HeadDim
	out.Index = l
	out.Q = growF32(out.Q, nq*h*d)
	out.K = growF32(out.K, f.nkeys*d)
	out.W = growF32(out.W, nq*h)

	var qScale, kScale []float32
	var err error
	if lt.qScale != nil {
		if qScale, err = f.decodeScale(ctx, *lt.qScale); err != nil {
			return err
		}
	}
	if lt.kScale != nil {
		if kScale, err = f.decodeScale(ctx, *lt.kScale); err != nil {
			return err
		}
	}
	if err := f.decodeTensor(ctx, lt.q, out.Q, qScale, d); err != nil {
		return err
	}
	if err := f.decodeTensor(ctx, lt.k, out.K, kScale, d); err != nil {
		return err
	}
	return f.decodeTensor(ctx, lt.w, out.W, nil, 0)
}

func growF32(s []float32, n int) []float32 {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]float32, n)
}

// decodeScale decodes an F32 scale tensor and checks that every scale is
// finite and positive: a zero or negative scale would flip or erase scores
// without any NaN to show for it.
func (f *File) decodeScale(ctx context.Context, t TensorInfo) ([]float32, error) {
	s := make([]float32, t.NumElements())
	if err := f.decodeTensor(ctx, t, s, nil, 0); err != nil {
		return nil, err
	}
	for i, v := range s {
		if !(v > 0) {
			return nil, newFormatError(f.path, t.Name, "scale at %s is %v; scales must be finite and > 0", elemIndex(t.Shape, i), v)
		}
	}
	return s, nil
}

// Decoding runs on all CPUs for tensors above this many elements; below,
// starting goroutines costs more than it saves.
const (
	parallelMin = 1 << 16
	chunkElems  = 1 << 18 // elements between context checks
)

// decodeTensor decodes tensor t into dst (len = its elements), multiplying by
// scale (one per run of group elements) when scale is not nil. Large tensors
// are split into contiguous parts decoded in parallel; the first bad element
// over all parts is the one reported.
func (f *File) decodeTensor(ctx context.Context, t TensorInfo, dst []float32, scale []float32, group int) error {
	src := f.st.TensorBytes(t)
	f.st.WillNeed(t)
	unit := 1 // parts must not split a scale group
	if scale != nil {
		unit = group
	}
	bad, err := parallelRange(len(dst), unit, func(lo, hi int) (bad int, err error) {
		err = catchFault(f.path, func() error {
			var err error
			bad, err = f.decodePart(ctx, t, src, dst, scale, group, lo, hi)
			return err
		})
		return bad, err
	})
	if err != nil {
		return err
	}
	if bad >= 0 {
		return f.badValue(t, src, scale, group, bad)
	}
	return nil
}

// decodePart decodes elements [lo, hi) in chunks, checking ctx between
// chunks, and returns the index of the first non-finite element or -1.
func (f *File) decodePart(ctx context.Context, t TensorInfo, src []byte, dst, scale []float32, group, lo, hi int) (int, error) {
	size := t.DType.Size()
	step := chunkElems
	if scale != nil {
		step = max(chunkElems/group, 1) * group
	}
	for a := lo; a < hi; a += step {
		if err := ctx.Err(); err != nil {
			return -1, err
		}
		b := min(a+step, hi)
		var ok bool
		if scale != nil {
			ok = safetensors.DecodeE4M3Scaled(dst[a:b], src[a:b], scale[a/group:b/group], group)
		} else {
			ok = safetensors.Decode(dst[a:b], src[a*size:b*size], t.DType)
		}
		if !ok {
			for i := a; i < b; i++ {
				if v := dst[i]; v-v != 0 {
					return i, nil
				}
			}
		}
	}
	return -1, nil
}

// badValue describes the non-finite element i of tensor t.
func (f *File) badValue(t TensorInfo, src []byte, scale []float32, group, i int) error {
	at := elemIndex(t.Shape, i)
	raw := safetensors.DecodeAt(src, t.DType, i)
	if raw-raw != 0 || scale == nil {
		return newFormatError(f.path, t.Name, "element %s is %v (file offset %d): values must be finite",
			at, raw, f.st.Header().DataStart()+t.Begin+int64(i*t.DType.Size()))
	}
	return newFormatError(f.path, t.Name, "element %s = %v × scale %v overflows float32", at, raw, scale[i/group])
}

// parallelRange splits [0, n) into contiguous parts (multiples of unit
// elements), runs fn on each from its own goroutine when n is large, and
// returns the smallest bad index reported (or -1) and the first error.
func parallelRange(n, unit int, fn func(lo, hi int) (int, error)) (int, error) {
	workers := runtime.GOMAXPROCS(0)
	if n < parallelMin || workers < 2 {
		return fn(0, n)
	}
	units := n / unit
	workers = min(workers, units)
	type result struct {
		bad int
		err error
	}
	res := make([]result, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo := units * w / workers * unit
		hi := units * (w + 1) / workers * unit
		wg.Go(func() {
			res[w].bad, res[w].err = fn(lo, hi)
		})
	}
	wg.Wait()
	for _, r := range res { // parts are in order: the first bad one wins
		if r.err != nil {
			return -1, r.err
		}
		if r.bad >= 0 {
			return r.bad, nil
		}
	}
	return -1, nil
}

// elemIndex formats the multi-dimensional index of flat element i of a tensor.
func elemIndex(shape []int, i int) string { return safetensors.ElemIndex(shape, i) }

func formatLayerList(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func joinDTypes(ds []DType) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = string(d)
	}
	return strings.Join(s, " or ")
}

// Metadata keys of the format.
const (
	keyFormat       = "format"
	keyModel        = "model"
	keyNCtx         = "n_ctx"
	keyHeads        = "heads"
	keyHeadDim      = "head_dim"
	keyTopK         = "topk"
	keyLayers       = "layers"
	keyDataset      = "dataset"
	keySampleID     = "sample_id"
	keyNeedle       = "needle"
	keyDepthPercent = "depth_percent"
	keyQuestion     = "question"
)

var knownMetaKeys = []string{keyFormat, keyModel, keyNCtx, keyHeads, keyHeadDim, keyTopK, keyLayers,
	keyDataset, keySampleID, keyNeedle, keyDepthPercent, keyQuestion}

// ParseMeta parses and checks the __metadata__ strings of a trace. Values
// are strings, as safetensors requires: layers is a comma list ("0,1,2"),
// n_ctx, heads, head_dim and topk are decimal integers ≥ 1, needle is a JSON
// list of [start,end) pairs, question a JSON [start,end) pair, and
// depth_percent a number in [0, 100]. Keys this version does not know are
// kept in Meta.Extra. file only names the trace in errors.
func ParseMeta(file string, raw map[string]string) (Meta, error) {
	var m Meta
	bad := func(key, format string, args ...any) error {
		return newFormatError(file, metadataKey, "key %q: %s", key, fmt.Sprintf(format, args...))
	}
	for _, k := range []string{keyFormat, keyModel, keyNCtx, keyHeads, keyHeadDim, keyTopK, keyLayers} {
		if _, ok := raw[k]; !ok {
			return m, newFormatError(file, metadataKey, "missing required key %q", k)
		}
	}
	m.Format = raw[keyFormat]
	if m.Format != FormatV1 {
		return m, bad(keyFormat, "%q is not %q", m.Format, FormatV1)
	}
	m.Model = raw[keyModel]
	if strings.TrimSpace(m.Model) == "" {
		return m, bad(keyModel, "is empty")
	}
	for _, p := range []struct {
		key string
		dst *int
	}{{keyNCtx, &m.NCtx}, {keyHeads, &m.Heads}, {keyHeadDim, &m.HeadDim}, {keyTopK, &m.TopK}} {
		n, err := strconv.Atoi(strings.TrimSpace(raw[p.key]))
		if err != nil || n < 1 {
			return m, bad(p.key, "%q is not a positive decimal integer", raw[p.key])
		}
		*p.dst = n
	}
	seen := map[int]bool{}
	for _, s := range strings.Split(raw[keyLayers], ",") {
		l, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || l < 0 {
			return m, bad(keyLayers, "%q is not a comma list of layer numbers", raw[keyLayers])
		}
		if seen[l] {
			return m, bad(keyLayers, "layer %d is listed twice", l)
		}
		seen[l] = true
		m.Layers = append(m.Layers, l)
	}

	m.Dataset = raw[keyDataset]
	m.SampleID = raw[keySampleID]
	if s, ok := raw[keyNeedle]; ok {
		var pairs [][]int
		if err := json.Unmarshal([]byte(s), &pairs); err != nil || pairs == nil {
			return m, bad(keyNeedle, "%q is not a JSON list of [start,end) pairs", s)
		}
		for _, p := range pairs {
			sp, err := spanOf(p, m.NCtx)
			if err != nil {
				return m, bad(keyNeedle, "%q: %v", s, err)
			}
			m.Needle = append(m.Needle, sp)
		}
	}
	if s, ok := raw[keyQuestion]; ok {
		var p []int
		if err := json.Unmarshal([]byte(s), &p); err != nil {
			return m, bad(keyQuestion, "%q is not a JSON [start,end) pair", s)
		}
		sp, err := spanOf(p, m.NCtx)
		if err != nil {
			return m, bad(keyQuestion, "%q: %v", s, err)
		}
		m.Question = &sp
	}
	if s, ok := raw[keyDepthPercent]; ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || !(v >= 0 && v <= 100) {
			return m, bad(keyDepthPercent, "%q is not a number in [0, 100]", s)
		}
		m.DepthPercent = &v
	}

	for k, v := range raw {
		if !isKnownMetaKey(k) {
			if m.Extra == nil {
				m.Extra = map[string]string{}
			}
			m.Extra[k] = v
		}
	}
	return m, nil
}

func isKnownMetaKey(k string) bool {
	for _, x := range knownMetaKeys {
		if k == x {
			return true
		}
	}
	return false
}

// spanOf checks a [start,end) pair against the context length.
func spanOf(p []int, nctx int) (Span, error) {
	if len(p) != 2 {
		return Span{}, fmt.Errorf("%v is not a [start,end) pair", p)
	}
	if p[0] < 0 || p[0] >= p[1] || p[1] > nctx {
		return Span{}, fmt.Errorf("span [%d,%d) is empty or outside [0, n_ctx = %d)", p[0], p[1], nctx)
	}
	return Span{Start: p[0], End: p[1]}, nil
}

// EncodeMeta is the inverse of ParseMeta: the metadata strings of m. An
// empty Format is written as FormatV1. Extra keys are written too, except
// those that would shadow a key of the format.
func EncodeMeta(m Meta) map[string]string {
	raw := make(map[string]string, len(m.Extra)+len(knownMetaKeys))
	for k, v := range m.Extra {
		if !isKnownMetaKey(k) {
			raw[k] = v
		}
	}
	raw[keyFormat] = m.Format
	if m.Format == "" {
		raw[keyFormat] = FormatV1
	}
	raw[keyModel] = m.Model
	raw[keyNCtx] = strconv.Itoa(m.NCtx)
	raw[keyHeads] = strconv.Itoa(m.Heads)
	raw[keyHeadDim] = strconv.Itoa(m.HeadDim)
	raw[keyTopK] = strconv.Itoa(m.TopK)
	raw[keyLayers] = formatLayerList(m.Layers)
	if m.Dataset != "" {
		raw[keyDataset] = m.Dataset
	}
	if m.SampleID != "" {
		raw[keySampleID] = m.SampleID
	}
	if m.Needle != nil {
		parts := make([]string, len(m.Needle))
		for i, s := range m.Needle {
			parts[i] = fmt.Sprintf("[%d,%d]", s.Start, s.End)
		}
		raw[keyNeedle] = "[" + strings.Join(parts, ",") + "]"
	}
	if m.Question != nil {
		raw[keyQuestion] = fmt.Sprintf("[%d,%d]", m.Question.Start, m.Question.End)
	}
	if m.DepthPercent != nil {
		raw[keyDepthPercent] = strconv.FormatFloat(*m.DepthPercent, 'g', -1, 64)
	}
	return raw
}
