// Package trace holds the misabench trace format (v1): one safetensors file
// per sequence with the indexer inputs (q, k, weights) of several layers.
//
// It reads traces by memory-mapping them and validating every rule of the
// format before a single number is used, writes them atomically (temporary
// file, then rename), and generates structured synthetic traces. Every source
// of layers — a file on disk or the generator — implements Source, so the
// rest of misabench never knows where a layer came from. The generic
// safetensors part (mapping, header validation, dtype codec) lives in
// package safetensors; this package adds the trace's own rules on top.
package trace
