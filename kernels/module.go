//go:build cuda

package kernels

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gorgonia.org/cu"
)

//go:embed common.cuh *.cu
var sources embed.FS

// programSource returns the one translation unit NVRTC compiles: common.cuh
// followed by every .cu file in name order.
func programSource() (string, error) {
	var b strings.Builder
	head, err := sources.ReadFile("common.cuh")
	if err != nil {
		return "", err
	}
	b.Write(head)
	names, err := fs.Glob(sources, "*.cu")
	if err != nil {
		return "", err
	}
	slices.Sort(names)
	for _, n := range names {
		src, err := sources.ReadFile(n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "\n// ---- %s ----\n", n)
		b.Write(src)
	}
	return b.String(), nil
}

// archFor is the NVRTC target for a compute capability: the
// architecture-specific "a" variant where one exists (sm_90a on Hopper, so
// that wgmma and TMA are available), else the plain sm_XY.
func archFor(major, minor int) string {
	a := fmt.Sprintf("sm_%d%d", major, minor)
	if major >= 9 && minor == 0 {
		a += "a"
	}
	return a
}

// compileOptions are the NVRTC flags. No fast-math: the kernels reproduce
// the CPU reference's rounding.
func compileOptions(arch string) []string {
	return []string{"--gpu-architecture=" + arch, "--std=c++17", "-lineinfo"}
}

// cacheDir is where compiled cubins are kept, or "" when the user has no
// cache directory.
func cacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "misabench", "kernels")
}

// cubinFor returns the cubin of src for arch, from the disk cache when a
// previous run compiled the same source with the same options, NVRTC
// version and architecture. fromCache says which.
func cubinFor(src, arch string) (cubin []byte, fromCache bool, err error) {
	ver, err := loadNVRTC()
	if err != nil {
		return nil, false, err
	}
	opts := compileOptions(arch)
	h := sha256.New()
	for _, part := range []string{src, strings.Join(opts, " "), arch, "nvrtc " + ver} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	key := hex.EncodeToString(h.Sum(nil))
	dir := cacheDir()
	path := ""
	if dir != "" {
		path = filepath.Join(dir, key+".cubin")
		if b, err := os.ReadFile(path); err == nil && len(b) > 4 && string(b[1:4]) == "ELF" {
			return b, true, nil
		}
	}
	cubin, err = compileCUBIN(src, "misabench_kernels.cu", opts)
	if err != nil {
		return nil, false, err
	}
	if path != "" {
		// A cache that cannot be written only costs a recompile next time.
		if os.MkdirAll(dir, 0o755) == nil {
			tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
			if os.WriteFile(tmp, cubin, 0o644) == nil {
				if os.Rename(tmp, path) != nil {
					os.Remove(tmp)
				}
			}
		}
	}
	return cubin, false, nil
}

// loadModule compiles (or fetches) the kernels for the current context's
// device and loads them. Must run on the device goroutine.
func loadModule(arch string) (cu.Module, bool, error) {
	src, err := programSource()
	if err != nil {
		return cu.Module{}, false, fmt.Errorf("kernels: embedded sources: %w", err)
	}
	cubin, cached, err := cubinFor(src, arch)
	if err != nil {
		return cu.Module{}, false, err
	}
	mod, err := cu.LoadData(string(cubin))
	if err != nil {
		return cu.Module{}, false, fmt.Errorf("kernels: loading the compiled module for %s: %v", arch, err)
	}
	return mod, cached, nil
}
