package eval

import (
	"context"
	"fmt"

	"github.com/misabench/misabench/indexer"
	"github.com/misabench/misabench/trace"
)

// RunOptions says what Run computes.
type RunOptions struct {
	Methods []indexer.Method
	// Layers restricts the run to these layers; nil runs every layer of
	// each source. A listed layer missing from a source is an error.
	Layers []int
	// TopK overrides the sources' top-k when positive.
	TopK int
	// GroupBy names the metadata key that groups rows ("dataset"), or "".
	GroupBy string
	// Progress, when set, is called after each layer with the layers done
	// and the total.
	Progress func(done, total int)
}

// Run evaluates every method on every chosen layer of every source against
// DSA and returns the aggregated result. The caller fills Version, Config,
// Notes and Created.
//
// All parameters are checked against every source before any work starts,
// so that a bad setting fails in milliseconds, not after an hour.
func Run(ctx context.Context, sources []trace.Source, b indexer.Backend, opt RunOptions) (*Result, error) {
	if len(sources) == 0 {
		return nil, fmt.Errorf("run: no trace sources")
	}
	if opt.GroupBy != "" && opt.GroupBy != "dataset" {
		return nil, fmt.Errorf("run: cannot group by %q (want dataset)", opt.GroupBy)
	}
	plan := make([][]int, len(sources))
	total := 0
	for i, src := range sources {
		meta := src.Meta()
		for _, m := range opt.Methods {
			if err := m.Validate(meta.Heads); err != nil {
				return nil, fmt.Errorf("%s: %w", src.Name(), err)
			}
		}
		layers := opt.Layers
		if layers == nil {
			layers = meta.Layers
		}
		for _, l := range layers {
			if !meta.HasLayer(l) {
				return nil, &trace.FormatError{File: src.Name(), Tensor: fmt.Sprintf("layers.%d", l),
					Rule: fmt.Sprintf("layer %d is not in the trace (it has %v)", l, meta.Layers)}
			}
		}
		plan[i] = layers
		total += len(layers)
	}

	acc := NewAccumulator()
	res := &Result{Schema: SchemaRecallV1, Backend: b.Name()}
	done := 0
	for i, src := range sources {
		meta := src.Meta()
		topk := meta.TopK
		if opt.TopK > 0 {
			topk = opt.TopK
		}
		group := ""
		if opt.GroupBy == "dataset" {
			group = meta.Dataset
			if group == "" {
				group = "(none)"
			}
		}
		res.Inputs = append(res.Inputs, InputInfo{
			Name: src.Name(), Hash: src.Hash(), Model: meta.Model, NCtx: meta.NCtx,
			Queries: len(src.QPos()), Layers: plan[i], Dataset: meta.Dataset,
		})
		for _, l := range plan[i] {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			layer, err := src.Layer(ctx, l)
			if err != nil {
				return nil, err
			}
			in := &indexer.Input{
				H: meta.Heads, D: meta.HeadDim, TopK: topk, N: src.NKeys(),
				QPos: src.QPos(), Q: layer.Q, K: layer.K, W: layer.W,
			}
			out, err := b.Run(ctx, in, opt.Methods)
			if err != nil {
				return nil, fmt.Errorf("%s layer %d: %w", src.Name(), l, err)
			}
			if err := acc.Add(src.Name(), group, l, in, out); err != nil {
				return nil, err // Add names the source and layer
			}
			done++
			if opt.Progress != nil {
				opt.Progress(done, total)
			}
		}
	}
	res.Layers = acc.Layers()
	res.Overall = acc.Overall()
	if opt.GroupBy != "" {
		res.Groups = acc.Groups()
	}
	return res, nil
}
