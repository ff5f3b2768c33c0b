// Package kernels is misabench's GPU backend: CUDA C kernels (the embedded
// *.cu files, compiled at run time by NVRTC for the device's own
// architecture and cached on disk) and the Go code that launches them
// through the CUDA driver API (gorgonia.org/cu).
//
// Everything that needs CUDA is behind the build tag `cuda`
// (`make build-cuda`, see cuda.mk); without the tag this package is empty
// and the build stays pure Go. With it, the package offers:
//
//   - Devices, listing the GPUs with their compute capability, memory, and
//     the driver and NVRTC versions;
//   - NewGPU, an indexer.Backend that reproduces the CPU reference backend
//     (indexer.NewCPU) method for method: DSA, MISA with every router,
//     MISA† and HISA, with the reference selections, HeadRank and Mass.
//   - GPU.MatMulT, the matrix products of `misabench trace convert`
//     (convert.Multiplier), with float64 sums in convert's own order;
//   - GPU.CompareDSA, `misabench kernel --compare-dsa`: the fast path on
//     the tensor cores (FP8 logits fp8logits.cu, pooling and router
//     fp8router.cu, top-k topkfast.cu) timed stage by stage against the
//     card's measured copy bandwidth and FP8 tensor rate (peak.cu), and the
//     same selections fused (fp8select.cu: the logits filtered against a
//     sampled threshold instead of written); bf16 logits (logitsbf16.cu)
//     are tested and benchmarked beside it.
//
// Each kernel family lives in one .cu file whose header comment gives its
// FLOP and byte counts; the Go code that launches it sits beside it in the
// .go file of a matching name. NOTES.md holds the floors and the measured
// times of each kernel version.
//
// Requirements at run time: an NVIDIA driver (libcuda.so.1) and NVRTC
// (libnvrtc.so, .so.13 or .so.12, found by dlopen, or the path in
// MISABENCH_NVRTC). Compiled kernels are cached under
// os.UserCacheDir()/misabench/kernels.
package kernels
