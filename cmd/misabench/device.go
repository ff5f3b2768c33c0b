package main

import "strings"

// parseDevice checks a --device value.
func parseDevice(s string) (string, error) {
	d := strings.ToLower(strings.TrimSpace(s))
	switch d {
	case "cpu", "gpu", "auto":
		return d, nil
	case "cuda":
		return "gpu", nil
	}
	return "", usageErrorf("unknown --device %q (want cpu, gpu or auto)", s)
}

// gpuFirstDevice is the --device value of a command that runs on the GPU
// when there is one (niah, trace convert): the value given, else auto in
// a CUDA build and cpu otherwise (so that a CPU-only build says nothing).
func gpuFirstDevice(given bool, device string) string {
	if given && device != "" {
		return device
	}
	if cudaBuild {
		return "auto"
	}
	return "cpu"
}
