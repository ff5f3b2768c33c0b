//go:build cuda

package main

import "github.com/misabench/misabench/kernels"

// listDevices lists the CUDA devices. A driver that cannot list them (none
// installed, no device) is a usage error, like a GPU that cannot be opened.
func listDevices() ([]kernels.DeviceInfo, error) {
	devs, err := kernels.Devices()
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return devs, nil
}
