package checkpoint

import (
	"fmt"
	"strings"

	"github.com/misabench/misabench/safetensors"
)

// IndexerWeights are one layer's DSA indexer weights, dequantised to
// float32 and stored row-major as the checkpoint stores them ([out][in],
// y = W·x). H = index_n_heads, D = index_head_dim.
type IndexerWeights struct {
	Layer                  int
	Heads, HeadDim         int       // H, D
	Hidden, QLoRARank      int       // hidden_size, q_lora_rank
	WqB                    []float32 // [H·D][QLoRARank]: q = wq_b(q-LoRA latent), head h = rows h·D..h·D+D-1
	Wk                     []float32 // [D][Hidden]: k = k_norm(wk(hidden))
	KNormWeight, KNormBias []float32 // [D]: LayerNorm affine, eps KNormEps
	WeightsProj            []float32 // [H][Hidden]: head weights = weights_proj(hidden), no bias
	Sources                []Source  // where each came from, in the order above
}

// Source says where one indexer weight came from.
type Source struct {
	Name  string            // the tensor, e.g. model.layers.3.self_attn.indexer.wk.weight
	Shard string            // its shard, relative to the checkpoint
	DType safetensors.DType // as stored
	Shape []int             // as stored
	Scale string            // the weight_scale_inv tensor that dequantised it, or ""
}

// Indexer tensor suffixes (after layerPrefix).
const (
	nameWqB         = "wq_b.weight"
	nameWk          = "wk.weight"
	nameKNormWeight = "k_norm.weight"
	nameKNormBias   = "k_norm.bias"
	nameWeightsProj = "weights_proj.weight"
	scaleSuffix     = "_scale_inv" // <name>.weight → <name>.weight_scale_inv
)

// IndexerLayers lists the layers in [0, num_hidden_layers) that run their
// own indexer by the config and whose indexer tensors are in the weight map
// (GLM-5.2's shared layers and the layers a pruned checkpoint lacks are
// left out). It looks at names only; Indexer checks the tensors.
func (c *Checkpoint) IndexerLayers() []int {
	var out []int
	for l := range c.Config.NumHiddenLayers {
		if _, ok := c.weightMap[layerPrefix(l)+nameWk]; ok && c.Config.HasIndexer(l) {
			out = append(out, l)
		}
	}
	return out
}

// Indexer reads layer's indexer weights, dequantising FP8 ones
// (F8_E4M3 with a block-wise F32 weight_scale_inv:
// w[i][j] = fp8(w[i][j]) · scale_inv[i/bo][j/bi], blocks bo×bi from
// quantization_config.weight_block_size, 128×128 by default). Every shape
// is checked against the config. Only the shards that hold these tensors
// are mapped, and only these tensors are decoded.
func (c *Checkpoint) Indexer(layer int) (*IndexerWeights, error) {
	cfg := &c.Config
	if !c.hasIndexer {
		if c.otherIndexer != "" {
			return nil, c.errf("", "", "checkpoint has no indexer tensors named model.layers.{i}.self_attn.indexer.* (but has %s): an unsupported naming?", c.otherIndexer)
		}
		return nil, c.errf("", "", "checkpoint has no indexer tensors: not a DSA model?")
	}
	if err := checkConfig(cfg, func(format string, args ...any) error {
		return c.errf(ConfigFile, "", format, args...)
	}); err != nil {
		return nil, err
	}
	if layer < 0 || layer >= cfg.NumHiddenLayers {
		return nil, c.errf("", "", "layer %d is outside [0, num_hidden_layers = %d) (the MTP layers after them are not served)", layer, cfg.NumHiddenLayers)
	}
	prefix := layerPrefix(layer)
	if !cfg.HasIndexer(layer) {
		prev := -1
		for l := layer - 1; l >= 0; l-- {
			if cfg.HasIndexer(l) {
				prev = l
				break
			}
		}
		return nil, c.errf("", "", "layer %d has no indexer of its own: its indexer type is \"shared\" (it reuses the top-k of layer %d); pick a full layer (%s)",
			layer, prev, formatLayers(c.IndexerLayers()))
	}
	var present, missing []string
	for _, s := range []string{nameWqB, nameWk, nameKNormWeight, nameKNormBias, nameWeightsProj} {
		if _, ok := c.weightMap[prefix+s]; ok {
			present = append(present, s)
		} else {
			missing = append(missing, s)
		}
	}
	if len(present) == 0 {
		return nil, c.errf("", "", "layer %d has no indexer tensors (%s*); layers with an indexer: %s",
			layer, prefix, formatLayers(c.IndexerLayers()))
	}
	if len(missing) > 0 {
		return nil, c.errf("", prefix+missing[0], "missing (layer %d has %s but not %s)",
			layer, strings.Join(present, ", "), strings.Join(missing, ", "))
	}

	h, d := cfg.IndexNHeads, cfg.IndexHeadDim
	w := &IndexerWeights{Layer: layer, Heads: h, HeadDim: d, Hidden: cfg.HiddenSize, QLoRARank: cfg.QLoRARank}
	for _, x := range []struct {
		suffix string
		dst    *[]float32
		shape  []int
		origin string
	}{
		{nameWqB, &w.WqB, []int{h * d, cfg.QLoRARank}, "index_n_heads × index_head_dim, q_lora_rank"},
		{nameWk, &w.Wk, []int{d, cfg.HiddenSize}, "index_head_dim, hidden_size"},
		{nameKNormWeight, &w.KNormWeight, []int{d}, "index_head_dim"},
		{nameKNormBias, &w.KNormBias, []int{d}, "index_head_dim"},
		{nameWeightsProj, &w.WeightsProj, []int{h, cfg.HiddenSize}, "index_n_heads, hidden_size"},
	} {
		v, src, err := c.weight(prefix+x.suffix, x.shape, x.origin)
		if err != nil {
			return nil, err
		}
		*x.dst = v
		w.Sources = append(w.Sources, src)
	}
	return w, nil
}

