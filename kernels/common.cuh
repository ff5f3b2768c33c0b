// common.cuh — helpers shared by every kernel family. The Go side prepends
// this file to the .cu files and hands NVRTC one translation unit, so no
// file here includes another and none includes a system header.
//
// Arithmetic contract (DESIGN.md §1, indexer/cpu.go): the CPU reference
// computes ReLU(q·k) with a fused multiply-add chain over the head dimension
// in ascending order (its AVX2 tile), and everything else — head sums,
// router dots, block scores — with separately rounded multiplies and adds
// in a fixed order. The kernels reproduce those orders with the intrinsics
// below, so that on the same inputs they produce the same bits; NVRTC's
// default --fmad=true never fuses an explicit __fmul_rn/__fadd_rn pair.
//
// Every kernel parameter is 8 bytes wide (pointers, i64, double): the Go
// launcher passes each argument as one 64-bit slot.

typedef long long i64;
typedef unsigned int u32;
typedef unsigned long long u64;

#define POS_INF __int_as_float(0x7f800000)

// score_key maps an fp32 score to a uint32 whose unsigned order is the
// score's order (−0 and +0 map to the same key), as indexer.rankKey does.
__device__ __forceinline__ u32 score_key(float f) {
    u32 b = __float_as_uint(f);
    if ((b << 1) == 0u) b = 0u;
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ float relu(float v) { return v > 0.f ? v : 0.f; }

// The module is compiled for the device's own architecture, so kernels that
// need a newer one than the device has compile to a trap there instead of
// failing the whole module: the FP8 paths need 8.9 (FP8 conversions and
// MMA), the wgmma paths sm_90a. The Go side never launches them on such a
// device, so the exact backend works on any card NVRTC targets.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define ON_SM90A(...) __VA_ARGS__
#else
#define ON_SM90A(...) __trap()
#endif
#if __CUDA_ARCH__ >= 890
#define ON_SM89(...) __VA_ARGS__
#else
#define ON_SM89(...) __trap()
#endif

// dot_fma: Σ_x a[x]·b[x], one fused multiply-add per term, x ascending.
// ReLU(dot_fma) is the CPU's ReLU(q·k).
__device__ __forceinline__ float dot_fma(const float* a, const float* b, int d) {
    float s = 0.f;
    for (int x = 0; x < d; ++x) s = fmaf(a[x], b[x], s);
    return s;
}

// dot_plain: the same sum with a rounded multiply and a rounded add per
// term, as Go's portable loops compute it (indexer.reluDot).
__device__ __forceinline__ float dot_plain(const float* a, const float* b, int d) {
    float s = 0.f;
    for (int x = 0; x < d; ++x) s = __fadd_rn(s, __fmul_rn(a[x], b[x]));
    return s;
}

__device__ __forceinline__ u32 warp_inclusive_scan(u32 v) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        u32 n = __shfl_up_sync(0xffffffffu, v, o);
        if (lane >= o) v += n;
    }
    return v;
}

// block_exclusive_scan returns the exclusive prefix sum of v over the block
// (blockDim.x a multiple of 32, at most 1024) and sets *total. sh holds 33
// words of shared memory. Every thread of the block must call it.
__device__ u32 block_exclusive_scan(u32 v, u32* total, u32* sh) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const u32 inc = warp_inclusive_scan(v);
    if (lane == 31) sh[wid] = inc;
    __syncthreads();
    if (wid == 0) {
        const u32 t = lane < nw ? sh[lane] : 0u;
        const u32 ti = warp_inclusive_scan(t);
        if (lane < nw) sh[lane] = ti - t;
        if (lane == 31) sh[32] = ti;
    }
    __syncthreads();
    const u32 res = sh[wid] + inc - v;
    *total = sh[32];
    __syncthreads();
    return res;
}
