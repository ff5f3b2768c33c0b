// Package convert turns a model's indexer weights and recorded activations
// into misabench traces: the DSA indexer's projection pipeline of
// DeepSeek-V3.2 and GLM-5 (research/papers.md §1.2) — q = wq_b(qr),
// k = LayerNorm(wk(x)), RoPE on the first rope dimensions (non-interleaved
// for DeepSeek-V3.2, interleaved for GLM-5), the orthonormal Hadamard
// rotation, optional FP8 quantisation with power-of-two scales, and the
// head weights weights_proj(x)·H^-1/2·D^-1/2.
package convert
