// logitsbf16.cu — index logits from bf16 q and k on the tensor cores (wgmma
// m64nNk16 bf16 → f32), the same contract as fp8logits.cu without scales:
//
//   out[m, s] = Σ_{h < HEADS} w[m, h] · ReLU(q[m, h] · k[s])
//
// for every key s of the CTA's range (the caller's top-k reads s < ke[m]);
// DSA with all H heads, MISA with each row's routed heads gathered.
//
// FLOPs: 2·HEADS·128 per (row, key), as the FP8 kernels (1.10e12 for DSA at
// 1024 rows × 65536 keys × 64 heads).
// Bytes (floor): K N·256 (16.8 MB at 65536), Q M·HEADS·256, w M·HEADS·4, the
// fp32 logits M·L·4 written once (268 MB at 1024 × 65536).
//
// Layout: fp8logits.cu's version 8 (self-loading warpgroups of 64-key tiles,
// named barriers, lane-local head sums, 128-byte swizzle) with two changes for
// 2-byte elements: a 256-byte row is stored as two 128-byte swizzled panels
// (dims 0–63 and 64–127), and the eight k16 steps walk 32 bytes at a time
// through one panel then the other; two stages a warpgroup (16 KB tiles) so
// that two CTAs fit an SM. Uses fp8logits.cu's helpers (files are
// concatenated in name order).

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

__device__ __forceinline__ void wg_mma_bf16_n8(float* d, u64 da, u64 db, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %6, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3}, %4, %5, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "l"(da), "l"(db), "r"(acc));
}

__device__ __forceinline__ void wg_mma_bf16_n16(float* d, u64 da, u64 db, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7}, %8, %9, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
        : "l"(da), "l"(db), "r"(acc));
}

__device__ __forceinline__ void wg_mma_bf16_n32(float* d, u64 da, u64 db, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "l"(da), "l"(db), "r"(acc));
}

__device__ __forceinline__ void wg_mma_bf16_n64(float* d, u64 da, u64 db, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(da), "l"(db), "r"(acc));
}

__device__ __forceinline__ void wg_mma_bf16_n128(float* d, u64 da, u64 db, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(da), "l"(db), "r"(acc));
}

#endif

template <int N>
__device__ __forceinline__ void bfw_mma(float* d, u64 da, u64 db, int acc) {
#ifdef F8W_ENABLED
    if constexpr (N == 8) wg_mma_bf16_n8(d, da, db, acc);
    else if constexpr (N == 16) wg_mma_bf16_n16(d, da, db, acc);
    else if constexpr (N == 32) wg_mma_bf16_n32(d, da, db, acc);
    else if constexpr (N == 64) wg_mma_bf16_n64(d, da, db, acc);
    else wg_mma_bf16_n128(d, da, db, acc);
#else
    __trap();  // the Go side launches it only on sm_90a
#endif
}

#define BFL_STAGES 2
#define BFL_KT 64

// Byte offset of 16-byte chunk c (0..15) of row r in a tile of `rows` rows:
// panel c >> 3, swizzled chunk (c & 7) ^ (r & 7).
__device__ __forceinline__ int bfl_off(int r, int c, int rows) {
    return (c >> 3) * rows * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4);
}

