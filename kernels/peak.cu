// peak.cu — the card's measured FP8 tensor-core rate, the ceiling that
// `misabench kernel` compares the logits kernels with (as the measured copy
// bandwidth is the ceiling for the memory-bound stages).
//
// Two warpgroups per CTA, two CTAs per SM; each warpgroup issues back to back
// wgmma.m64n128k32 e4m3 (the logits kernels' instruction) on operands that
// stay in shared memory (128-byte swizzle, the logits kernels' layout),
// accumulating in registers, with at most two commit groups in flight.
// Nothing is read from or written to global memory but one float per thread.
//
// FLOPs: gridDim.x · 2 warpgroups · iters · 4 · (64 · 128 · 32 · 2).
// Bytes: 4 per thread (the result, so the work cannot be elided).
// Uses fp8logits.cu's wgmma wrappers (files are concatenated in name order).

extern "C" __global__ void __launch_bounds__(256, 2) fp8_mma_peak(i64 iters, float* __restrict__ out) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    extern __shared__ __align__(1024) unsigned char pksm[];
    unsigned char* base = pksm + ((1024 - ((u32)__cvta_generic_to_shared(pksm) & 1023)) & 1023);
    // A: one 64 × 128-byte tile per warpgroup; B: 128 × 128 bytes, shared.
    for (int i = threadIdx.x; i < (2 * 8192 + 16384) / 16; i += blockDim.x)
        ((uint4*)base)[i] = make_uint4(0x38383838u, 0x38383838u, 0x38383838u, 0x38383838u);  // e4m3 1.0
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
    const int wg = threadIdx.x >> 7;
    const unsigned char* A = base + wg * 8192;
    const unsigned char* B = base + 16384;
    float acc[64];
#pragma unroll
    for (int j = 0; j < 64; ++j) acc[j] = 0.f;
    f8w_fence();
    for (i64 it = 0; it < iters; ++it) {
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) f8w_mma<128>(acc, f8s_desc<1>(A + kk * 32), f8s_desc<1>(B + kk * 32), 1);
#ifdef F8W_ENABLED
        asm volatile("wgmma.commit_group.sync.aligned;\nwgmma.wait_group.sync.aligned 1;\n" ::: "memory");
#endif
    }
    f8w_commit_wait();
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < 64; ++j) s += acc[j];
    out[(i64)blockIdx.x * blockDim.x + threadIdx.x] = s;
#else
    __trap();
#endif
}
