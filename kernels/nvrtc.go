//go:build cuda

package kernels

// NVRTC is loaded with dlopen rather than linked: linking -lnvrtc would tie
// the binary to one CUDA release's soname (DESIGN.md §5).

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

typedef int nvrtcResult;
typedef struct _nvrtcProgram* nvrtcProgram;

static void* nv_lib;
static const char* (*p_GetErrorString)(nvrtcResult);
static nvrtcResult (*p_Version)(int*, int*);
static nvrtcResult (*p_CreateProgram)(nvrtcProgram*, const char*, const char*, int, const char* const*, const char* const*);
static nvrtcResult (*p_CompileProgram)(nvrtcProgram, int, const char* const*);
static nvrtcResult (*p_GetProgramLogSize)(nvrtcProgram, size_t*);
static nvrtcResult (*p_GetProgramLog)(nvrtcProgram, char*);
static nvrtcResult (*p_GetCUBINSize)(nvrtcProgram, size_t*);
static nvrtcResult (*p_GetCUBIN)(nvrtcProgram, char*);
static nvrtcResult (*p_DestroyProgram)(nvrtcProgram*);

// nv_open loads the library at path and resolves every symbol used here.
// It returns NULL on success, else a message (valid until the next call).
static const char* nv_open(const char* path) {
	void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) return dlerror();
#define SYM(v, name) *(void**)(&v) = dlsym(h, name); if (!v) { dlclose(h); return "missing symbol " name; }
	SYM(p_GetErrorString, "nvrtcGetErrorString")
	SYM(p_Version, "nvrtcVersion")
	SYM(p_CreateProgram, "nvrtcCreateProgram")
	SYM(p_CompileProgram, "nvrtcCompileProgram")
	SYM(p_GetProgramLogSize, "nvrtcGetProgramLogSize")
	SYM(p_GetProgramLog, "nvrtcGetProgramLog")
	SYM(p_GetCUBINSize, "nvrtcGetCUBINSize")
	SYM(p_GetCUBIN, "nvrtcGetCUBIN")
	SYM(p_DestroyProgram, "nvrtcDestroyProgram")
#undef SYM
	nv_lib = h;
	return NULL;
}

static const char* nv_error(nvrtcResult r) { return p_GetErrorString(r); }
static nvrtcResult nv_version(int* major, int* minor) { return p_Version(major, minor); }

// nv_compile compiles src with opts. On return *prog holds the program (to
// be destroyed by nv_destroy) whenever the result is not the create step's.
static nvrtcResult nv_create(nvrtcProgram* prog, const char* src, const char* name) {
	return p_CreateProgram(prog, src, name, 0, NULL, NULL);
}
static nvrtcResult nv_compile(nvrtcProgram prog, int n, char** opts) {
	return p_CompileProgram(prog, n, (const char* const*)opts);
}
static nvrtcResult nv_log_size(nvrtcProgram prog, size_t* n) { return p_GetProgramLogSize(prog, n); }
static nvrtcResult nv_log(nvrtcProgram prog, char* buf) { return p_GetProgramLog(prog, buf); }
static nvrtcResult nv_cubin_size(nvrtcProgram prog, size_t* n) { return p_GetCUBINSize(prog, n); }
static nvrtcResult nv_cubin(nvrtcProgram prog, char* buf) { return p_GetCUBIN(prog, buf); }
static void nv_destroy(nvrtcProgram prog) { p_DestroyProgram(&prog); }
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"
)

// nvrtcEnv names the environment variable that points at a libnvrtc.
const nvrtcEnv = "MISABENCH_NVRTC"

var nvrtcOnce struct {
	sync.Once
	version string
	err     error
}

// loadNVRTC opens NVRTC once per process and returns its version ("13.0").
func loadNVRTC() (string, error) {
	nvrtcOnce.Do(func() {
		var names []string
		if p := os.Getenv(nvrtcEnv); p != "" {
			names = []string{p}
		} else {
			names = []string{"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"}
			for _, dir := range []string{"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"} {
				for _, n := range []string{"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"} {
					names = append(names, dir+"/"+n)
				}
			}
		}
		var why []string
		for _, n := range names {
			cs := C.CString(n)
			msg := C.nv_open(cs)
			C.free(unsafe.Pointer(cs))
			if msg == nil {
				var major, minor C.int
				if r := C.nv_version(&major, &minor); r != 0 {
					nvrtcOnce.err = fmt.Errorf("kernels: NVRTC at %s: nvrtcVersion failed: %s", n, C.GoString(C.nv_error(r)))
					return
				}
				nvrtcOnce.version = fmt.Sprintf("%d.%d", int(major), int(minor))
				return
			}
			why = append(why, C.GoString(msg))
		}
		if os.Getenv(nvrtcEnv) != "" {
			nvrtcOnce.err = fmt.Errorf("kernels: cannot load NVRTC named by %s: %s", nvrtcEnv, why[0])
			return
		}
		nvrtcOnce.err = fmt.Errorf("kernels: NVRTC not found (tried libnvrtc.so, .so.13, .so.12 and /usr/local/cuda/lib64; set %s to its path); first error: %s",
			nvrtcEnv, strings.TrimSpace(why[0]))
	})
	return nvrtcOnce.version, nvrtcOnce.err
}

// compileCUBIN compiles one CUDA C translation unit to a cubin. A compile
// error comes back with NVRTC's log.
func compileCUBIN(src, name string, opts []string) ([]byte, error) {
	if _, err := loadNVRTC(); err != nil {
		return nil, err
	}
	csrc := C.CString(src)
	defer C.free(unsafe.Pointer(csrc))
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var prog C.nvrtcProgram
	if r := C.nv_create(&prog, csrc, cname); r != 0 {
		return nil, fmt.Errorf("kernels: nvrtcCreateProgram: %s", C.GoString(C.nv_error(r)))
	}
	defer C.nv_destroy(prog)

	copts := make([]*C.char, len(opts))
	for i, o := range opts {
		copts[i] = C.CString(o)
	}
	defer func() {
		for _, p := range copts {
			C.free(unsafe.Pointer(p))
		}
	}()
	// The option array must live in C memory: it holds pointers.
	arr := (**C.char)(C.malloc(C.size_t(len(opts)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(arr))
	for i, p := range copts {
		*(**C.char)(unsafe.Add(unsafe.Pointer(arr), i*int(unsafe.Sizeof(uintptr(0))))) = p
	}
	rc := C.nv_compile(prog, C.int(len(opts)), arr)

	var logSize C.size_t
	log := ""
	if C.nv_log_size(prog, &logSize) == 0 && logSize > 1 {
		buf := C.malloc(logSize)
		if C.nv_log(prog, (*C.char)(buf)) == 0 {
			log = C.GoString((*C.char)(buf))
		}
		C.free(buf)
	}
	if rc != 0 {
		return nil, fmt.Errorf("kernels: NVRTC could not compile %s (%s) with %s:\n%s",
			name, C.GoString(C.nv_error(rc)), strings.Join(opts, " "), strings.TrimSpace(log))
	}
	var n C.size_t
	if r := C.nv_cubin_size(prog, &n); r != 0 {
		return nil, fmt.Errorf("kernels: nvrtcGetCUBINSize: %s (is the architecture a real sm_XX?)", C.GoString(C.nv_error(r)))
	}
	buf := C.malloc(n)
	defer C.free(buf)
	if r := C.nv_cubin(prog, (*C.char)(buf)); r != 0 {
		return nil, fmt.Errorf("kernels: nvrtcGetCUBIN: %s", C.GoString(C.nv_error(r)))
	}
	return C.GoBytes(buf, C.int(n)), nil
}
