//go:build cuda

package kernels

import "fmt"

// Launch code for peak.cu.

// fp8PeakIters is each warpgroup's loop count: ~2 TFLOP in all on 132 SMs,
// about a millisecond, long enough that launch costs vanish.
const fp8PeakIters = 2000

// fp8TensorPeak measures the FP8 tensor-core rate (TFLOP/s) with the
// logits kernels' wgmma shape (peak.cu): the median of 10 timed launches
// after 2 warm-ups. It needs sm_90a.
func (d *device) fp8TensorPeak() (float64, error) {
	if d.info.Arch != "sm_90a" {
		return 0, fmt.Errorf("kernels: the FP8 tensor peak needs sm_90a; %s is %s", d.info.Name, d.info.Arch)
	}
	var a arena
	defer a.free()
	grid := 2 * d.info.SMs
	out, err := a.alloc(int64(grid*256*4), "peak output")
	if err != nil {
		return 0, err
	}
	ms, err := d.timeEvents(2, 10, func() error { return d.fp8Peak(fp8PeakIters, out) })
	if err != nil {
		return 0, err
	}
	flops := float64(grid) * 2 * fp8PeakIters * 4 * (64 * 128 * 32 * 2)
	return flops / (median(ms) * 1e-3) / 1e12, nil
}

// fp8Peak launches peak.cu on 2 CTAs an SM, each thread writing into out
// (2·SMs·256 floats) the sum of its 64 accumulators: 64·128·iters with the
// all-ones operands the kernel fills in.
func (d *device) fp8Peak(iters int, out buffer) error {
	const smem = 1024 + 2*8192 + 16384
	return d.launch("fp8_mma_peak", dims{2 * d.info.SMs, 1, 1}, 256, smem, iters, out)
}
