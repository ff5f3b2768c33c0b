package trace

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/misabench/misabench/safetensors"
)

// tioSource is an in-memory Source for the reader and writer tests (the
// names start with "tio" to stay clear of the synthetic generator's tests).
type tioSource struct {
	meta   Meta
	qpos   []int64
	nkeys  int
	layers map[int]*Layer
}

func (s *tioSource) Name() string  { return "tio" }
func (s *tioSource) Meta() Meta    { return s.meta }
func (s *tioSource) QPos() []int64 { return s.qpos }
func (s *tioSource) NKeys() int    { return s.nkeys }
func (s *tioSource) Hash() string  { return "tio" }
func (s *tioSource) Layer(ctx context.Context, l int) (*Layer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.layers[l], nil
}

// tioMeta is a small valid metadata set: 2 heads of dim 4, layers 0 and 3.
func tioMeta() Meta {
	depth := 25.0
	return Meta{
		Format: FormatV1, Model: "tiny", NCtx: 64, Heads: 2, HeadDim: 4, TopK: 8,
		Layers: []int{0, 3}, Dataset: "unit", SampleID: "s1",
		Needle: []Span{{10, 14}}, DepthPercent: &depth, Question: &Span{50, 60},
		Extra: map[string]string{"tool": "test"},
	}
}

// tioNewSource builds a source with random values of magnitude up to
// scale, spanning many binades so that every dtype's rounding is exercised.
func tioNewSource(seed uint64, meta Meta, qpos []int64, nkeys int) *tioSource {
	r := rand.New(rand.NewPCG(seed, 1))
	gen := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * math.Exp2(float64(r.IntN(12)-6)))
		}
		return v
	}
	s := &tioSource{meta: meta, qpos: qpos, nkeys: nkeys, layers: map[int]*Layer{}}
	nq, h, d := len(qpos), meta.Heads, meta.HeadDim
	for _, l := range meta.Layers {
		s.layers[l] = &Layer{Index: l, Q: gen(nq * h * d), K: gen(nkeys * d), W: gen(nq * h)}
	}
	return s
}

func tioDefaultSource() *tioSource {
	return tioNewSource(1, tioMeta(), []int64{3, 10, 10, 40, 63}, 64)
}

// tioWrite writes src to a new file in a temporary directory.
func tioWrite(t testing.TB, src Source, opt WriteOptions) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.safetensors")
	if err := WriteSource(context.Background(), path, src, opt); err != nil {
		t.Fatalf("WriteSource: %v", err)
	}
	return path
}

// tioSplit splits a safetensors file into its header object and data.
func tioSplit(t testing.TB, b []byte) (map[string]any, []byte) {
	t.Helper()
	n := binary.LittleEndian.Uint64(b)
	var h map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b[8 : 8+n])))
	dec.UseNumber()
	if err := dec.Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h, b[8+n:]
}

// tioJoin builds a safetensors file from a header and data, padding the
// header with spaces to 8 bytes as Python's writer does.
func tioJoin(t testing.TB, h map[string]any, data []byte) []byte {
	t.Helper()
	hb, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return tioRaw(string(hb), data)
}

