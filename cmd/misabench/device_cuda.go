//go:build cuda

package main

import (
	"fmt"
	"io"

	"github.com/misabench/misabench/indexer"
	"github.com/misabench/misabench/kernels"
)

// cudaBuild reports whether this binary was built with the cuda tag.
const cudaBuild = true

// newBackend returns the backend for a --device value: gpu opens device 0
// (an error if it cannot), auto tries it and falls back to the CPU with a
// notice. The caller closes the backend when it is an io.Closer.
func newBackend(device string, workers int, stderr io.Writer) (indexer.Backend, error) {
	d, err := parseDevice(device)
	if err != nil {
		return nil, err
	}
	switch d {
	case "gpu":
		g, err := kernels.NewGPU(0)
		if err != nil {
			return nil, usageErrorf("--device gpu: %v", err)
		}
		return g, nil
	case "auto":
		g, err := kernels.NewGPU(0)
		if err == nil {
			return g, nil
		}
		fmt.Fprintf(stderr, "misabench: --device auto: no usable GPU (%v), using the CPU backend\n", err)
	}
	return indexer.NewCPU(workers), nil
}
