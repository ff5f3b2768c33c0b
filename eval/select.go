package eval

import (
	"context"
	"fmt"

	"github.com/misabench/misabench/indexer"
	"github.com/misabench/misabench/trace"
)

// LayerSelection is what each method selects on one layer: per query row,
// ascending token indices.
type LayerSelection struct {
	Layer int                  `json:"layer"`
	QPos  []int64              `json:"q_pos"`
	Sets  map[string][][]int32 `json:"sets"` // "dsa" and each method's Name()
}

// Select runs the methods on the chosen layers of one source (every layer
// when layers is nil) and returns the selections themselves, for checks
// against other implementations (tools/dump/check_reference.py compares
// DSA's with a model's own indexer).
func Select(ctx context.Context, src trace.Source, b indexer.Backend, layers []int, methods []indexer.Method) ([]LayerSelection, error) {
	meta := src.Meta()
	for _, m := range methods {
		if err := m.Validate(meta.Heads); err != nil {
			return nil, fmt.Errorf("%s: %w", src.Name(), err)
		}
	}
	if layers == nil {
		layers = meta.Layers
	}
	for _, l := range layers {
		if !meta.HasLayer(l) {
			return nil, &trace.FormatError{File: src.Name(), Tensor: fmt.Sprintf("layers.%d", l),
				Rule: fmt.Sprintf("layer %d is not in the trace (it has %v)", l, meta.Layers)}
		}
	}
	var out []LayerSelection
	for _, l := range layers {
		layer, err := src.Layer(ctx, l)
		if err != nil {
			return nil, err
		}
		in := &indexer.Input{H: meta.Heads, D: meta.HeadDim, TopK: meta.TopK, N: src.NKeys(),
			QPos: src.QPos(), Q: layer.Q, K: layer.K, W: layer.W}
		res, err := b.Run(ctx, in, methods)
		if err != nil {
			return nil, fmt.Errorf("%s layer %d: %w", src.Name(), l, err)
		}
		sel := LayerSelection{Layer: l, QPos: in.QPos, Sets: map[string][][]int32{"dsa": res.Reference}}
		for _, mo := range res.Methods {
			sel.Sets[mo.Method.Name()] = mo.Sets
		}
		out = append(out, sel)
	}
	return out, nil
}