template <int HEADS, int QB>
__device__ __forceinline__ void bf16_logits_body(
    const unsigned short* __restrict__ qb, const unsigned short* __restrict__ kb,
    const float* __restrict__ w, const int* __restrict__ ke, i64 M, i64 keysPerSplit, i64 ld,
    i64 rowsPerSeq, i64 seqKeys, float* __restrict__ out) {
    constexpr int COLS = QB * HEADS;
    constexpr int NT = COLS / 8;
    constexpr int TB = BFL_KT * 256;  // bytes of a key tile
    constexpr int QPL = QB >= 4 ? QB / 4 : 1;
    constexpr int NT2 = 2 * NT;
    extern __shared__ __align__(1024) unsigned char bflsm[];
    unsigned char* base = bflsm + ((1024 - ((u32)__cvta_generic_to_shared(bflsm) & 1023)) & 1023);
    unsigned char* Qs = base;                      // COLS × 256 B (two panels)
    unsigned char* Ks = Qs + COLS * 256;           // [2][STAGES] tiles
    float* Ws = (float*)(Ks + 2 * BFL_STAGES * TB);  // COLS

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2, w4 = warp & 3;
    const int gt = tid & 127;
    const i64 m0 = (i64)blockIdx.x * QB;
    if (m0 >= M) return;
    const int nq = (int)min((i64)QB, M - m0);
    const unsigned char* k8 = (const unsigned char*)kb;
    if (rowsPerSeq > 0) k8 += (m0 / rowsPerSeq) * seqKeys * 256;
    i64 kmax = 0;
    for (int r = 0; r < nq; ++r) kmax = max(kmax, (i64)ke[m0 + r]);
    const i64 s0 = (i64)blockIdx.y * keysPerSplit;
    if (s0 >= kmax) return;
    const i64 s1 = min(s0 + keysPerSplit, kmax);
    const int ntiles = (int)((s1 - s0 + BFL_KT - 1) / BFL_KT);

    const unsigned char* q8 = (const unsigned char*)qb;
    for (int c = tid; c < COLS * 16; c += F8_THREADS) {
        const int row = c >> 4, ch = c & 15;
        int r, hd;
        f8s_col<HEADS, QB>(row, r, hd);
        const unsigned char* src = q8 + ((m0 + min(r, nq - 1)) * HEADS + hd) * 256 + ch * 16;
        f8_cp_async16(Qs + bfl_off(row, ch, COLS), src, r < nq ? 16 : 0);
    }
    f8_cp_commit();
    for (int c = tid; c < COLS; c += F8_THREADS) {
        int r, hd;
        f8s_col<HEADS, QB>(c, r, hd);
        Ws[c] = r < nq ? w[(m0 + r) * HEADS + hd] : 0.f;
    }
    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();

    const int mine = (ntiles - wg + 1) / 2;
    unsigned char* myK = Ks + wg * BFL_STAGES * TB;
    // A thread's chunks of every tile: rows (gt >> 4) + 8u, chunk gt & 15.
    const int lrow = gt >> 4, lch = gt & 15;
    const unsigned char* kbase = k8 + (s0 + (i64)wg * BFL_KT + lrow) * 256 + lch * 16;
    auto load = [&](int i) {
        const i64 tb = s0 + (i64)(wg + 2 * i) * BFL_KT;
        unsigned char* dst = myK + (i % BFL_STAGES) * TB;
        const unsigned char* src = kbase + (i64)i * (2 * BFL_KT * 256);
        const int rem = (int)min(s1 - tb, (i64)BFL_KT);
#pragma unroll
        for (int u = 0; u < 8; ++u) {
            const int row = lrow + 8 * u;
            const bool ok = row < rem;
            f8_cp_async16(dst + bfl_off(row, lch, BFL_KT), ok ? src + u * 8 * 256 : k8, ok ? 16 : 0);
        }
    };
    float* orow[QPL];
#pragma unroll
    for (int t = 0; t < QPL; ++t) {
        const int qi = min(QB >= 4 ? 4 * t + (lane & 3) : (lane & 3) % QB, nq - 1);
        orow[t] = out + (m0 + qi) * ld;
    }
    if (0 < mine) load(0);
    f8_cp_commit();
    for (int i = 0; i < mine; ++i) {
        asm volatile("cp.async.wait_group 0;\n" ::: "memory");
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        asm volatile("bar.sync %0, 128;\n" ::"r"(1 + wg) : "memory");
        if (i + 1 < mine) load(i + 1);
        f8_cp_commit();

        const unsigned char* Kt = myK + (i % BFL_STAGES) * TB;
        float acc[NT * 4];
        f8w_fence();
#pragma unroll
        for (int kk = 0; kk < 8; ++kk) {
            const int off = (kk & 3) * 32;  // within the panel
            bfw_mma<COLS>(acc, f8s_desc<1>(Kt + (kk >> 2) * BFL_KT * 128 + off),
                          f8s_desc<1>(Qs + (kk >> 2) * COLS * 128 + off), kk);
        }
        f8w_commit_wait();

        const i64 tb = s0 + (i64)(wg + 2 * i) * BFL_KT;
        const int l = lane & 3;
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
            const int row = 16 * w4 + 8 * hr + (lane >> 2);
            const i64 s = tb + row;
            float pe[QPL], po[QPL];
#pragma unroll
            for (int t = 0; t < QPL; ++t) pe[t] = po[t] = 0.f;
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                const float2 wv = *(const float2*)&Ws[8 * j + 2 * l];
                float& p = (j & 1) ? po[(2 * j) * QPL / NT2] : pe[(2 * j) * QPL / NT2];
                p = fmaf(wv.x, relu(acc[4 * j + 2 * hr]), p);
                p = fmaf(wv.y, relu(acc[4 * j + 2 * hr + 1]), p);
            }
            float v[QPL];
#pragma unroll
            for (int t = 0; t < QPL; ++t) v[t] = pe[t] + po[t];
            if constexpr (QB < 4) {
#pragma unroll
                for (int mask = QB; mask < 4; mask <<= 1) v[0] += __shfl_xor_sync(0xffffffffu, v[0], mask);
            }
            if (s < s1) {
#pragma unroll
                for (int t = 0; t < QPL; ++t) {
                    const int qi = QB >= 4 ? 4 * t + l : l;
                    if ((QB >= 4 || l < QB) && qi < nq) orow[t][s] = v[t];
                }
            }
        }
    }
}

#define BF16_LOGITS(H, QB)                                                                                \
    extern "C" __global__ void __launch_bounds__(F8_THREADS, 2) bf16_logits_h##H##_q##QB(               \
        const unsigned short* qb, const unsigned short* kb, const float* w, const int* ke, i64 M,       \
        i64 keysPerSplit, i64 ld, i64 rowsPerSeq, i64 seqKeys, float* out) {                           \
        ON_SM90A(bf16_logits_body<H, QB>(qb, kb, w, ke, M, keysPerSplit, ld, rowsPerSeq, seqKeys, out)); \
    }
BF16_LOGITS(8, 16)
BF16_LOGITS(16, 8)
BF16_LOGITS(32, 4)
BF16_LOGITS(64, 2)
BF16_LOGITS(8, 1)
BF16_LOGITS(16, 1)
BF16_LOGITS(32, 1)
BF16_LOGITS(64, 1)
