package trace

import "context"

// FormatV1 is the value of the "format" metadata key of a v1 trace.
const FormatV1 = "misabench.trace/v1"

// Span is a half-open token range [Start, End).
type Span struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// Len is the number of tokens in the span.
func (s Span) Len() int { return s.End - s.Start }

// Meta is the parsed __metadata__ of a trace.
type Meta struct {
	Format  string `json:"format"`
	Model   string `json:"model"`
	NCtx    int    `json:"n_ctx"`
	Heads   int    `json:"heads"`
	HeadDim int    `json:"head_dim"`
	TopK    int    `json:"topk"`
	Layers  []int  `json:"layers"`

	// Optional keys.
	Dataset      string   `json:"dataset,omitempty"`
	SampleID     string   `json:"sample_id,omitempty"`
	Needle       []Span   `json:"needle,omitempty"`
	DepthPercent *float64 `json:"depth_percent,omitempty"`
	Question     *Span    `json:"question,omitempty"`

	// Extra keeps metadata keys this version does not interpret, so that a
	// trace read and written again loses nothing.
	Extra map[string]string `json:"extra,omitempty"`
}

// HasLayer reports whether layer l is listed in the metadata.
func (m *Meta) HasLayer(l int) bool {
	for _, x := range m.Layers {
		if x == l {
			return true
		}
	}
	return false
}

// Layer holds one layer's indexer inputs, dequantised to float32.
//
// Q is [len(QPos)][Heads][HeadDim], K is [NKeys][HeadDim] and W is
// [len(QPos)][Heads], all row-major. Scales of FP8 inputs are already folded in.
type Layer struct {
	Index int
	Q     []float32
	K     []float32
	W     []float32
}

// Source yields the layers of one sequence, one layer at a time, so that
// memory grows with a single layer however long the trace is.
type Source interface {
	// Name identifies the source in tables and errors (a file path, or
	// "synthetic:<preset>").
	Name() string
	Meta() Meta
	// QPos are the positions of the query rows, ascending.
	QPos() []int64
	// NKeys is the number of key rows (every layer has the same).
	NKeys() int
	// Layer decodes layer l (one of Meta().Layers).
	Layer(ctx context.Context, l int) (*Layer, error)
	// Hash is a stable content hash of the source (sha256 hex of the file,
	// or of the generator's configuration), recorded in results.
	Hash() string
}
