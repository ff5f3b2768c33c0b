//go:build !cuda

package main

import (
	"fmt"
	"io"

	"github.com/misabench/misabench/indexer"
)

// cudaBuild reports whether this binary was built with the cuda tag.
const cudaBuild = false

// newBackend returns the backend for a --device value. This build has no
// GPU backend: gpu is refused, auto falls back to the CPU with a notice.
func newBackend(device string, workers int, stderr io.Writer) (indexer.Backend, error) {
	d, err := parseDevice(device)
	if err != nil {
		return nil, err
	}
	switch d {
	case "gpu":
		return nil, usageErrorf("this misabench was built without CUDA (build with `make build-cuda`)")
	case "auto":
		fmt.Fprintln(stderr, "misabench: --device auto: built without CUDA, using the CPU backend")
	}
	return indexer.NewCPU(workers), nil
}
