//go:build cuda

package main

import (
	"context"

	"github.com/misabench/misabench/kernels"
)

// gpuBuilt reports why GPU-only commands cannot run in this build: never,
// this build has the CUDA backend.
func gpuBuilt() error { return nil }

// compareDSA opens GPU 0 and runs the DSA comparison on it. A GPU that
// cannot be opened (no device, no driver, no NVRTC) is a usage error.
func compareDSA(ctx context.Context, o kernels.CompareOptions) (*kernels.CompareReport, error) {
	g, err := kernels.NewGPU(0)
	if err != nil {
		return nil, usageErrorf("kernel: GPU 0: %v", err)
	}
	defer g.Close()
	return g.CompareDSA(ctx, o)
}
