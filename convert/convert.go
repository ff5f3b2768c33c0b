package convert

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/misabench/misabench/checkpoint"
	"github.com/misabench/misabench/safetensors"
	"github.com/misabench/misabench/trace"
)

// ActivationsFormat is the "format" metadata of an activation dump
// (tools/dump/misabench_dump.py writes it).
const ActivationsFormat = "misabench.activations/v1"

// Options controls Convert.
type Options struct {
	// Layers to convert; nil converts every layer the dump has.
	Layers []int
	// Quant is "none" (F32 q and k) or "fp8" (E4M3 with power-of-two
	// scales per key and per query head, as DeepSeek's act_quant).
	Quant string
	// NoHadamard skips the rotation (it changes no score, only how FP8
	// rounds).
	NoHadamard bool
	// Multiplier computes the matrix products (Params.Mul): the GPU when
	// set; nil computes them on the CPU.
	Multiplier Multiplier
}

// Convert reads the indexer weights of a checkpoint and one activation
// dump and writes a v1 trace to out (atomically), one layer at a time.
func Convert(ctx context.Context, ck *checkpoint.Checkpoint, activations, out string, opt Options) error {
	act, err := safetensors.Open(activations)
	if err != nil {
		return fmt.Errorf("activations: %w", err)
	}
	defer act.Close()
	meta := act.Metadata()
	bad := func(tensor, format string, args ...any) error {
		return &trace.FormatError{File: activations, Tensor: tensor, Rule: fmt.Sprintf(format, args...)}
	}
	if meta["format"] != ActivationsFormat {
		return bad("__metadata__", "format %q, want %q", meta["format"], ActivationsFormat)
	}
	cfg := ck.Config
	model := modelName(cfg.ModelType)
	if m := meta["model"]; m != "" && m != model {
		return bad("__metadata__", "dump of model %q, checkpoint is %q (%s)", m, model, cfg.ModelType)
	}
	layers, err := parseLayers(meta["layers"])
	if err != nil {
		return bad("__metadata__", "layers: %v", err)
	}
	if opt.Layers != nil {
		for _, l := range opt.Layers {
			if !slices.Contains(layers, l) {
				return bad(fmt.Sprintf("layers.%d.hidden", l), "layer %d was not recorded (the dump has %v)", l, layers)
			}
		}
		layers = opt.Layers
	}
	positions, err := act.Int64("positions")
	if err != nil {
		return fmt.Errorf("activations: %w", err)
	}
	qRows, err := act.Int64("q_rows")
	if err != nil {
		return fmt.Errorf("activations: %w", err)
	}
	N := len(positions)
	if N == 0 || len(qRows) == 0 {
		return bad("positions", "no key rows or no query rows")
	}
	for i, r := range qRows {
		if r < 0 || r >= int64(N) || (i > 0 && r <= qRows[i-1]) {
			return bad("q_rows", "q_rows[%d] = %d: query rows must be ascending indices in [0, %d)", i, r, N)
		}
	}
	for i := 1; i < N; i++ {
		if positions[i] <= positions[i-1] {
			return bad("positions", "positions[%d] = %d does not increase", i, positions[i])
		}
	}

	var quant trace.WriteOptions
	switch opt.Quant {
	case "", "none":
	case "fp8":
		quant = trace.WriteOptions{QType: trace.DTypeF8E4M3, KType: trace.DTypeF8E4M3}
	default:
		return fmt.Errorf("convert: unknown --quant %q (want none or fp8)", opt.Quant)
	}
	rope, err := ropeOf(cfg)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", ck.Dir(), err)
	}
	params := Params{RoPE: rope, NormEps: checkpoint.KNormEps, Hadamard: !opt.NoHadamard, Mul: opt.Multiplier}

	tm := trace.Meta{
		Format: trace.FormatV1, Model: model, NCtx: N, Heads: cfg.IndexNHeads, HeadDim: cfg.IndexHeadDim,
		TopK: cfg.IndexTopK, Layers: layers, Dataset: meta["dataset"], SampleID: meta["sample_id"],
		Extra: map[string]string{"converted_from": ck.Dir(), "quant": strings.ToLower(opt.Quant)},
	}
	// Needle, question and depth pass through with trace's own parser.
	passed := map[string]string{}
	for _, k := range []string{"needle", "question", "depth_percent"} {
		if v := meta[k]; v != "" {
			passed[k] = v
		}
	}
	if len(passed) > 0 {
		raw := trace.EncodeMeta(tm)
		for k, v := range passed {
			raw[k] = v
		}
		if tm, err = trace.ParseMeta(activations, raw); err != nil {
			return err
		}
	}
	w, err := trace.Create(out, tm, qRows, N, quant)
	if err != nil {
		return err
	}
	defer w.Abort()
	for _, l := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		iw, err := ck.Indexer(l)
		if err != nil {
			return err
		}
		hname, qname := fmt.Sprintf("layers.%d.hidden", l), fmt.Sprintf("layers.%d.qr", l)
		if info, ok := act.Info(hname); !ok || len(info.Shape) != 2 || info.Shape[0] != N || info.Shape[1] != iw.Hidden {
			return bad(hname, "want shape [%d, %d] (rows × hidden_size), got %v", N, iw.Hidden, shapeOf(info, ok))
		}
		if info, ok := act.Info(qname); !ok || len(info.Shape) != 2 || info.Shape[0] != len(qRows) || info.Shape[1] != iw.QLoRARank {
			return bad(qname, "want shape [%d, %d] (query rows × q_lora_rank), got %v", len(qRows), iw.QLoRARank, shapeOf(info, ok))
		}
		hidden, err := act.Float32(hname)
		if err != nil {
			return fmt.Errorf("activations: %w", err)
		}
		qr, err := act.Float32(qname)
		if err != nil {
			return fmt.Errorf("activations: %w", err)
		}
		wt := &Weights{H: iw.Heads, D: iw.HeadDim, Hidden: iw.Hidden, QLoRA: iw.QLoRARank,
			WqB: iw.WqB, Wk: iw.Wk, KNormW: iw.KNormWeight, KNormB: iw.KNormBias, WProj: iw.WeightsProj}
		pl, err := Project(params, wt, hidden, qr, positions, qRows)
		if err != nil {
			return fmt.Errorf("layer %d: %w", l, err)
		}
		if err := w.WriteLayer(&trace.Layer{Index: l, Q: pl.Q, K: pl.K, W: pl.W}); err != nil {
			return err
		}
	}
	return w.Close()
}