// weight reads one indexer weight of the expected shape, dequantising it if
// it is FP8.
func (c *Checkpoint) weight(name string, want []int, origin string) ([]float32, Source, error) {
	f, t, err := c.tensor(name)
	if err != nil {
		return nil, Source{}, err
	}
	shard := c.weightMap[name]
	src := Source{Name: name, Shard: shard, DType: t.DType, Shape: t.Shape}
	if !equal(t.Shape, want) {
		return nil, src, c.errf(shard, name, "shape %v does not match the config: want %v (%s)", t.Shape, want, origin)
	}
	scaleName := ""
	if strings.HasSuffix(name, ".weight") {
		scaleName = name + scaleSuffix
	}
	_, hasScale := c.weightMap[scaleName]
	switch {
	case t.DType == safetensors.F8E4M3 && len(want) == 2:
		if !hasScale {
			return nil, src, c.errf(shard, name, "is F8_E4M3 but the checkpoint has no %s to dequantise it", scaleName)
		}
		src.Scale = scaleName
		v, err := c.dequantFP8(f, t, shard, scaleName)
		return v, src, err
	case hasScale:
		return nil, src, c.errf(c.weightMap[scaleName], scaleName, "present but %s is %s, not F8_E4M3", name, t.DType)
	case !t.DType.IsFloat() || t.DType == safetensors.F8E4M3:
		return nil, src, c.errf(shard, name, "dtype %s is not supported here (want BF16, F16, F32, or F8_E4M3 with a weight_scale_inv for a 2-D weight)", t.DType)
	}
	v, err := f.Float32(name)
	if err != nil {
		return nil, src, c.convert(err)
	}
	return v, src, nil
}

// dequantFP8 decodes a block-quantised F8_E4M3 weight t (of shard file f)
// with its weight_scale_inv.
func (c *Checkpoint) dequantFP8(f *safetensors.File, t safetensors.TensorInfo, shard, scaleName string) ([]float32, error) {
	bo, bi := c.Config.WeightBlockSize[0], c.Config.WeightBlockSize[1]
	out, in := t.Shape[0], t.Shape[1]
	sf, st, err := c.tensor(scaleName)
	if err != nil {
		return nil, err
	}
	scaleShard := c.weightMap[scaleName]
	wantScale := []int{ceilDiv(out, bo), ceilDiv(in, bi)}
	if !equal(st.Shape, wantScale) {
		return nil, c.errf(scaleShard, scaleName, "shape %v does not match its weight %s of shape %v in %d×%d blocks: want %v",
			st.Shape, t.Name, t.Shape, bo, bi, wantScale)
	}
	if !st.DType.IsFloat() || st.DType == safetensors.F8E4M3 {
		return nil, c.errf(scaleShard, scaleName, "dtype %s is not supported for a scale (want F32, BF16 or F16)", st.DType)
	}
	scale, err := sf.Float32(scaleName)
	if err != nil {
		return nil, c.convert(err)
	}
	for i, s := range scale {
		if s < 0 {
			return nil, c.errf(scaleShard, scaleName, "scale at %s is %v; scales must be ≥ 0", safetensors.ElemIndex(st.Shape, i), s)
		}
	}

	raw := f.TensorBytes(t)
	if raw == nil {
		return nil, fmt.Errorf("checkpoint %s: closed", c.dir)
	}
	dst := make([]float32, out*in)
	nbi := wantScale[1]
	var one [1]float32
	bad := -1
	err = safetensors.CatchFault(f.Name(), func() error {
		for i := range out {
			row, srow := i*in, (i/bo)*nbi
			for jb := range nbi {
				lo, hi := row+jb*bi, row+min((jb+1)*bi, in)
				one[0] = scale[srow+jb]
				if !safetensors.DecodeE4M3Scaled(dst[lo:hi], raw[lo:hi], one[:], hi-lo) {
					for k := lo; k < hi; k++ {
						if v := dst[k]; v-v != 0 {
							bad = k
							return nil
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, c.convert(err)
	}
	if bad >= 0 {
		at := safetensors.ElemIndex(t.Shape, bad)
		s := scale[(bad/in/bo)*nbi+(bad%in)/bi]
		if v := safetensors.E4M3ToFloat32(raw[bad]); v != v {
			return nil, c.errf(shard, t.Name, "element %s is NaN (file offset %d): weights must be finite",
				at, f.Header().DataStart()+t.Begin+int64(bad))
		}
		return nil, c.errf(shard, t.Name, "element %s = %v × scale %v overflows float32", at, safetensors.E4M3ToFloat32(raw[bad]), s)
	}
	return dst, nil
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// formatLayers writes a layer list compactly ("0-2,6,10-12"), "none" if
// empty.
func formatLayers(ls []int) string {
	if len(ls) == 0 {
		return "none"
	}
	var b strings.Builder
	for i := 0; i < len(ls); {
		j := i
		for j+1 < len(ls) && ls[j+1] == ls[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", ls[i], ls[j])
		} else {
			fmt.Fprintf(&b, "%d", ls[i])
		}
		i = j + 1
	}
	return b.String()
}
