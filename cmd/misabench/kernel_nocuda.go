//go:build !cuda

package main

import (
	"context"

	"github.com/misabench/misabench/kernels"
)

// gpuBuilt reports why GPU-only commands (kernel, devices) cannot run in
// this build: it was built without the cuda tag (exit 2).
func gpuBuilt() error {
	return usageErrorf("this misabench was built without CUDA (build with `make build-cuda`)")
}

// compareDSA needs the CUDA backend, which this build lacks.
func compareDSA(context.Context, kernels.CompareOptions) (*kernels.CompareReport, error) {
	return nil, gpuBuilt()
}
