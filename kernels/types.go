package kernels

// Types shared by the CUDA build and the plain one, so that commands and
// views compile without the cuda tag.

// DeviceInfo describes one CUDA device, for `misabench devices`.
type DeviceInfo struct {
	Index        int
	Name         string
	Major, Minor int    // compute capability
	Arch         string // the NVRTC target kernels are built for, e.g. sm_90a
	MemoryBytes  int64
	SMs          int
	L2Bytes      int
	Driver       string // CUDA version the driver supports, e.g. "13.0"
	NVRTC        string // NVRTC version, "" when it cannot be loaded
	NVRTCError   string // why NVRTC cannot be loaded, "" when it can
}

// CompareOptions configures CompareDSA: the shapes of `misabench kernel
// --compare-dsa` (issue: prefill = 1024 rows at the end of the context,
// decode = a batch of single queries, each over its own keys).
type CompareOptions struct {
	Models      []string // synthetic presets: deepseek-v3.2 (64 heads), glm-5 (32)
	Contexts    []int
	Modes       []string // prefill, decode
	PrefillRows int
	DecodeBatch int
	TopK        int
	// MISA and HISA parameters (paper defaults when zero).
	Heads, Block, Stage1, HisaBlock, HisaBlocks int
	Warmup, Reps                                int
	Seed                                        uint64
	// LogitsKernel picks the FP8 logits kernel version (kernels/NOTES.md);
	// zero takes the device's default.
	LogitsKernel int `json:"logits_kernel,omitempty"`
	// Dump, when set, is a directory where each shape's inputs are written
	// as a trace (F32: the FP8 values dequantised exactly), named
	// <model>-<mode>-<ctx>.safetensors, so that an independent
	// implementation (tools/reference/compare_torch.py) can recompute the
	// same selections and recalls.
	Dump string `json:"dump,omitempty"`
	// NoFused leaves out the fused-selection rows (dsa+fused, misa+fused:
	// fp8select.cu), which otherwise run where the version 12 kernel does.
	NoFused bool `json:"no_fused,omitempty"`
	// Progress is called after each case (model, mode, context).
	Progress func(done, total int) `json:"-"`
}

// Stage is the median time of one part of a method's pipeline, timed on
// its own.
type Stage struct {
	Name string  `json:"name"` // pooling, router, logits, topk
	Ms   float64 `json:"ms"`
}

// CaseResult is one method on one shape.
type CaseResult struct {
	Model  string `json:"model"`
	H      int    `json:"heads"`
	Mode   string `json:"mode"`
	Ctx    int    `json:"ctx"`
	Rows   int    `json:"rows"`
	Method string `json:"method"`
	// End-to-end time (all stages, back to back) over Reps runs.
	MedianMs float64 `json:"median_ms"`
	MinMs    float64 `json:"min_ms"`
	MaxMs    float64 `json:"max_ms"`
	Stages   []Stage `json:"stages"`
	// LogitsTFLOPs is the tensor work of the logits stages (2·heads·128 per
	// scored key) over their time; GBs counts the fewest bytes the whole
	// pipeline must move (keys read once per sequence, logits written and
	// read back by top-k) over the end-to-end time.
	LogitsTFLOPs float64 `json:"logits_tflops"`
	GBs          float64 `json:"gbs"`
	// Recall is the mean over rows of |set ∩ DSA's| / |DSA's| on the same inputs.
	Recall  float64 `json:"recall"`
	Speedup float64 `json:"speedup"` // DSA's median over this one's
	// SpeedupBest is the faster DSA pipeline's median (dsa or dsa+fused)
	// over this one's.
	SpeedupBest float64 `json:"speedup_best_dsa,omitempty"`
	// Fallbacks counts the rows a fused selection could not decide from its
	// survivors (fp8select.cu), which sent the run to the unfused pipeline.
	Fallbacks int `json:"fallbacks,omitempty"`
}

// CompareReport is the whole run.
type CompareReport struct {
	Device  DeviceInfo `json:"device"`
	CopyGBs float64    `json:"copy_gbs"` // measured device-to-device copy, bytes read + written
	// TensorTFLOPs is the measured FP8 tensor-core rate (peak.cu; 0 where
	// the card has no wgmma), the ceiling for the logits TFLOP/s.
	TensorTFLOPs float64 `json:"tensor_tflops,omitempty"`
	// LogitsKernel is the FP8 logits kernel version the run used.
	LogitsKernel int            `json:"logits_kernel"`
	Options      CompareOptions `json:"options"`
	Cases        []CaseResult   `json:"cases"`
}
