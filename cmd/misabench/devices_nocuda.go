//go:build !cuda

package main

import "github.com/misabench/misabench/kernels"

// listDevices needs the CUDA backend, which this build lacks.
func listDevices() ([]kernels.DeviceInfo, error) { return nil, gpuBuilt() }
