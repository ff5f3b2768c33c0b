//go:build cuda

package kernels

/*
#cgo LDFLAGS: -lcuda
#include <cuda.h>

static CUresult set_max_dynamic_smem(CUfunction f, int bytes) {
	return cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"unsafe"

	"gorgonia.org/cu"
)

func versionString(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }

// Devices lists the CUDA devices with the driver and NVRTC versions. An
// error means the driver could not be asked at all; a missing NVRTC is
// reported per device in NVRTCError.
func Devices() ([]DeviceInfo, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("kernels: listing CUDA devices: %v", err)
	}
	nvrtc, nverr := loadNVRTC()
	driver := versionString(cu.Version())
	var out []DeviceInfo
	for i := 0; i < n; i++ {
		info, err := deviceInfo(i)
		if err != nil {
			return nil, err
		}
		info.Driver = driver
		info.NVRTC = nvrtc
		if nverr != nil {
			info.NVRTCError = nverr.Error()
		}
		out = append(out, info)
	}
	return out, nil
}

func deviceInfo(i int) (DeviceInfo, error) {
	dev, err := cu.GetDevice(i)
	if err != nil {
		return DeviceInfo{}, fmt.Errorf("kernels: device %d: %v", i, err)
	}
	name, err := dev.Name()
	if err != nil {
		return DeviceInfo{}, fmt.Errorf("kernels: device %d name: %v", i, err)
	}
	major, minor, err := dev.ComputeCapability()
	if err != nil {
		return DeviceInfo{}, fmt.Errorf("kernels: device %d compute capability: %v", i, err)
	}
	mem, err := dev.TotalMem()
	if err != nil {
		return DeviceInfo{}, fmt.Errorf("kernels: device %d memory: %v", i, err)
	}
	attrs, err := dev.Attributes(cu.MultiprocessorCount, cu.L2CacheSize)
	if err != nil {
		return DeviceInfo{}, fmt.Errorf("kernels: device %d attributes: %v", i, err)
	}
	return DeviceInfo{
		Index: i, Name: name, Major: major, Minor: minor, Arch: archFor(major, minor),
		MemoryBytes: mem, SMs: attrs[0], L2Bytes: attrs[1],
	}, nil
}

// attrMaxSharedOptin is CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
// which gorgonia.org/cu does not name.
const attrMaxSharedOptin = cu.DeviceAttribute(C.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)

// device owns one CUDA context. CUDA contexts are bound to OS threads, so
// every driver call runs on one goroutine locked to its thread (DESIGN.md
// §5); other goroutines hand it closures through do.
type device struct {
	info      DeviceInfo
	dev       cu.Device
	ctx       cu.CUContext
	mod       cu.Module
	cached    bool // the module came from the disk cache
	smemOptin int
	fns       map[string]*kfunc
	// syncLaunches makes every launch synchronize and check the kernel's
	// own error, so a fault names the kernel that caused it. Timed code
	// turns it off.
	syncLaunches bool
	// forceKPT forces a logits kernel version (4 or 8 keys per thread;
	// 0: the largest that fits). Tests and benchmarks set it.
	forceKPT int
	// fp8Force forces an FP8 logits kernel version (3: mma.sync, 4: wgmma;
	// 0: the best the device has).
	fp8Force int
	// fp8NW asks version 5 for 3 consumer warpgroups instead of 4.
	fp8NW int

	jobs chan func()
	done chan struct{}
}

type kfunc struct {
	fn      cu.Function
	smemSet int // dynamic shared memory limit set so far
}

// openDevice starts the device goroutine, creates the context and loads
// the kernels.
func openDevice(ordinal int) (*device, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("kernels: no usable CUDA driver: %v", err)
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("kernels: no CUDA device %d (this machine has %d)", ordinal, n)
	}
	d := &device{jobs: make(chan func()), done: make(chan struct{}), fns: map[string]*kfunc{}, syncLaunches: true}
	started := make(chan error)
	go func() {
		// The thread stays locked for the goroutine's life and is
		// discarded with it.
		runtime.LockOSThread()
		if err := d.init(ordinal); err != nil {
			started <- err
			return
		}
		started <- nil
		for f := range d.jobs {
			f()
		}
		d.release()
		close(d.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return d, nil
}

func (d *device) init(ordinal int) error {
	info, err := deviceInfo(ordinal)
	if err != nil {
		return err
	}
	if _, err := loadNVRTC(); err != nil {
		return err
	}
	d.info = info
	d.dev, _ = cu.GetDevice(ordinal)
	if d.ctx, err = d.dev.RetainPrimaryCtx(); err != nil {
		return fmt.Errorf("kernels: creating a context on device %d (%s): %v", ordinal, info.Name, err)
	}
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		d.dev.ReleasePrimaryCtx()
		return fmt.Errorf("kernels: making the context current on device %d: %v", ordinal, err)
	}
	if d.smemOptin, err = d.dev.Attribute(attrMaxSharedOptin); err != nil {
		d.dev.ReleasePrimaryCtx()
		return fmt.Errorf("kernels: device %d shared-memory limit: %v", ordinal, err)
	}
	if d.mod, d.cached, err = loadModule(info.Arch); err != nil {
		d.dev.ReleasePrimaryCtx()
		return err
	}
	return nil
}

func (d *device) release() {
	cu.Synchronize()
	d.mod.Unload()
	d.dev.ReleasePrimaryCtx()
}

// do runs f on the device goroutine and returns its error.
func (d *device) do(f func() error) error {
	errc := make(chan error, 1)
	select {
	case d.jobs <- func() { errc <- f() }:
	case <-d.done:
		return errors.New("kernels: the GPU backend is closed")
	}
	return <-errc
}

// close stops the device goroutine and releases the context.
func (d *device) close() {
	close(d.jobs)
	<-d.done
}

// function looks a kernel up by name (once).
func (d *device) function(name string) (*kfunc, error) {
	if f, ok := d.fns[name]; ok {
		return f, nil
	}
	fn, err := d.mod.Function(name)
	if err != nil {
		return nil, fmt.Errorf("kernels: kernel %s not in the module: %v", name, err)
	}
	f := &kfunc{fn: fn, smemSet: 48 << 10}
	d.fns[name] = f
	return f, nil
}

// dims is a launch grid.
type dims [3]int

func grid1(n, block int) dims { return dims{(n + block - 1) / block, 1, 1} }

// launch starts kernel name with one 64-bit slot per argument (device
// pointers, ints, float64) and checks the launch; with syncLaunches it also
// waits for the kernel and checks how it ended. An empty grid is a no-op.
func (d *device) launch(name string, g dims, block, smem int, args ...any) error {
	if g[0] <= 0 || g[1] <= 0 || g[2] <= 0 {
		return nil
	}
	if g[1] > 65535 || g[2] > 65535 {
		return fmt.Errorf("kernels: %s: grid %v exceeds 65535 in y or z", name, g)
	}
	f, err := d.function(name)
	if err != nil {
		return err
	}
	if smem > f.smemSet {
		if smem > d.smemOptin {
			return fmt.Errorf("kernels: %s needs %d bytes of shared memory; %s allows %d per block (head dim or head count too large for this kernel version)",
				name, smem, d.info.Name, d.smemOptin)
		}
		fp := *(*C.CUfunction)(unsafe.Pointer(&f.fn))
		if r := C.set_max_dynamic_smem(fp, C.int(smem)); r != C.CUDA_SUCCESS {
			return fmt.Errorf("kernels: %s: raising the shared-memory limit to %d bytes failed (CUresult %d)", name, smem, int(r))
		}
		f.smemSet = smem
	}
	vals := make([]uint64, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case buffer:
			vals[i] = uint64(v.p)
		case cu.DevicePtr:
			vals[i] = uint64(v)
		case int:
			vals[i] = uint64(int64(v))
		case int64:
			vals[i] = uint64(v)
		case bool:
			if v {
				vals[i] = 1
			}
		case float64:
			vals[i] = math.Float64bits(v)
		case nil:
			vals[i] = 0
		default:
			return fmt.Errorf("kernels: %s: argument %d has unsupported type %T", name, i, a)
		}
	}
	ptrs := make([]unsafe.Pointer, len(vals))
	for i := range vals {
		ptrs[i] = unsafe.Pointer(&vals[i])
	}
	if err := f.fn.Launch(g[0], g[1], g[2], block, 1, 1, smem, cu.Stream{}, ptrs); err != nil {
		return fmt.Errorf("kernels: launching %s (grid %v, block %d, %d B shared memory): %v", name, g, block, smem, err)
	}
	if d.syncLaunches {
		if err := cu.Synchronize(); err != nil {
			return fmt.Errorf("kernels: kernel %s failed: %v", name, err)
		}
	}
	return nil
}

// buffer is one device allocation.
type buffer struct {
	p     cu.DevicePtr
	bytes int64
}

// arena tracks the allocations of one Run so that they are freed together.
type arena struct {
	d    *device
	bufs []buffer
}

const mib = 1 << 20

func (a *arena) alloc(bytes int64, what string) (buffer, error) {
	if bytes <= 0 {
		bytes = 16
	}
	p, err := cu.MemAlloc(bytes)
	if err != nil {
		free, total, _ := cu.MemInfo()
		if errors.Is(err, cu.OutOfMemory) {
			return buffer{}, fmt.Errorf("kernels: out of GPU memory allocating %d MiB for %s (%d MiB free of %d MiB)",
				bytes/mib, what, free/mib, total/mib)
		}
		return buffer{}, fmt.Errorf("kernels: allocating %d MiB for %s: %v", bytes/mib, what, err)
	}
	b := buffer{p: p, bytes: bytes}
	a.bufs = append(a.bufs, b)
	return b, nil
}

func (a *arena) free() {
	for _, b := range slices.Backward(a.bufs) {
		cu.MemFree(b.p)
	}
	a.bufs = nil
}

// upload copies s to the start of b.
func upload[T any](b buffer, s []T) error {
	if len(s) == 0 {
		return nil
	}
	n := int64(len(s)) * int64(unsafe.Sizeof(s[0]))
	if n > b.bytes {
		return fmt.Errorf("kernels: internal: upload of %d bytes into a %d-byte buffer", n, b.bytes)
	}
	if err := cu.MemcpyHtoD(b.p, unsafe.Pointer(&s[0]), n); err != nil {
		return fmt.Errorf("kernels: copying %d bytes to the GPU: %v", n, err)
	}
	return nil
}

// download fills s from the start of b.
func download[T any](s []T, b buffer) error {
	if len(s) == 0 {
		return nil
	}
	n := int64(len(s)) * int64(unsafe.Sizeof(s[0]))
	if n > b.bytes {
		return fmt.Errorf("kernels: internal: download of %d bytes from a %d-byte buffer", n, b.bytes)
	}
	if err := cu.MemcpyDtoH(unsafe.Pointer(&s[0]), b.p, n); err != nil {
		return fmt.Errorf("kernels: copying %d bytes from the GPU: %v", n, err)
	}
	return nil
}

// poison fills b with the 32-bit pattern v, so that an element no kernel
// wrote stands out: 0xFFFFFFFF is −1 as an index and NaN as a float or
// double; 0x7FFFFFFF is a NaN whose score key is the largest, so an
// unwritten logit would be selected first.
func poison(b buffer, v uint32) error {
	if err := cu.MemsetD32(b.p, uint32(v), b.bytes/4); err != nil {
		return fmt.Errorf("kernels: memset: %v", err)
	}
	return nil
}

// timeEvents runs f warm times, then reps times, each between two CUDA
// events on the default stream, and returns the milliseconds of each
// timed run. Launches inside f are not synchronized one by one.
func (d *device) timeEvents(warm, reps int, f func() error) ([]float64, error) {
	saved := d.syncLaunches
	d.syncLaunches = false
	defer func() { d.syncLaunches = saved }()
	for i := 0; i < warm; i++ {
		if err := f(); err != nil {
			return nil, err
		}
	}
	if err := cu.Synchronize(); err != nil {
		return nil, fmt.Errorf("kernels: warm-up failed: %v", err)
	}
	start, err := cu.MakeEvent(cu.DefaultEvent)
	if err != nil {
		return nil, fmt.Errorf("kernels: creating an event: %v", err)
	}
	defer cu.DestroyEvent(&start)
	end, err := cu.MakeEvent(cu.DefaultEvent)
	if err != nil {
		return nil, fmt.Errorf("kernels: creating an event: %v", err)
	}
	defer cu.DestroyEvent(&end)
	ms := make([]float64, reps)
	for i := range ms {
		if err := start.Record(cu.Stream{}); err != nil {
			return nil, fmt.Errorf("kernels: recording an event: %v", err)
		}
		if err := f(); err != nil {
			return nil, err
		}
		if err := end.Record(cu.Stream{}); err != nil {
			return nil, fmt.Errorf("kernels: recording an event: %v", err)
		}
		if err := end.Synchronize(); err != nil {
			return nil, fmt.Errorf("kernels: timed run failed: %v", err)
		}
		if ms[i], err = start.Elapsed(end); err != nil {
			return nil, fmt.Errorf("kernels: reading an event timer: %v", err)
		}
	}
	return ms, nil
}