func tioRaw(header string, data []byte) []byte {
	for len(header)%8 != 0 {
		header += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

// tioMutate writes a valid trace, lets edit change its header and data,
// and returns the path of the edited file.
func tioMutate(t testing.TB, opt WriteOptions, edit func(h map[string]any, data []byte) []byte) string {
	t.Helper()
	path := tioWrite(t, tioDefaultSource(), opt)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, data := tioSplit(t, b)
	data = edit(h, slices.Clone(data))
	if err := os.WriteFile(path, tioJoin(t, h, data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tioEntry returns a tensor's header entry for editing.
func tioEntry(h map[string]any, name string) map[string]any { return h[name].(map[string]any) }

func tioOffsets(h map[string]any, name string) (int, int) {
	o := tioEntry(h, name)["data_offsets"].([]any)
	b, _ := o[0].(json.Number).Int64()
	e, _ := o[1].(json.Number).Int64()
	return int(b), int(e)
}

// tioWantFormatError checks that err is a *FormatError naming the file,
// the tensor and a rule containing ruleWant.
func tioWantFormatError(t testing.TB, err error, file, tensor, ruleWant string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FormatError", err, err)
	}
	if fe.File != file || fe.Tensor != tensor || !strings.Contains(fe.Rule, ruleWant) {
		t.Fatalf("got FormatError{File: %q, Tensor: %q, Rule: %q}\nwant file %q, tensor %q, rule containing %q",
			fe.File, fe.Tensor, fe.Rule, file, tensor, ruleWant)
	}
	msg := err.Error()
	for _, s := range []string{file, tensor, ruleWant} {
		if !strings.Contains(msg, s) {
			t.Fatalf("message %q does not name %q", msg, s)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Fatalf("message %q is not one line", msg)
	}
}

// tioTolerance is the largest relative error of a dtype's rounding (half
// an ulp), with an absolute floor for its subnormals.
func tioClose(dt DType, got, want float32) bool {
	var rel, abs float64
	switch dt {
	case DTypeF32:
		return got == want
	case DTypeBF16:
		rel, abs = 1.0/256, 0
	case DTypeF16:
		rel, abs = 1.0/2048, math.Exp2(-25)
	default:
		panic(dt)
	}
	return math.Abs(float64(got-want)) <= rel*math.Abs(float64(want))+abs
}

func TestFileRoundTrip(t *testing.T) {
	for _, opt := range []WriteOptions{
		{}, {QType: DTypeBF16, KType: DTypeBF16}, {QType: DTypeF16, KType: DTypeF16},
		{QType: DTypeF8E4M3, KType: DTypeF8E4M3}, {QType: DTypeBF16, KType: DTypeF8E4M3},
		{QType: DTypeF8E4M3, KType: DTypeF32},
	} {
		t.Run(string(opt.QType)+"_"+string(opt.KType), func(t *testing.T) {
			src := tioDefaultSource()
			path := tioWrite(t, src, opt)
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Validate(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got, want := f.Meta(), tioMeta(); !tioMetaEqual(got, want) {
				t.Errorf("meta = %+v, want %+v", got, want)
			}
			if !slices.Equal(f.QPos(), src.qpos) || f.NKeys() != src.nkeys || f.Name() != path {
				t.Errorf("qpos %v nkeys %d name %q", f.QPos(), f.NKeys(), f.Name())
			}
			for _, l := range src.meta.Layers {
				got, err := f.Layer(context.Background(), l)
				if err != nil {
					t.Fatal(err)
				}
				want := src.layers[l]
				if got.Index != l {
					t.Errorf("index %d, want %d", got.Index, l)
				}
				tioCheckValues(t, "q", opt.QType, got.Q, want.Q, src.meta.HeadDim)
				tioCheckValues(t, "k", opt.KType, got.K, want.K, src.meta.HeadDim)
				tioCheckValues(t, "w", DTypeF32, got.W, want.W, 1)
			}
			tioCheckScales(t, f, opt)
		})
	}
}

func tioMetaEqual(a, b Meta) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// tioCheckValues compares decoded values with the originals. For F8_E4M3
// the error bound is per group: half an E4M3 ulp relative to the value, with
// an absolute floor of half the smallest subnormal times the group's scale.
func tioCheckValues(t *testing.T, what string, dt DType, got, want []float32, group int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	if dt == "" { // the zero WriteOptions
		dt = DTypeF32
	}
	for g := 0; g < len(want); g += group {
		var amax float32
		for _, v := range want[g : g+group] {
			amax = max(amax, absF32(v))
		}
		scale := float64(safetensors.UE8M0Scale(amax))
		for i := g; i < g+group; i++ {
			ok := false
			if dt == DTypeF8E4M3 {
				ok = math.Abs(float64(got[i]-want[i])) <= math.Abs(float64(want[i]))/16+scale*math.Exp2(-10)
			} else {
				ok = tioClose(dt, got[i], want[i])
			}
			if !ok {
				t.Fatalf("%s[%d] (%s) = %v, want %v", what, i, dt, got[i], want[i])
			}
		}
	}
}

// tioCheckScales checks the stored FP8 scales: powers of two, and the
// smallest with amax/scale ≤ 448.
func tioCheckScales(t *testing.T, f *File, opt WriteOptions) {
	t.Helper()
	names := map[string]bool{}
	for _, ti := range f.Tensors() {
		names[ti.Name] = true
		if !strings.HasSuffix(ti.Name, "_scale") {
			continue
		}
		s := make([]float32, ti.NumElements())
		if err := f.decodeTensor(context.Background(), ti, s, nil, 0); err != nil {
			t.Fatal(err)
		}
		for _, v := range s {
			if frac, _ := math.Frexp(float64(v)); frac != 0.5 {
				t.Fatalf("%s: scale %v is not a power of two", ti.Name, v)
			}
		}
	}
	if got, want := names["layers.0.q_scale"], opt.QType == DTypeF8E4M3; got != want {
		t.Errorf("q_scale present = %v, want %v", got, want)
	}
	if got, want := names["layers.3.k_scale"], opt.KType == DTypeF8E4M3; got != want {
		t.Errorf("k_scale present = %v, want %v", got, want)
	}
}

func TestFileMetaAccessors(t *testing.T) {
	path := tioWrite(t, tioDefaultSource(), WriteOptions{QType: DTypeBF16})
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw := f.RawMeta()
	if raw["format"] != FormatV1 || raw["layers"] != "0,3" || raw["needle"] != "[[10,14]]" || raw["tool"] != "test" {
		t.Errorf("raw meta %v", raw)
	}
	raw["format"] = "changed" // a copy
	if f.RawMeta()["format"] != FormatV1 {
		t.Error("RawMeta is not a copy")
	}
	ts := f.Tensors()
	if !slices.IsSortedFunc(ts, func(a, b TensorInfo) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("Tensors not sorted by name")
	}
	if len(ts) != 1+2*3 {
		t.Errorf("%d tensors", len(ts))
	}
	for _, ti := range ts {
		if ti.Name == "layers.0.q" && (ti.DType != DTypeBF16 || !slices.Equal(ti.Shape, []int{5, 2, 4}) || ti.End-ti.Begin != 5*2*4*2) {
			t.Errorf("layers.0.q = %+v", ti)
		}
		if ti.Begin%int64(ti.DType.Size()) != 0 {
			t.Errorf("%s at offset %d is not aligned", ti.Name, ti.Begin)
		}
	}
}

func TestFileHash(t *testing.T) {
	path := tioWrite(t, tioDefaultSource(), WriteOptions{})
	b, _ := os.ReadFile(path)
	sum := sha256.Sum256(b)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Hash(); got != hex.EncodeToString(sum[:]) {
		t.Errorf("hash %s", got)
	}
	f.Close()
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.Layer(context.Background(), 0); err == nil {
		t.Error("Layer after Close succeeded")
	}
}

func TestFileConcurrentLayers(t *testing.T) {
	src := tioNewSource(7, tioMeta(), []int64{63}, 64)
	f, err := Open(tioWrite(t, src, WriteOptions{KType: DTypeBF16}))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			l := src.meta.Layers[i%2]
			got, err := f.Layer(context.Background(), l)
			if err != nil {
				t.Error(err)
				return
			}
			if !slices.Equal(got.W, src.layers[l].W) {
				t.Error("w differs")
			}
		})
	}
	wg.Wait()
}

func TestFileLayerNotListed(t *testing.T) {
	path := tioWrite(t, tioDefaultSource(), WriteOptions{})
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = f.Layer(context.Background(), 1)
	tioWantFormatError(t, err, path, "", "layer 1 is not in the trace")
}

func TestFileLayerCancelled(t *testing.T) {
	f, err := Open(tioWrite(t, tioDefaultSource(), WriteOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Layer(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

// TestOpenPythonStyle hand-builds a trace byte by byte as Python's
// safetensors would: tensors sorted by dtype size then name (not in our
// order), __metadata__ in the middle of the object, the JSON padded with
// spaces to 8 bytes, and numbers in Python's json.dumps spacing.
func TestOpenPythonStyle(t *testing.T) {
	const n = 3 // key rows
	var data []byte
	put16 := func(v ...uint16) {
		for _, x := range v {
			data = binary.LittleEndian.AppendUint16(data, x)
		}
	}
	put32 := func(v ...float32) {
		for _, x := range v {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(x))
		}
	}
	// I64 first: q_pos = [1, 2] at [0,16).
	data = binary.LittleEndian.AppendUint64(data, 1)
	data = binary.LittleEndian.AppendUint64(data, 2)
	// F32: layers.5.k [3,2] at [16,40), layers.5.w [2,1] at [40,48).
	put32(1, 2, 3, 4, 5, 6)
	put32(0.5, -0.25)
	// BF16: layers.5.q [2,1,2] at [48,56): 1.0, -2.0, 0.5, 3.0.
	put16(0x3F80, 0xC000, 0x3F00, 0x4040)
	// A tensor of another tool, a dtype we never decode: tolerated.
	data = append(data, 1, 0, 1, 0) // "mask" BOOL [4] at [56,60)

	header := `{"layers.5.k": {"dtype": "F32", "shape": [3, 2], "data_offsets": [16, 40]}, ` +
		`"__metadata__": {"format": "misabench.trace/v1", "model": "py", "n_ctx": "3", "heads": "1", ` +
		`"head_dim": "2", "topk": "2", "layers": "5", "note": "from python"}, ` +
		`"mask": {"dtype": "BOOL", "shape": [4], "data_offsets": [56, 60]}, ` +
		`"q_pos": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}, ` +
		`"layers.5.w": {"dtype": "F32", "shape": [2, 1], "data_offsets": [40, 48]}, ` +
		`"layers.5.q": {"dtype": "BF16", "shape": [2, 1, 2], "data_offsets": [48, 56]}}`
	b := tioRaw(header, data)
	if (len(b)-len(data))%8 != 0 {
		t.Fatal("test bug: header not padded")
	}
	path := filepath.Join(t.TempDir(), "py.safetensors")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := f.Meta()
	if m.Model != "py" || m.NCtx != 3 || !slices.Equal(m.Layers, []int{5}) || m.Extra["note"] != "from python" {
		t.Errorf("meta %+v", m)
	}
	l, err := f.Layer(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l.Q, []float32{1, -2, 0.5, 3}) || !slices.Equal(l.K, []float32{1, 2, 3, 4, 5, 6}) ||
		!slices.Equal(l.W, []float32{0.5, -0.25}) || !slices.Equal(f.QPos(), []int64{1, 2}) || f.NKeys() != n {
		t.Errorf("layer %+v qpos %v", l, f.QPos())
	}
	names := []string{}
	for _, ti := range f.Tensors() {
		names = append(names, ti.Name)
	}
	if !slices.Equal(names, []string{"layers.5.k", "layers.5.q", "layers.5.w", "mask", "q_pos"}) {
		t.Errorf("tensors %v", names)
	}
}

// TestOpenRules covers every rule Open enforces on a file's structure,
// metadata and positions: each broken file must give a *FormatError that
// names the file, the tensor and the rule.
func TestOpenRules(t *testing.T) {
	type edit = func(h map[string]any, data []byte) []byte
	setMeta := func(k string, v any) edit {
		return func(h map[string]any, data []byte) []byte {
			m := h["__metadata__"].(map[string]any)
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
			return data
		}
	}
	setField := func(name, field string, v any) edit {
		return func(h map[string]any, data []byte) []byte {
			tioEntry(h, name)[field] = v
			return data
		}
	}
	setQPos := func(vals ...int64) edit {
		return func(h map[string]any, data []byte) []byte {
			b, _ := tioOffsets(h, "q_pos")
			for i, v := range vals {
				binary.LittleEndian.PutUint64(data[b+8*i:], uint64(v))
			}
			return data
		}
	}
	cases := []struct {
		name, tensor, rule string
		opt                WriteOptions
		edit               edit
	}{
		{"unknown dtype", "layers.0.w", `unknown dtype "F12"`, WriteOptions{}, setField("layers.0.w", "dtype", "F12")},
		{"dtype not a string", "layers.0.w", "dtype 4 is not a string", WriteOptions{}, setField("layers.0.w", "dtype", 4)},
		{"missing dtype", "layers.0.w", `no "dtype"`, WriteOptions{}, func(h map[string]any, d []byte) []byte {
			delete(tioEntry(h, "layers.0.w"), "dtype")
			return d
		}},
		{"missing shape", "q_pos", `no "shape"`, WriteOptions{}, func(h map[string]any, d []byte) []byte {
			delete(tioEntry(h, "q_pos"), "shape")
			return d
		}},
		{"missing offsets", "layers.3.k", `no "data_offsets"`, WriteOptions{}, func(h map[string]any, d []byte) []byte {
			delete(tioEntry(h, "layers.3.k"), "data_offsets")
			return d
		}},
		{"entry not object", "layers.3.k", "not an object", WriteOptions{}, func(h map[string]any, d []byte) []byte {
			h["layers.3.k"] = []int{1}
			return d
		}},
		{"negative dim", "layers.0.q", "-1 is not a non-negative integer", WriteOptions{}, setField("layers.0.q", "shape", []int{-1, 2, 4})},
		{"fractional dim", "layers.0.q", "1.5 is not a non-negative integer", WriteOptions{}, setField("layers.0.q", "shape", []float64{1.5, 2, 4})},
		{"offsets not pair", "layers.0.w", "not a pair", WriteOptions{}, setField("layers.0.w", "data_offsets", []int{0})},
		{"offsets reversed", "layers.0.w", "end before they begin", WriteOptions{}, setField("layers.0.w", "data_offsets", []int{40, 8})},
		{"offsets past end", "layers.0.w", "run past the end", WriteOptions{}, setField("layers.0.w", "data_offsets", []int{0, 1 << 40})},
		{"length mismatch", "layers.0.w", "needs 40 bytes but data_offsets", WriteOptions{}, func(h map[string]any, d []byte) []byte {
			b, e := tioOffsets(h, "layers.0.w")
			tioEntry(h, "layers.0.w")["data_offsets"] = []int{b, e - 4}
			return d
		}},
		{"shape overflow", "layers.0.w", "more than 2^64", WriteOptions{}, setField("layers.0.w", "shape", []uint64{1 << 40, 1 << 40})},
		{"overlap", "layers.3.w", "overlap tensor layers.0.w", WriteOptions{}, func(h map[string]any, d []byte) []byte {
			b, e := tioOffsets(h, "layers.0.w")
			tioEntry(h, "layers.3.w")["data_offsets"] = []int{b + 4, e + 4}
			return d
		}},
		{"metadata not strings", "__metadata__", `"n_ctx" is 64, not a string`, WriteOptions{}, setMeta("n_ctx", 64)},
		{"missing format", "__metadata__", `missing required key "format"`, WriteOptions{}, setMeta("format", nil)},
		{"missing model", "__metadata__", `missing required key "model"`, WriteOptions{}, setMeta("model", nil)},
		{"missing n_ctx", "__metadata__", `missing required key "n_ctx"`, WriteOptions{}, setMeta("n_ctx", nil)},
		{"missing heads", "__metadata__", `missing required key "heads"`, WriteOptions{}, setMeta("heads", nil)},
		{"missing head_dim", "__metadata__", `missing required key "head_dim"`, WriteOptions{}, setMeta("head_dim", nil)},
		{"missing topk", "__metadata__", `missing required key "topk"`, WriteOptions{}, setMeta("topk", nil)},
		{"missing layers", "__metadata__", `missing required key "layers"`, WriteOptions{}, setMeta("layers", nil)},
		{"no metadata", "__metadata__", `missing required key "format"`, WriteOptions{}, func(h map[string]any, d []byte) []byte {
			delete(h, "__metadata__")
			return d
		}},
		{"wrong format", "__metadata__", `"misabench.trace/v2" is not "misabench.trace/v1"`, WriteOptions{}, setMeta("format", "misabench.trace/v2")},
		{"bad n_ctx", "__metadata__", `key "n_ctx": "64k" is not a positive decimal integer`, WriteOptions{}, setMeta("n_ctx", "64k")},
		{"zero heads", "__metadata__", `key "heads": "0"`, WriteOptions{}, setMeta("heads", "0")},
		{"bad topk", "__metadata__", `key "topk": "-5"`, WriteOptions{}, setMeta("topk", "-5")},
		{"bad layers", "__metadata__", `"0;3" is not a comma list`, WriteOptions{}, setMeta("layers", "0;3")},
		{"duplicate layer", "__metadata__", "layer 3 is listed twice", WriteOptions{}, setMeta("layers", "3,0,3")},
		{"empty model", "__metadata__", `key "model": is empty`, WriteOptions{}, setMeta("model", " ")},
		{"bad needle", "__metadata__", `key "needle"`, WriteOptions{}, setMeta("needle", "[10,14]")},
		{"needle outside", "__metadata__", "outside [0, n_ctx = 64)", WriteOptions{}, setMeta("needle", "[[60,70]]")},
		{"bad question", "__metadata__", `key "question"`, WriteOptions{}, setMeta("question", "[5]")},
		{"bad depth", "__metadata__", `key "depth_percent": "150"`, WriteOptions{}, setMeta("depth_percent", "150")},
		{"layer missing", "layers.7.q", "missing (layer 7 is listed", WriteOptions{}, setMeta("layers", "0,3,7")},
		{"layer k missing", "layers.3.k", "missing", WriteOptions{}, func(h map[string]any, d []byte) []byte {
			delete(h, "layers.3.k")
			return d
		}},
		{"layer w missing", "layers.0.w", "missing", WriteOptions{}, func(h map[string]any, d []byte) []byte {
			delete(h, "layers.0.w")
			return d
		}},
		{"q_pos missing", "q_pos", "missing", WriteOptions{}, func(h map[string]any, d []byte) []byte {
			delete(h, "q_pos")
			return d
		}},
		{"q_pos dtype", "q_pos", "dtype F64 is not allowed here (want I64)", WriteOptions{}, setField("q_pos", "dtype", "F64")},
		{"q_pos 2-D", "q_pos", "is not [Q]", WriteOptions{}, setField("q_pos", "shape", []int{5, 1})},
		{"q_pos empty", "q_pos", "has no query rows", WriteOptions{}, func(h map[string]any, d []byte) []byte {
			b, _ := tioOffsets(h, "q_pos")
			tioEntry(h, "q_pos")["shape"] = []int{0}
			tioEntry(h, "q_pos")["data_offsets"] = []int{b, b}
			return d
		}},
		{"q dtype", "layers.0.q", "dtype I64 is not allowed here (want BF16 or F16 or F32 or F8_E4M3)", WriteOptions{}, func(h map[string]any, d []byte) []byte {
			e := tioEntry(h, "layers.0.q")
			e["dtype"] = "I64"
			e["shape"] = []int{5, 2, 2} // same bytes, so only the dtype rule can fire
			return d
		}},
		{"w dtype", "layers.3.w", "dtype BF16 is not allowed here (want F32)", WriteOptions{}, func(h map[string]any, d []byte) []byte {
			e := tioEntry(h, "layers.3.w")
			e["dtype"] = "BF16"
			e["shape"] = []int{5, 2, 2} // same bytes, so only the dtype rule can fire
			return d
		}},
		{"q shape vs heads", "layers.0.q", "shape [5 4 2], want [5 2 4]", WriteOptions{}, setField("layers.0.q", "shape", []int{5, 4, 2})},
		{"q rows vs q_pos", "layers.3.q", "shape [10 1 4], want [5 2 4]", WriteOptions{}, setField("layers.3.q", "shape", []int{10, 1, 4})},
		{"w shape", "layers.0.w", "shape [10], want [5 2]", WriteOptions{}, setField("layers.0.w", "shape", []int{10})},
		{"k not 2-D", "layers.0.k", "is not [N, head_dim]", WriteOptions{}, setField("layers.0.k", "shape", []int{64 * 4})},
		{"k head_dim", "layers.0.k", "shape [128 2], want [128 4]", WriteOptions{}, setField("layers.0.k", "shape", []int{128, 2})},
		{"k N between layers", "layers.3.k", "shape [32 8], want [64 4]", WriteOptions{}, setField("layers.3.k", "shape", []int{32, 8})},
		{"N zero", "layers.0.k", "has no key rows", WriteOptions{}, func(h map[string]any, d []byte) []byte {
			b, _ := tioOffsets(h, "layers.0.k")
			tioEntry(h, "layers.0.k")["shape"] = []int{0, 4}
			tioEntry(h, "layers.0.k")["data_offsets"] = []int{b, b}
			return d
		}},
		{"N beyond n_ctx", "layers.0.k", "has 64 key rows, more than n_ctx = 32", WriteOptions{}, func(h map[string]any, d []byte) []byte {
			m := h["__metadata__"].(map[string]any)
			m["n_ctx"] = "32"
			delete(m, "needle")
			delete(m, "question")
			return d
		}},
		{"q_pos unsorted", "q_pos", "q_pos[2] = 5 is below q_pos[1] = 10", WriteOptions{}, setQPos(3, 10, 5, 40, 63)},
		{"q_pos negative", "q_pos", "q_pos[0] = -1 is outside [0, N = 64)", WriteOptions{}, setQPos(-1)},
		{"q_pos beyond N", "q_pos", "q_pos[4] = 64 is outside [0, N = 64)", WriteOptions{}, setQPos(3, 10, 10, 40, 64)},
		{"q_scale missing", "layers.3.q_scale", "missing (required because layers.3.q is F8_E4M3)", WriteOptions{QType: DTypeF8E4M3}, func(h map[string]any, d []byte) []byte {
			delete(h, "layers.3.q_scale")
			return d
		}},
		{"k_scale missing", "layers.0.k_scale", "missing (required because layers.0.k is F8_E4M3)", WriteOptions{KType: DTypeF8E4M3}, func(h map[string]any, d []byte) []byte {
			delete(h, "layers.0.k_scale")
			return d
		}},
		{"scale without f8", "layers.0.q_scale", "present but layers.0.q is F32", WriteOptions{}, func(h map[string]any, d []byte) []byte {
			h["layers.0.q_scale"] = map[string]any{"dtype": "F32", "shape": []int{0}, "data_offsets": []int{0, 0}}
			return d
		}},
		{"k_scale shape", "layers.0.k_scale", "shape [32 2], want [64]", WriteOptions{KType: DTypeF8E4M3}, setField("layers.0.k_scale", "shape", []int{32, 2})},
		{"q_scale dtype", "layers.0.q_scale", "want F32", WriteOptions{QType: DTypeF8E4M3}, func(h map[string]any, d []byte) []byte {
			e := tioEntry(h, "layers.0.q_scale")
			e["dtype"] = "I32"
			return d
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := tioMutate(t, c.opt, c.edit)
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatal("Open succeeded")
			}
			tioWantFormatError(t, err, path, c.tensor, c.rule)
		})
	}
}

// TestOpenQPosBeyondNCtx needs N = n_ctx to be false in the other
// direction, which only a shorter n_ctx than a position gives; since
// N ≤ n_ctx is enforced first, check the rule directly.
func TestCheckQPosBeyondNCtx(t *testing.T) {
	err := checkQPos("f", []int64{1, 9}, 10, 8)
	tioWantFormatError(t, err, "f", "q_pos", "q_pos[1] = 9 is beyond n_ctx = 8")
	if err := checkQPos("f", []int64{0, 0, 9}, 10, 10); err != nil {
		t.Errorf("repeated positions refused: %v", err)
	}
}

// TestOpenFileRules covers the rules about the file as a whole.
func TestOpenFileRules(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	valid, err := os.ReadFile(tioWrite(t, tioDefaultSource(), WriteOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	huge := binary.LittleEndian.AppendUint64(nil, 200_000_000)
	cases := []struct {
		name, tensor, rule string
		data               []byte
	}{
		{"empty", "", "file is 0 bytes, shorter than the 8-byte header length", nil},
		{"short", "", "file is 5 bytes", []byte{1, 2, 3, 4, 5}},
		{"absurd header", "", "header length 200000000 is absurd", append(huge, "{}"...)},
		{"header past end", "", "runs past the end", valid[:100]},
		{"truncated data", "layers.", "run past the end of the", valid[:len(valid)-1]},
		{"not json", "", "header is not a JSON object", tioRaw(`{"a": `, nil)},
		{"json array", "", "header is not a JSON object", tioRaw(`[1, 2]`, nil)},
		{"trailing garbage", "", "trailing data", tioRaw(`{} {}`, nil)},
		{"bad utf8", "", "not valid UTF-8", tioRaw("{\"\xff\": 1}", nil)},
		{"duplicate tensor", "q_pos", "appears twice", tioRaw(`{"q_pos": {"dtype": "I64", "shape": [0], "data_offsets": [0, 0]}, "q_pos": {"dtype": "I64", "shape": [0], "data_offsets": [0, 0]}}`, nil)},
		{"metadata not object", "__metadata__", "is not a JSON object", tioRaw(`{"__metadata__": "x"}`, nil)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := write(strings.ReplaceAll(c.name, " ", "_"), c.data)
			_, err := Open(path)
			if c.tensor == "layers." { // whichever tensor ends last
				var fe *FormatError
				if !errors.As(err, &fe) || !strings.HasPrefix(fe.Tensor, "layers.") {
					t.Fatalf("err = %v", err)
				}
				c.tensor = fe.Tensor
			}
			tioWantFormatError(t, err, path, c.tensor, c.rule)
		})
	}

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(dir, "nope.safetensors")
		_, err := Open(path)
		tioWantFormatError(t, err, path, "", "no such file or directory")
		if !errors.Is(err, os.ErrNotExist) {
			t.Error("does not unwrap to ErrNotExist")
		}
	})
	t.Run("directory", func(t *testing.T) {
		_, err := Open(dir)
		tioWantFormatError(t, err, dir, "", "is a directory")
	})
}

// TestLayerValueRules covers the rules checked when a layer is decoded:
// NaN/Inf in each tensor and dtype, and bad scales.
func TestLayerValueRules(t *testing.T) {
	f8 := WriteOptions{QType: DTypeF8E4M3, KType: DTypeF8E4M3}
	poke := func(name string, elem int, raw []byte) func(h map[string]any, data []byte) []byte {
		return func(h map[string]any, data []byte) []byte {
			b, _ := tioOffsets(h, name)
			copy(data[b+elem*len(raw):], raw)
			return data
		}
	}
	f32 := func(v float32) []byte { return binary.LittleEndian.AppendUint32(nil, math.Float32bits(v)) }
	cases := []struct {
		name, tensor, rule string
		opt                WriteOptions
		edit               func(h map[string]any, data []byte) []byte
	}{
		{"NaN in F32 q", "layers.0.q", "element [1 0 3] is NaN", WriteOptions{}, poke("layers.0.q", 11, f32(float32(math.NaN())))},
		{"Inf in F32 k", "layers.3.k", "element [63 1] is +Inf", WriteOptions{}, poke("layers.3.k", 253, f32(float32(math.Inf(1))))},
		{"-Inf in w", "layers.3.w", "element [4 1] is -Inf", WriteOptions{}, poke("layers.3.w", 9, f32(float32(math.Inf(-1))))},
		{"NaN in BF16", "layers.0.k", "element [2 0] is NaN", WriteOptions{KType: DTypeBF16}, poke("layers.0.k", 8, []byte{0xC0, 0x7F})},
		{"Inf in F16", "layers.3.q", "element [0 0 1] is +Inf", WriteOptions{QType: DTypeF16}, poke("layers.3.q", 1, []byte{0x00, 0x7C})},
		{"NaN in F8", "layers.0.k", "element [0 2] is NaN", f8, poke("layers.0.k", 2, []byte{0xFF})},
		{"F8 overflow", "layers.0.q", "overflows float32", f8, func(h map[string]any, data []byte) []byte {
			b, _ := tioOffsets(h, "layers.0.q_scale")
			copy(data[b:], f32(1e38))
			b, _ = tioOffsets(h, "layers.0.q")
			data[b], data[b+1] = 0x00, 0x7E // 0, then 448 × 1e38
			return data
		}},
		{"zero scale", "layers.3.k_scale", "scale at [5] is 0", f8, poke("layers.3.k_scale", 5, f32(0))},
		{"negative scale", "layers.0.q_scale", "scale at [1 1] is -2", f8, poke("layers.0.q_scale", 3, f32(-2))},
		{"NaN scale", "layers.0.q_scale", "element [0 0] is NaN", f8, poke("layers.0.q_scale", 0, f32(float32(math.NaN())))},
		{"Inf scale", "layers.0.k_scale", "element [7] is +Inf", f8, poke("layers.0.k_scale", 7, f32(float32(math.Inf(1))))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := tioMutate(t, c.opt, c.edit)
			f, err := Open(path)
			if err != nil {
				t.Fatalf("Open: %v (value rules are checked when decoding)", err)
			}
			defer f.Close()
			tioWantFormatError(t, f.Validate(context.Background()), path, c.tensor, c.rule)
			l := 0
			if strings.HasPrefix(c.tensor, "layers.3") {
				l = 3
			}
			_, err = f.Layer(context.Background(), l)
			tioWantFormatError(t, err, path, c.tensor, c.rule)
		})
	}
}

// TestLayerFirstBadIndexParallel checks that with a tensor large enough to
// be decoded in parallel, the first bad element is reported, not whichever
// part finished first.
func TestLayerFirstBadIndexParallel(t *testing.T) {
	meta := Meta{Format: FormatV1, Model: "m", NCtx: 1 << 16, Heads: 1, HeadDim: 8, TopK: 4, Layers: []int{0}}
	src := tioNewSource(3, meta, []int64{0}, 1<<16)
	path := tioWrite(t, src, WriteOptions{KType: DTypeBF16})
	b, _ := os.ReadFile(path)
	h, data := tioSplit(t, b)
	kb, _ := tioOffsets(h, "layers.0.k")
	for _, e := range []int{(1<<16)*8 - 3, 300001, 123457} {
		binary.LittleEndian.PutUint16(data[kb+2*e:], 0x7F80)
	}
	if err := os.WriteFile(path, tioJoin(t, h, data), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = f.Layer(context.Background(), 0)
	tioWantFormatError(t, err, path, "layers.0.k", "element [15432 1] is +Inf")
}

// TestLayerTruncatedWhileOpen truncates a mapped trace under the reader:
// touching the lost pages raises SIGBUS, which must become an error.
func TestLayerTruncatedWhileOpen(t *testing.T) {
	meta := tioMeta()
	meta.HeadDim = 256 // 64 KB per k, many pages
	path := tioWrite(t, tioNewSource(4, meta, []int64{63}, 64), WriteOptions{})
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if st, _ := os.Stat(path); st.Size() < 2*int64(os.Getpagesize()) {
		t.Fatalf("test trace of %d bytes is too small", st.Size())
	}
	if err := os.Truncate(path, 64); err != nil {
		t.Fatal(err)
	}
	_, err = f.Layer(context.Background(), 3)
	tioWantFormatError(t, err, path, "", "memory fault reading the mapped file")
	if f.Hash() != "" {
		t.Error("hash of a truncated file")
	}
}
