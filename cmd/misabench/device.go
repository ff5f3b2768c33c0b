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
