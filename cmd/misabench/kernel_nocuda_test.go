//go:build !cuda

package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// Without the cuda tag, the GPU commands parse their flags (so --help
// works) and then exit 2 saying how to build with CUDA.
func TestGPUCommandsWithoutCUDA(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	const msg = "misabench: this misabench was built without CUDA (build with `make build-cuda`)\n"
	for _, a := range [][]string{
		{"kernel", "--compare-dsa", "--out", out},
		{"kernel", "--compare-dsa", "--ctx", "8k,128K", "--models", "glm-5", "--format", "json", "--out", out},
		{"devices"},
		{"devices", "--format", "json"},
	} {
		code, stdout, stderr := cli(t, a...)
		if code != exitUsage || stderr != msg || stdout != "" {
			t.Errorf("%v: code %d, stdout %q, stderr %q; want 2 and %q", a, code, stdout, stderr, msg)
		}
	}
	assertNoDir(t, out)

	for _, a := range [][]string{{"kernel", "--help"}, {"devices", "--help"}, {"help", "kernel"}} {
		code, stdout, stderr := cli(t, a...)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "make build-cuda") {
			t.Errorf("%v: code %d, stderr %q, stdout:\n%s", a, code, stderr, stdout)
		}
	}
	if _, stdout, _ := cli(t, "kernel", "--help"); !strings.Contains(stdout, "--compare-dsa") || !strings.Contains(stdout, "--hisa-blocks") {
		t.Errorf("kernel --help lacks the flags:\n%s", stdout)
	}
}