func shapeOf(info safetensors.TensorInfo, ok bool) any {
	if !ok {
		return "no such tensor"
	}
	return info.Shape
}

// modelName maps a config's model_type to misabench's preset names.
func modelName(modelType string) string {
	switch modelType {
	case "deepseek_v32":
		return "deepseek-v3.2"
	case "glm_moe_dsa":
		return "glm-5"
	}
	return modelType
}

// ropeOf builds the indexer's RoPE from the config: qk_rope_head_dim
// dims, rope_theta, YaRN when rope_scaling says so, and the layout
// (RopeInterleaved: GLM-5 interleaved, DeepSeek-V3.2 NeoX).
func ropeOf(cfg checkpoint.Config) (*RoPE, error) {
	var y *YaRN
	if rs := cfg.RopeScaling; rs != nil {
		switch rs.Type {
		case "yarn":
			y = &YaRN{Factor: rs.Factor, OriginalMaxPositionEmbeddings: rs.OriginalMaxPositionEmbeddings,
				BetaFast: rs.BetaFast, BetaSlow: rs.BetaSlow, Mscale: rs.MScale, MscaleAllDim: rs.MScaleAllDim,
				AttentionFactor: rs.AttentionFactor, NoTruncate: rs.Truncate != nil && !*rs.Truncate}
			if y.Factor == 0 && y.OriginalMaxPositionEmbeddings > 0 {
				y.Factor = float64(cfg.MaxPositionEmbeddings) / float64(y.OriginalMaxPositionEmbeddings)
			}
		case "", "default":
		default:
			return nil, fmt.Errorf("rope scaling %q is not supported for the indexer (yarn or none)", rs.Type)
		}
	}
	theta := cfg.RopeTheta
	if theta == 0 {
		theta = 10000
	}
	if cfg.QKRopeHeadDim <= 0 || cfg.QKRopeHeadDim > cfg.IndexHeadDim || math.IsNaN(theta) {
		return nil, fmt.Errorf("qk_rope_head_dim %d must be in [1, index_head_dim %d]", cfg.QKRopeHeadDim, cfg.IndexHeadDim)
	}
	return NewRoPE(cfg.QKRopeHeadDim, theta, cfg.RopeInterleaved(), y)
}

func parseLayers(s string) ([]int, error) {
	if s == "" {
		return nil, fmt.Errorf("missing")
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		l, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || l < 0 {
			return nil, fmt.Errorf("bad layer %q", f)
		}
		out = append(out, l)
	}
	return out, nil
}
