// fp8logits.cu — index logits from FP8 (E4M3) q and k on the tensor cores,
// the input contract of DeepGEMM's fp8_mqa_logits (research/kernels.md §1.1):
//
//   out[m, s] = ks[s] · Σ_{h < HEADS} w[m, h] · ReLU(q8[m, h] · k8[s])
//
// for every key s of the CTA's range [0, max ke of its rows); the caller's
// top-k reads only s < ke[m]. q's per-(row, head) scale is folded into w, as
// DeepSeek's indexer does. DSA calls it with all H heads; MISA with each
// row's routed heads gathered into a [M][h][128] tensor (fp8route.cu).
// Version 12's body also has a filtering form (FT, fp8select.cu) that keeps
// only the keys whose logit reaches a per-row threshold instead of storing.
//
// FLOPs: 2·HEADS·128 per (row, key): 1.10e12 for DSA at 1024 rows × 65536
//   keys × 64 heads, 1.37e11 for MISA h = 8.
// Bytes (floor): K N·132 (8.7 MB at 65536), Q M·HEADS·128, w M·HEADS·4, the
//   fp32 logits M·L·4 written once (268 MB at 1024 × 65536). Each CTA re-reads
//   its key range from L2.
//
// Version 3 (NOTES.md): mma.sync m16n8k32 e4m3 (the pre-wgmma tensor-core
// path). Keys are the M operand and (query, head) pairs the N operand, as in
// DeepGEMM: a CTA holds 128/HEADS queries × HEADS heads = 128 columns of Q
// in shared memory for its whole life and streams 128-key tiles of K through
// a 3-stage cp.async pipeline. 8 warps: 4 key groups of 32 × 2 column halves
// of 64; each warp issues 2 × 8 MMAs per 32-byte k-step from ldmatrix
// fragments (rows padded to 144 bytes: conflict-free). The epilogue applies
// ReLU·w in registers, sums a query's heads across n-tiles and the 4-lane
// quad, scales by ks and stores straight to global memory.

#define F8_D 128
#define F8_ROWB 144
#define F8_STAGES 3
#define F8_THREADS 256

__device__ __forceinline__ void f8_cp_async16(void* smem, const void* gmem, int srcBytes) {
    const u32 s = (u32)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(srcBytes));
}
__device__ __forceinline__ void f8_cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void f8_cp_wait1() { asm volatile("cp.async.wait_group 1;\n" ::); }

__device__ __forceinline__ void f8_ldsm_x4(u32& r0, u32& r1, u32& r2, u32& r3, const void* p) {
    const u32 s = (u32)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(s));
}

__device__ __forceinline__ void f8_mma(float* c, const u32* a, u32 b0, u32 b1) {
#if __CUDA_ARCH__ >= 890
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    __trap();  // FP8 MMA needs sm_89 or newer; the Go side refuses older cards
#endif
}

// COLS = QB·HEADS columns (8 … 128). CH column halves of 64 (1 when COLS ≤ 64),
// KG = 8 / CH key groups of 32 keys, TILE = 32·KG keys per stage; each warp
// owns NTW n-tiles of 8 columns. Decode (one query per sequence) uses
// QB = 1; prefill packs QB = 128 / HEADS queries per CTA.
template <int HEADS, int QB>
__device__ __forceinline__ void fp8_logits_body(
    const unsigned char* __restrict__ q8, const unsigned char* __restrict__ k8,
    const float* __restrict__ ks, const float* __restrict__ w, const int* __restrict__ ke,
    i64 M, i64 keysPerSplit, i64 ld, i64 rowsPerSeq, i64 seqKeys, const int* __restrict__ kidx, i64 kidxLd,
    float* __restrict__ out) {
    constexpr int COLS = QB * HEADS;
    constexpr int CH = COLS >= 64 ? COLS / 64 : 1;
    constexpr int NTW = COLS / (8 * CH);    // n-tiles per warp
    constexpr int KG = 8 / CH;
    constexpr int TILE = 32 * KG;
    constexpr int NTQ = HEADS / 8;          // n-tiles per query
    constexpr int QPW = NTW / NTQ;          // queries per warp
    extern __shared__ __align__(128) unsigned char f8smem[];
    unsigned char* Qs = f8smem;                 // [COLS][ROWB]
    unsigned char* Ks = Qs + COLS * F8_ROWB;    // [STAGES][TILE][ROWB]

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int kg = warp % KG, nh = warp / KG;
    const i64 m0 = (i64)blockIdx.x * QB;
    if (m0 >= M) return;
    const int nq = (int)min((i64)QB, M - m0);
    // Rows of one CTA share one sequence's keys: rowsPerSeq 0 means every
    // row sees the same K (prefill); 1 gives each row its own (decode).
    if (rowsPerSeq > 0) {
        const i64 seq = m0 / rowsPerSeq;
        k8 += seq * seqKeys * F8_D;
        ks += seq * seqKeys;
    }
    i64 kmax = 0;
    for (int r = 0; r < nq; ++r) kmax = max(kmax, (i64)ke[m0 + r]);
    const i64 s0 = (i64)blockIdx.y * keysPerSplit;
    if (s0 >= kmax) return;
    const i64 s1 = min(s0 + keysPerSplit, kmax);
    const int ntiles = (int)((s1 - s0 + TILE - 1) / TILE);

    // Q: column c is (query c / HEADS, head c % HEADS); queries past M are
    // zero-filled.
    for (int c = tid; c < COLS * 8; c += F8_THREADS) {
        const int row = c >> 3, ch = c & 7, r = row / HEADS;
        const unsigned char* src = q8 + ((m0 + min(r, nq - 1)) * HEADS + row % HEADS) * F8_D + ch * 16;
        f8_cp_async16(Qs + row * F8_ROWB + ch * 16, src, r < nq ? 16 : 0);
    }
    // With kidx (QB = 1 only), key slot s of row m0 is key kidx[m0, s] and
    // its logit is written at that key's column: MISA† re-ranks its stage-1
    // candidates, HISA its blocks' tokens, and topk_rows reads them back
    // through the same candidate list.
    const int* kx = kidx ? kidx + m0 * kidxLd : (const int*)0;
    auto loadK = [&](int t) {
        const i64 base = s0 + (i64)t * TILE;
        unsigned char* dst = Ks + (t % F8_STAGES) * TILE * F8_ROWB;
        for (int c = tid; c < TILE * 8; c += F8_THREADS) {
            const int row = c >> 3, ch = c & 7;
            const i64 s = base + row;
            const bool ok = s < s1;
            const i64 key = ok ? (kx ? (i64)kx[s] : s) : 0;
            f8_cp_async16(dst + row * F8_ROWB + ch * 16, k8 + key * F8_D + ch * 16, ok ? 16 : 0);
        }
    };

    float wr[NTW][2];
#pragma unroll
    for (int j = 0; j < NTW; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const int col = 64 * nh + 8 * j + 2 * (lane & 3) + e, r = col / HEADS;
            wr[j][e] = r < nq ? w[(m0 + r) * HEADS + col % HEADS] : 0.f;
        }

    // Prologue: group 0 holds Q and tile 0, group 1 tile 1.
#pragma unroll
    for (int st = 0; st < F8_STAGES - 1; ++st) {
        if (st < ntiles) loadK(st);
        f8_cp_commit();
    }
    for (int t = 0; t < ntiles; ++t) {
        f8_cp_wait1();
        __syncthreads();  // tile t visible to all; the slot of tile t-1 is free
        if (t + F8_STAGES - 1 < ntiles) loadK(t + F8_STAGES - 1);
        f8_cp_commit();

        const unsigned char* Kt = Ks + (t % F8_STAGES) * TILE * F8_ROWB;
        float acc[2][NTW][4];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
            for (int j = 0; j < NTW; ++j)
#pragma unroll
                for (int e = 0; e < 4; ++e) acc[mt][j][e] = 0.f;
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
            u32 a[2][4];
#pragma unroll
            for (int mt = 0; mt < 2; ++mt)
                f8_ldsm_x4(a[mt][0], a[mt][1], a[mt][2], a[mt][3],
                           Kt + (32 * kg + 16 * mt + (lane & 15)) * F8_ROWB + kk * 32 + (lane >> 4) * 16);
            if constexpr (NTW == 1) {
                // x4 over one n-tile: matrices 2 and 3 repeat 0 and 1.
                u32 b0, b1, b2, b3;
                f8_ldsm_x4(b0, b1, b2, b3,
                           Qs + (64 * nh + (lane & 7)) * F8_ROWB + kk * 32 + ((lane >> 3) & 1) * 16);
#pragma unroll
                for (int mt = 0; mt < 2; ++mt) f8_mma(acc[mt][0], a[mt], b0, b1);
            } else {
#pragma unroll
                for (int p = 0; p < NTW / 2; ++p) {
                    u32 b0, b1, b2, b3;
                    f8_ldsm_x4(b0, b1, b2, b3,
                               Qs + (64 * nh + 16 * p + ((lane >> 4) << 3) + (lane & 7)) * F8_ROWB + kk * 32 +
                                   ((lane >> 3) & 1) * 16);
#pragma unroll
                    for (int mt = 0; mt < 2; ++mt) {
                        f8_mma(acc[mt][2 * p], a[mt], b0, b1);
                        f8_mma(acc[mt][2 * p + 1], a[mt], b2, b3);
                    }
                }
            }
        }

        const i64 tb = s0 + (i64)t * TILE + 32 * kg;
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
            for (int hr = 0; hr < 2; ++hr) {
                const i64 s = tb + 16 * mt + 8 * hr + (lane >> 2);
                float part[QPW];
#pragma unroll
                for (int qi = 0; qi < QPW; ++qi) part[qi] = 0.f;
#pragma unroll
                for (int j = 0; j < NTW; ++j)
                    part[j / NTQ] += wr[j][0] * relu(acc[mt][j][2 * hr]) + wr[j][1] * relu(acc[mt][j][2 * hr + 1]);
#pragma unroll
                for (int qi = 0; qi < QPW; ++qi) {
                    part[qi] += __shfl_xor_sync(0xffffffffu, part[qi], 1);
                    part[qi] += __shfl_xor_sync(0xffffffffu, part[qi], 2);
                }
                if (s < s1) {
                    const i64 key = kx ? (i64)kx[s] : s;
                    const float sc = ks[key];
#pragma unroll
                    for (int qi = 0; qi < QPW; ++qi) {
                        const int r = nh * QPW + qi;
                        if ((qi & 3) == (lane & 3) && r < nq) out[(m0 + r) * ld + key] = part[qi] * sc;
                    }
                }
            }
    }
}

#define F8_LOGITS(H, QB)                                                                                 \
    extern "C" __global__ void __launch_bounds__(F8_THREADS) fp8_logits_h##H##_q##QB(                  \
        const unsigned char* q8, const unsigned char* k8, const float* ks, const float* w, const int* ke, \
        i64 M, i64 keysPerSplit, i64 ld, i64 rowsPerSeq, i64 seqKeys, const int* kidx, i64 kidxLd,      \
        float* out) {                                                                                    \
        ON_SM89(fp8_logits_body<H, QB>(q8, k8, ks, w, ke, M, keysPerSplit, ld, rowsPerSeq, seqKeys, kidx, \
                                       kidxLd, out));                                                    \
    }
// prefill: 128 columns per CTA
F8_LOGITS(8, 16)
F8_LOGITS(16, 8)
F8_LOGITS(32, 4)
F8_LOGITS(64, 2)
// decode, and re-ranking gathered candidates (kidx): one query per CTA
F8_LOGITS(8, 1)
F8_LOGITS(16, 1)
F8_LOGITS(32, 1)
F8_LOGITS(64, 1)

// ---- version 4: wgmma (sm_90a) ----------------------------------------------
//
// Same contract and tiling idea, on Hopper's warpgroup MMA: each of the two
// warpgroups of a CTA multiplies 64 keys × COLS columns × 32 bytes per
// wgmma.m64nNk32 straight from shared memory (K and Q stored as 8×16-byte
// core matrices, no swizzle: LBO 128 B along K, SBO 1024 B per 8 rows),
// four k-steps per 128-byte head dimension, a 4-stage cp.async pipeline
// and the weights in shared memory so the 64 accumulators fit 128 registers
// (2 CTAs per SM). The epilogue is version 3's.

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define F8W_ENABLED 1
#endif

// The m64nNk32 wrappers spell out N/2 accumulator operands each; they were
// generated mechanically (one instruction, five widths).
#ifdef F8W_ENABLED
__device__ __forceinline__ void wg_mma_n8(float* d, u64 da, u64 db, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %6, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e4m3 "
        "{%0, %1, %2, %3}, %4, %5, p, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "l"(da), "l"(db), "r"(acc));
}

__device__ __forceinline__ void wg_mma_n16(float* d, u64 da, u64 db, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n16k32.f32.e4m3.e4m3 "
        "{%0, %1, %2, %3, %4, %5, %6, %7}, %8, %9, p, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
        : "l"(da), "l"(db), "r"(acc));
}

__device__ __forceinline__ void wg_mma_n32(float* d, u64 da, u64 db, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k32.f32.e4m3.e4m3 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "l"(da), "l"(db), "r"(acc));
}

__device__ __forceinline__ void wg_mma_n64(float* d, u64 da, u64 db, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(da), "l"(db), "r"(acc));
}

__device__ __forceinline__ void wg_mma_n128(float* d, u64 da, u64 db, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(da), "l"(db), "r"(acc));
}


#endif

__device__ __forceinline__ u64 f8w_desc(const void* p) {
    const u32 a = (u32)__cvta_generic_to_shared(p);
    return (u64)((a & 0x3FFFF) >> 4) | ((u64)(128 >> 4) << 16) | ((u64)(1024 >> 4) << 32);
}

template <int N>
__device__ __forceinline__ void f8w_mma(float* d, u64 da, u64 db, int acc) {
#ifdef F8W_ENABLED
    if constexpr (N == 8) wg_mma_n8(d, da, db, acc);
    else if constexpr (N == 16) wg_mma_n16(d, da, db, acc);
    else if constexpr (N == 32) wg_mma_n32(d, da, db, acc);
    else if constexpr (N == 64) wg_mma_n64(d, da, db, acc);
    else wg_mma_n128(d, da, db, acc);
#else
    __trap();  // the Go side launches version 4 only on sm_90a
#endif
}

__device__ __forceinline__ void f8w_fence() {
#ifdef F8W_ENABLED
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void f8w_commit_wait() {
#ifdef F8W_ENABLED
    asm volatile("wgmma.commit_group.sync.aligned;\nwgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#endif
}

#define F8W_STAGES 4
#define F8W_TILE 128

template <int HEADS, int QB>
__device__ __forceinline__ void fp8w_logits_body(
    const unsigned char* __restrict__ q8, const unsigned char* __restrict__ k8,
    const float* __restrict__ ks, const float* __restrict__ w, const int* __restrict__ ke,
    i64 M, i64 keysPerSplit, i64 ld, i64 rowsPerSeq, i64 seqKeys, const int* __restrict__ kidx, i64 kidxLd,
    float* __restrict__ out) {
    constexpr int COLS = QB * HEADS;  // wgmma N
    constexpr int NT = COLS / 8;      // n-tiles per thread
    constexpr int NTQ = HEADS / 8;    // n-tiles per query
    extern __shared__ __align__(128) unsigned char f8wsm[];
    unsigned char* Qs = f8wsm;                               // COLS × 128 B
    unsigned char* Ks = Qs + COLS * 128;                     // STAGES × TILE × 128 B
    float* Ws = (float*)(Ks + F8W_STAGES * F8W_TILE * 128);  // COLS

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2, w4 = warp & 3;
    const i64 m0 = (i64)blockIdx.x * QB;
    if (m0 >= M) return;
    const int nq = (int)min((i64)QB, M - m0);
    if (rowsPerSeq > 0) {
        const i64 seq = m0 / rowsPerSeq;
        k8 += seq * seqKeys * F8_D;
        ks += seq * seqKeys;
    }
    i64 kmax = 0;
    for (int r = 0; r < nq; ++r) kmax = max(kmax, (i64)ke[m0 + r]);
    const i64 s0 = (i64)blockIdx.y * keysPerSplit;
    if (s0 >= kmax) return;
    const i64 s1 = min(s0 + keysPerSplit, kmax);
    const int ntiles = (int)((s1 - s0 + F8W_TILE - 1) / F8W_TILE);
    const int* kx = kidx ? kidx + m0 * kidxLd : (const int*)0;

    // Chunk c of a tile is 16 bytes of core matrix c >> 3, row c & 7: a warp
    // fills four whole core matrices (512 contiguous bytes).
    for (int c = tid; c < COLS * 8; c += F8_THREADS) {
        const int cm = c >> 3, row = (cm >> 3) * 8 + (c & 7), ch = cm & 7, r = row / HEADS;
        const unsigned char* src = q8 + ((m0 + min(r, nq - 1)) * HEADS + row % HEADS) * F8_D + ch * 16;
        f8_cp_async16(Qs + c * 16, src, r < nq ? 16 : 0);
    }
    for (int c = tid; c < COLS; c += F8_THREADS) {
        const int r = c / HEADS;
        Ws[c] = r < nq ? w[(m0 + r) * HEADS + c % HEADS] : 0.f;
    }
    auto loadK = [&](int t) {
        const i64 base = s0 + (i64)t * F8W_TILE;
        unsigned char* dst = Ks + (t % F8W_STAGES) * F8W_TILE * 128;
        for (int c = tid; c < F8W_TILE * 8; c += F8_THREADS) {
            const int cm = c >> 3, row = (cm >> 3) * 8 + (c & 7), ch = cm & 7;
            const i64 s = base + row;
            const bool ok = s < s1;
            const i64 key = ok ? (kx ? (i64)kx[s] : s) : 0;
            f8_cp_async16(dst + c * 16, k8 + key * F8_D + ch * 16, ok ? 16 : 0);
        }
    };
#pragma unroll
    for (int st = 0; st < F8W_STAGES - 1; ++st) {
        if (st < ntiles) loadK(st);
        f8_cp_commit();
    }
    for (int t = 0; t < ntiles; ++t) {
        asm volatile("cp.async.wait_group %0;\n" ::"n"(F8W_STAGES - 2));
        // cp.async wrote through the generic proxy; wgmma reads through the
        // async proxy.
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();
        if (t + F8W_STAGES - 1 < ntiles) loadK(t + F8W_STAGES - 1);
        f8_cp_commit();

        const unsigned char* Kt = Ks + (t % F8W_STAGES) * F8W_TILE * 128 + wg * 64 * 128;
        float acc[NT * 4];
        f8w_fence();
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) f8w_mma<COLS>(acc, f8w_desc(Kt + kk * 256), f8w_desc(Qs + kk * 256), kk);
        f8w_commit_wait();

        const i64 tb = s0 + (i64)t * F8W_TILE + 64 * wg + 16 * w4;
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
            const i64 s = tb + 8 * hr + (lane >> 2);
            float part[QB];
#pragma unroll
            for (int qi = 0; qi < QB; ++qi) part[qi] = 0.f;
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                const int c0 = 8 * j + 2 * (lane & 3);
                part[j / NTQ] += Ws[c0] * relu(acc[4 * j + 2 * hr]) + Ws[c0 + 1] * relu(acc[4 * j + 2 * hr + 1]);
            }
#pragma unroll
            for (int qi = 0; qi < QB; ++qi) {
                part[qi] += __shfl_xor_sync(0xffffffffu, part[qi], 1);
                part[qi] += __shfl_xor_sync(0xffffffffu, part[qi], 2);
            }
            if (s < s1) {
                const i64 key = kx ? (i64)kx[s] : s;
                const float sc = ks[key];
#pragma unroll
                for (int qi = 0; qi < QB; ++qi)
                    if ((qi & 3) == (lane & 3) && qi < nq) out[(m0 + qi) * ld + key] = part[qi] * sc;
            }
        }
    }
}

#define F8W_LOGITS(H, QB)                                                                                \
    extern "C" __global__ void __launch_bounds__(F8_THREADS, 2) fp8w_logits_h##H##_q##QB(               \
        const unsigned char* q8, const unsigned char* k8, const float* ks, const float* w, const int* ke, \
        i64 M, i64 keysPerSplit, i64 ld, i64 rowsPerSeq, i64 seqKeys, const int* kidx, i64 kidxLd,      \
        float* out) {                                                                                    \
        ON_SM90A(fp8w_logits_body<H, QB>(q8, k8, ks, w, ke, M, keysPerSplit, ld, rowsPerSeq, seqKeys,    \
                                         kidx, kidxLd, out));                                            \
    }
F8W_LOGITS(8, 16)
F8W_LOGITS(16, 8)
F8W_LOGITS(32, 4)
F8W_LOGITS(64, 2)
F8W_LOGITS(8, 1)
F8W_LOGITS(16, 1)
F8W_LOGITS(32, 1)
F8W_LOGITS(64, 1)

// ---- version 5: warp-specialised wgmma (sm_90a) ----------------------------
//
// Version 4 lock-steps its two warpgroups with a CTA barrier per tile, so
// every warpgroup runs its epilogue while the tensor cores idle. Here one
// producer warp streams 64-key tiles through an 8-stage ring (cp.async,
// completion tracked by an mbarrier per stage) and NW consumer warpgroups
// take tiles round-robin, each on its own: wait for the tile, four wgmma,
// release the stage, then the ReLU·w·head-sum epilogue with the weights in
// registers while the other warpgroups' MMAs run (DeepGEMM's arrangement,
// research/kernels.md §1.2, without TMA: the tiles are written by cp.async
// into the core-matrix layout, which needs no swizzle).

#define F8X_STAGES 8
#define F8X_KT 64  // keys per tile (one warpgroup's M)

__device__ __forceinline__ void f8x_mbar_init(u64* bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"((u32)__cvta_generic_to_shared(bar)), "r"(count));
}
__device__ __forceinline__ void f8x_mbar_wait(u64* bar, u32 parity) {
    asm volatile(
        "{\n.reg .pred P1;\nF8X_WAIT:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
        "@P1 bra F8X_DONE;\nbra F8X_WAIT;\nF8X_DONE:\n}\n" ::"r"((u32)__cvta_generic_to_shared(bar)),
        "r"(parity));
}
__device__ __forceinline__ void f8x_mbar_arrive(u64* bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"((u32)__cvta_generic_to_shared(bar)) : "memory");
}
// Arrives on bar once every cp.async this thread issued so far has landed.
__device__ __forceinline__ void f8x_cp_arrive(u64* bar) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"((u32)__cvta_generic_to_shared(bar)) : "memory");
}

template <int HEADS, int QB, int NW>
__device__ __forceinline__ void fp8x_logits_body(
    const unsigned char* __restrict__ q8, const unsigned char* __restrict__ k8,
    const float* __restrict__ ks, const float* __restrict__ w, const int* __restrict__ ke,
    i64 M, i64 keysPerSplit, i64 ld, i64 rowsPerSeq, i64 seqKeys, const int* __restrict__ kidx, i64 kidxLd,
    float* __restrict__ out) {
    constexpr int COLS = QB * HEADS;
    constexpr int NT = COLS / 8;
    constexpr int NTQ = HEADS / 8;
    extern __shared__ __align__(128) unsigned char f8xsm[];
    u64* full = (u64*)f8xsm;                   // [STAGES]
    u64* empty = full + F8X_STAGES;            // [STAGES]
    u64* qfull = empty + F8X_STAGES;           // [1]
    unsigned char* Qs = f8xsm + 256;           // COLS × 128 B
    unsigned char* Ks = Qs + COLS * 128;       // STAGES × KT × 128 B

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const i64 m0 = (i64)blockIdx.x * QB;
    if (m0 >= M) return;
    const int nq = (int)min((i64)QB, M - m0);
    if (rowsPerSeq > 0) {
        const i64 seq = m0 / rowsPerSeq;
        k8 += seq * seqKeys * F8_D;
        ks += seq * seqKeys;
    }
    i64 kmax = 0;
    for (int r = 0; r < nq; ++r) kmax = max(kmax, (i64)ke[m0 + r]);
    const i64 s0 = (i64)blockIdx.y * keysPerSplit;
    if (s0 >= kmax) return;
    const i64 s1 = min(s0 + keysPerSplit, kmax);
    const int ntiles = (int)((s1 - s0 + F8X_KT - 1) / F8X_KT);
    const int* kx = kidx ? kidx + m0 * kidxLd : (const int*)0;

    if (tid == 0) {
        for (int st = 0; st < F8X_STAGES; ++st) {
            f8x_mbar_init(&full[st], 32);  // the producer warp's lanes
            f8x_mbar_init(&empty[st], 4);  // one lane per warp of the consuming warpgroup
        }
        f8x_mbar_init(qfull, 32);
    }
    __syncthreads();

    if (warp == 4 * NW) {
        // Producer warp.
        for (int c = lane; c < COLS * 8; c += 32) {
            const int cm = c >> 3, row = (cm >> 3) * 8 + (c & 7), ch = cm & 7, r = row / HEADS;
            const unsigned char* src = q8 + ((m0 + min(r, nq - 1)) * HEADS + row % HEADS) * F8_D + ch * 16;
            f8_cp_async16(Qs + c * 16, src, r < nq ? 16 : 0);
        }
        f8x_cp_arrive(qfull);
        for (int t = 0; t < ntiles; ++t) {
            const int st = t % F8X_STAGES, u = t / F8X_STAGES;
            if (u > 0) f8x_mbar_wait(&empty[st], (u - 1) & 1);
            const i64 base = s0 + (i64)t * F8X_KT;
            unsigned char* dst = Ks + st * F8X_KT * 128;
#pragma unroll 4
            for (int c = lane; c < F8X_KT * 8; c += 32) {
                const int cm = c >> 3, row = (cm >> 3) * 8 + (c & 7), ch = cm & 7;
                const i64 s = base + row;
                const bool ok = s < s1;
                const i64 key = ok ? (kx ? (i64)kx[s] : s) : 0;
                f8_cp_async16(dst + c * 16, k8 + key * F8_D + ch * 16, ok ? 16 : 0);
            }
            f8x_cp_arrive(&full[st]);
        }
        return;
    }

    // Consumer warpgroup g takes tiles g, g + NW, ...
    const int g = warp >> 2, w4 = warp & 3;
    float wr[NT][2];
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const int col = 8 * j + 2 * (lane & 3) + e, r = col / HEADS;
            wr[j][e] = r < nq ? w[(m0 + r) * HEADS + col % HEADS] : 0.f;
        }
    f8x_mbar_wait(qfull, 0);
    for (int t = g; t < ntiles; t += NW) {
        const int st = t % F8X_STAGES, u = t / F8X_STAGES;
        f8x_mbar_wait(&full[st], u & 1);
        // The tile was written through the generic proxy (cp.async); wgmma
        // reads it through the async proxy.
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        const unsigned char* Kt = Ks + st * F8X_KT * 128;
        float acc[NT * 4];
        f8w_fence();
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) f8w_mma<COLS>(acc, f8w_desc(Kt + kk * 256), f8w_desc(Qs + kk * 256), kk);
        f8w_commit_wait();
        __syncwarp();
        if (lane == 0) f8x_mbar_arrive(&empty[st]);

        const i64 tb = s0 + (i64)t * F8X_KT + 16 * w4;
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
            const i64 s = tb + 8 * hr + (lane >> 2);
            float part[QB];
#pragma unroll
            for (int qi = 0; qi < QB; ++qi) part[qi] = 0.f;
#pragma unroll
            for (int j = 0; j < NT; ++j)
                part[j / NTQ] += wr[j][0] * relu(acc[4 * j + 2 * hr]) + wr[j][1] * relu(acc[4 * j + 2 * hr + 1]);
#pragma unroll
            for (int qi = 0; qi < QB; ++qi) {
                part[qi] += __shfl_xor_sync(0xffffffffu, part[qi], 1);
                part[qi] += __shfl_xor_sync(0xffffffffu, part[qi], 2);
            }
            if (s < s1) {
                const i64 key = kx ? (i64)kx[s] : s;
                const float sc = ks[key];
#pragma unroll
                for (int qi = 0; qi < QB; ++qi)
                    if ((qi & 3) == (lane & 3) && qi < nq) out[(m0 + qi) * ld + key] = part[qi] * sc;
            }
        }
    }
}

#define F8X_LOGITS(H, QB, NW)                                                                            \
    extern "C" __global__ void __launch_bounds__(128 * NW + 32, 1) fp8x_logits_h##H##_q##QB##_w##NW(    \
        const unsigned char* q8, const unsigned char* k8, const float* ks, const float* w, const int* ke, \
        i64 M, i64 keysPerSplit, i64 ld, i64 rowsPerSeq, i64 seqKeys, const int* kidx, i64 kidxLd,      \
        float* out) {                                                                                    \
        ON_SM90A(fp8x_logits_body<H, QB, NW>(q8, k8, ks, w, ke, M, keysPerSplit, ld, rowsPerSeq, seqKeys, \
                                             kidx, kidxLd, out));                                        \
    }
F8X_LOGITS(64, 2, 3)
F8X_LOGITS(64, 2, 4)
F8X_LOGITS(32, 4, 3)
F8X_LOGITS(32, 4, 4)
F8X_LOGITS(16, 8, 4)
F8X_LOGITS(8, 16, 3)
F8X_LOGITS(8, 16, 4)
F8X_LOGITS(8, 1, 4)
F8X_LOGITS(16, 1, 4)
F8X_LOGITS(32, 1, 4)
F8X_LOGITS(64, 1, 4)

// ---- version 6: self-loading warpgroups, 128-byte swizzle (sm_90a) ---------
//
// Versions 4 and 5 spend ~2 400 SM cycles per tile against ~500 of tensor
// work (NOTES.md): v4's CTA barrier lock-steps its two warpgroups, so each
// tile is a serial chain (barrier, MMA, wait, epilogue with a global ks
// load), and v5's lone producer warp cannot issue the copies fast enough.
// Here every warpgroup streams its own 64-key tiles (g, g + 2, …) through its
// own S-stage cp.async ring, synchronised by a named barrier of its 128
// threads only, so the two warpgroups of a CTA — and the two CTAs of an SM —
// drift apart and one's epilogue runs under another's MMAs. Each stage holds
// the tile's 64 key scales too (no global load in the epilogue). With SW the
// tiles (and Q) are stored in wgmma's 128-byte-swizzle layout (chunk c of row
// r at r·128 + ((c ^ r&7)·16)), which makes every warp's copy four whole
// 128-byte rows; without it, v4's core-matrix layout.
//
// FLOPs and bytes: as above (the same contract).

#define F8S_STAGES 5
#define F8S_KT 64

template <int SW>
__device__ __forceinline__ u64 f8s_desc(const void* p) {
    const u32 a = (u32)__cvta_generic_to_shared(p);
    if constexpr (SW) {
        // K-major, 128-byte swizzle: LBO unused (1), SBO = 8 rows × 128 B.
        return (u64)((a & 0x3FFFF) >> 4) | ((u64)1 << 16) | ((u64)(1024 >> 4) << 32) | ((u64)1 << 62);
    } else {
        return (u64)((a & 0x3FFFF) >> 4) | ((u64)(128 >> 4) << 16) | ((u64)(1024 >> 4) << 32);
    }
}

// Byte offset of 16-byte chunk ch of row r in a tile of 128-byte rows.
template <int SW>
__device__ __forceinline__ int f8s_off(int r, int ch) {
    if constexpr (SW) return r * 128 + ((ch ^ (r & 7)) << 4);
    else return (r >> 3) * 1024 + ch * 128 + (r & 7) * 16;
}

__device__ __forceinline__ void f8s_cp_async4(void* smem, const void* gmem, int srcBytes) {
    const u32 s = (u32)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(gmem), "r"(srcBytes));
}

// f8s_perm: version 12's key order inside a 16-row group (rows r and r + 8
// hold keys 2r and 2r + 1).
__device__ __forceinline__ int f8s_perm(int r) { return ((r & 7) << 1) | (r >> 3); }

// Version 7 (PERM): the Q rows are placed so that each thread's accumulator
// columns (8j + 2·(lane&3) + e) belong to the fewest queries: lane l holds
// queries l, l+4, … with all their heads when QB ≥ 4, or 1/(4/QB) of one
// query's heads when QB < 4. Column n ↔ (query, head) by f8s_col below. The
// head sums then need no shuffles for QB ≥ 4 (one or two otherwise), and
// each store instruction writes 8 keys × min(4, QB) queries.
template <int HEADS, int QB>
__device__ __forceinline__ void f8s_col(int n, int& q, int& h) {
    constexpr int NT2 = QB * HEADS / 4;  // columns a lane holds
    const int l = (n >> 1) & 3, idx = ((n >> 3) << 1) | (n & 1);
    if constexpr (QB >= 4) {
        q = 4 * (idx / HEADS) + l;
        h = idx % HEADS;
    } else {
        q = l % QB;
        h = idx + NT2 * (l / QB);
    }
}

// f8f_params: fp8select.cu's filter. Instead of storing row m's logits, the
// kernel appends the (float bits, key) pairs of the keys s < ke[m] whose
// logit is not below thr[m] to region (m·gridDim.y + blockIdx.y)·64 +
// warp·8 + lane/4 of pairs (capReg entries each: every lane group of every
// warp of every split has its own; the count, which may exceed capReg, goes
// to counts at the same index).
struct f8f_params {
    const float* thr;
    uint2* pairs;
    int* counts;
    i64 capReg;
};

template <int HEADS, int QB, int SW, int PERM, bool NS = false, bool FT = false>
__device__ __forceinline__ void fp8s_logits_body(
    const unsigned char* __restrict__ q8, const unsigned char* __restrict__ k8,
    const float* __restrict__ ks, const float* __restrict__ w, const int* __restrict__ ke,
    i64 M, i64 keysPerSplit, i64 ld, i64 rowsPerSeq, i64 seqKeys, const int* __restrict__ kidx, i64 kidxLd,
    float* __restrict__ out, f8f_params fp = {}) {
    static_assert(!FT || PERM == 3, "the filter is version 12's epilogue");
    constexpr int COLS = QB * HEADS;  // wgmma N
    constexpr int NT = COLS / 8;      // n-tiles per thread
    constexpr int NTQ = HEADS / 8;    // n-tiles per query
    constexpr int TB = F8S_KT * 128;  // bytes of a key tile
    // NS (benchmark diagnostic): compute every logit, store none — the cost
    // of writing them. The values go into sink, stored only if it equals
    // FLT_MAX, so the compiler cannot drop the epilogue.
    float sink = 0.f;
    extern __shared__ __align__(1024) unsigned char f8ssm[];
    // Swizzled tiles need 1024-byte alignment; the launcher adds the slack.
    unsigned char* base = f8ssm + ((1024 - ((u32)__cvta_generic_to_shared(f8ssm) & 1023)) & 1023);
    unsigned char* Qs = base;                                     // COLS × 128 B
    unsigned char* Ks = Qs + COLS * 128;                          // [2][STAGES] tiles
    float* Kss = (float*)(Ks + 2 * F8S_STAGES * TB);              // [2][STAGES][KT] key scales
    float* Ws = Kss + 2 * F8S_STAGES * F8S_KT;                    // COLS

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2, w4 = warp & 3;
    const int gt = tid & 127;  // thread within the warpgroup
    const i64 m0 = (i64)blockIdx.x * QB;
    if (m0 >= M) return;
    const int nq = (int)min((i64)QB, M - m0);
    if (rowsPerSeq > 0) {
        const i64 seq = m0 / rowsPerSeq;
        k8 += seq * seqKeys * F8_D;
        ks += seq * seqKeys;
    }
    i64 kmax = 0;
    for (int r = 0; r < nq; ++r) kmax = max(kmax, (i64)ke[m0 + r]);
    const i64 s0 = (i64)blockIdx.y * keysPerSplit;
    if constexpr (FT) {
        if (s0 >= kmax) {  // every lane's regions of this split are empty
            for (int i = tid; i < nq * 64; i += F8_THREADS)
                fp.counts[((m0 + i / 64) * gridDim.y + blockIdx.y) * 64 + i % 64] = 0;
            return;
        }
    }
    if (s0 >= kmax) return;
    const i64 s1 = min(s0 + keysPerSplit, kmax);
    // FT: the thresholds, key ends and survivor counts of the lane's queries
    // (those of its accumulator columns; see the filter below), in registers.
    constexpr int FQ = QB >= 4 ? QB / 4 : 1;
    float fthr[FQ];
    int fend[FQ];
    u32 fcnt[FQ];
    // FT: the lane's region index within a query's row of regions:
    // (split, warp, lane >> 2), 64 a split; the region of its first query
    // (fbase) and the distance to the next one's (fstep entries, QB ≥ 4).
    const i64 freg = ((i64)blockIdx.y * 8 + warp) * 8 + (lane >> 2);
    uint2* fbase = nullptr;
    u32 fstep = 0u, fcap = 0u;
    if constexpr (FT) {
        fbase = fp.pairs + ((m0 + (lane & 3)) * (i64)gridDim.y * 64 + freg) * fp.capReg;
        fstep = 4u * gridDim.y * 64u * (u32)fp.capReg;
        fcap = (u32)fp.capReg;
#pragma unroll
        for (int t = 0; t < FQ; ++t) {
            const int qi = QB >= 4 ? 4 * t + (lane & 3) : (lane & 3);
            const bool live = (QB >= 4 || (lane & 3) < QB) && qi < nq;
            fthr[t] = live ? fp.thr[m0 + qi] : 0.f;
            fend[t] = live ? (int)min(s1, (i64)ke[m0 + qi]) : 0;
            fcnt[t] = 0u;
        }
    }
    const int ntiles = (int)((s1 - s0 + F8S_KT - 1) / F8S_KT);
    const int* kx = kidx ? kidx + m0 * kidxLd : (const int*)0;
    // v12's paired stores need 8-byte aligned rows (the pair's first key is even).
    const bool pair = (ld & 1) == 0 && (((unsigned long long)out) & 7) == 0;

    // Smem row (B column) n holds query r, head hd.
    auto colOf = [](int n, int& r, int& hd) {
        if constexpr (PERM) f8s_col<HEADS, QB>(n, r, hd);
        else r = n / HEADS, hd = n % HEADS;
    };
    for (int c = tid; c < COLS * 8; c += F8_THREADS) {
        const int row = c >> 3, ch = c & 7;
        int r, hd;
        colOf(row, r, hd);
        const unsigned char* src = q8 + ((m0 + min(r, nq - 1)) * HEADS + hd) * F8_D + ch * 16;
        f8_cp_async16(Qs + f8s_off<SW>(row, ch), src, r < nq ? 16 : 0);
    }
    f8_cp_commit();
    for (int c = tid; c < COLS; c += F8_THREADS) {
        int r, hd;
        colOf(c, r, hd);
        Ws[c] = r < nq ? w[(m0 + r) * HEADS + hd] : 0.f;
    }
    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();

    // This warpgroup's i-th tile is tile wg + 2i of the CTA's range.
    const int mine = (ntiles - wg + 1) / 2;
    unsigned char* myK = Ks + wg * F8S_STAGES * TB;
    float* myS = Kss + wg * F8S_STAGES * F8S_KT;
    // Version 8 (PERM 2): a thread's four 16-byte chunks of every tile are
    // rows lrow + 16u, chunk lch; their swizzled smem offsets differ by u·2048
    // only, and their sources by whole tiles, so the copy needs one pointer
    // increment per tile instead of 64-bit index arithmetic per chunk.
    const int lrow = gt >> 3, lch = gt & 7;
    const int soff = lrow * 128 + ((lch ^ (lrow & 7)) << 4);
    // Version 12 (PERM 3): smem row 16u + r holds key 16u + f8s_perm(r), so
    // the two rows a thread's accumulators cover (r and r + 8) are adjacent
    // keys and its stores pair up.
    const int lkey = PERM == 3 ? f8s_perm(lrow) : lrow;
    const unsigned char* kbase = k8 + (s0 + (i64)wg * F8S_KT + lkey) * F8_D + lch * 16;
    auto load = [&](int i) {
        const i64 tb = s0 + (i64)(wg + 2 * i) * F8S_KT;
        unsigned char* dst = myK + (i % F8S_STAGES) * TB;
        if (PERM >= 2 && SW && !kx) {
            const unsigned char* src = kbase + (i64)i * (2 * F8S_KT * F8_D);
            const i64 rem = s1 - tb;
#pragma unroll
            for (int u = 0; u < 4; ++u) {
                const bool ok = lkey + 16 * u < rem;
                f8_cp_async16(dst + soff + u * 2048, ok ? src + u * 2048 : k8, ok ? 16 : 0);
            }
            if (gt < F8S_KT) {
                const bool ok = gt < rem;
                f8s_cp_async4(myS + (i % F8S_STAGES) * F8S_KT + gt, ok ? ks + tb + gt : ks, ok ? 4 : 0);
            }
            return;
        }
#pragma unroll
        for (int c = gt; c < F8S_KT * 8; c += 128) {
            const int row = c >> 3, ch = c & 7;
            const i64 s = tb + (PERM == 3 ? (row & ~15) | f8s_perm(row & 15) : row);
            const bool ok = s < s1;
            const i64 key = ok ? (kx ? (i64)kx[s] : s) : 0;
            f8_cp_async16(dst + f8s_off<SW>(row, ch), k8 + key * F8_D + ch * 16, ok ? 16 : 0);
        }
        if (gt < F8S_KT) {
            const i64 s = tb + gt;
            const bool ok = s < s1;
            const i64 key = ok ? (kx ? (i64)kx[s] : s) : 0;
            f8s_cp_async4(myS + (i % F8S_STAGES) * F8S_KT + gt, ks + key, ok ? 4 : 0);
        }
    };
#pragma unroll
    for (int st = 0; st < F8S_STAGES - 1; ++st) {
        if (st < mine) load(st);
        f8_cp_commit();
    }
    for (int i = 0; i < mine; ++i) {
        asm volatile("cp.async.wait_group %0;\n" ::"n"(F8S_STAGES - 2) : "memory");
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        // Only this warpgroup's threads wrote (and will overwrite) its ring.
        asm volatile("bar.sync %0, 128;\n" ::"r"(1 + wg) : "memory");
        if (i + F8S_STAGES - 1 < mine) load(i + F8S_STAGES - 1);
        f8_cp_commit();

        const int st = i % F8S_STAGES;
        const unsigned char* Kt = myK + st * TB;
        float acc[NT * 4];
        f8w_fence();
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
            f8w_mma<COLS>(acc, f8s_desc<SW>(Kt + kk * (SW ? 32 : 256)), f8s_desc<SW>(Qs + kk * (SW ? 32 : 256)), kk);
        f8w_commit_wait();

        const i64 tb = s0 + (i64)(wg + 2 * i) * F8S_KT;
        if constexpr (PERM) {
            constexpr int QPL = QB >= 4 ? QB / 4 : 1;  // queries a lane holds
            constexpr int NT2 = 2 * NT;
            const int l = lane & 3;
            float pv[2][QPL];  // v12: both row halves' sums, stored together
#pragma unroll
            for (int hr = 0; hr < 2; ++hr) {
                const int row = 16 * w4 + 8 * hr + (lane >> 2);
                const i64 s = tb + row;
                float part[QPL];
#pragma unroll
                for (int t = 0; t < QPL; ++t) part[t] = 0.f;
                if constexpr (PERM >= 2) {
                    // Two fused chains per query (even and odd n-tiles): two
                    // instructions per accumulator, ReLU and FFMA.
                    float odd[QPL];
#pragma unroll
                    for (int t = 0; t < QPL; ++t) odd[t] = 0.f;
#pragma unroll
                    for (int j = 0; j < NT; ++j) {
                        const float2 wv = *(const float2*)&Ws[8 * j + 2 * l];
                        float& p = (j & 1) ? odd[(2 * j) * QPL / NT2] : part[(2 * j) * QPL / NT2];
                        p = fmaf(wv.x, relu(acc[4 * j + 2 * hr]), p);
                        p = fmaf(wv.y, relu(acc[4 * j + 2 * hr + 1]), p);
                    }
#pragma unroll
                    for (int t = 0; t < QPL; ++t) part[t] += odd[t];
                } else {
#pragma unroll
                    for (int j = 0; j < NT; ++j) {
                        const float2 wv = *(const float2*)&Ws[8 * j + 2 * l];
                        part[(2 * j) * QPL / NT2] += wv.x * relu(acc[4 * j + 2 * hr]) + wv.y * relu(acc[4 * j + 2 * hr + 1]);
                    }
                }
                if constexpr (QB < 4) {
#pragma unroll
                    for (int mask = QB; mask < 4; mask <<= 1)
                        part[0] += __shfl_xor_sync(0xffffffffu, part[0], mask);
                }
                if constexpr (PERM == 3) {
#pragma unroll
                    for (int t = 0; t < QPL; ++t) pv[hr][t] = part[t];
                } else if (s < s1) {
                    const i64 key = kx ? (i64)kx[s] : s;
                    const float sc = myS[st * F8S_KT + row];
#pragma unroll
                    for (int t = 0; t < QPL; ++t) {
                        const int qi = QB >= 4 ? 4 * t + l : l;
                        if constexpr (NS) sink += part[t] * sc;
                        else if ((QB >= 4 || l < QB) && qi < nq) out[(m0 + qi) * ld + key] = part[t] * sc;
                    }
                }
            }
            if constexpr (FT) {
                // The filter (fp8select.cu): keys ko and ko + 1 of query qi
                // survive when below its key end and not below its
                // threshold. Each lane appends to its own region of the
                // query's split (a slot is the lane's own count: no ballots
                // or atomics, about as many instructions as the stores).
                const int ko = 16 * w4 + 2 * (lane >> 2);
                const int sa = (int)(tb + ko);
                const float sca = myS[st * F8S_KT + ko], scb = myS[st * F8S_KT + ko + 1];
#pragma unroll
                for (int t = 0; t < QPL; ++t) {
                    // Straight-line, predicated: a branch per query cost
                    // more than the stores it skips (NOTES.md).
                    const float va = pv[0][t] * sca, vb = pv[1][t] * scb;
                    const bool ka = sa < fend[t] && !(va < fthr[t]);
                    const bool kb = sa + 1 < fend[t] && !(vb < fthr[t]);
                    uint2* reg = fbase + t * fstep;
                    const u32 c0 = fcnt[t], c1 = c0 + (u32)ka;
                    if (ka && c0 < fcap) reg[c0] = make_uint2(__float_as_uint(va), (u32)sa);
                    if (kb && c1 < fcap) reg[c1] = make_uint2(__float_as_uint(vb), (u32)(sa + 1));
                    fcnt[t] = c1 + (u32)kb;
                }
            } else if constexpr (PERM == 3) {
                // Keys ko and ko + 1 of the tile: one 8-byte store a query
                // where the row allows it.
                const int ko = 16 * w4 + 2 * (lane >> 2);
                const i64 sa = tb + ko;
                if (sa < s1) {
                    const bool two = sa + 1 < s1;
                    const float sca = myS[st * F8S_KT + ko], scb = myS[st * F8S_KT + ko + 1];
#pragma unroll
                    for (int t = 0; t < QPL; ++t) {
                        const int qi = QB >= 4 ? 4 * t + l : l;
                        const float a = pv[0][t] * sca, b = pv[1][t] * scb;
                        if constexpr (NS) {
                            sink += a + b;
                        } else if ((QB >= 4 || l < QB) && qi < nq) {
                            float* o = out + (m0 + qi) * ld;
                            if (kx) {
                                o[kx[sa]] = a;
                                if (two) o[kx[sa + 1]] = b;
                            } else if (two && pair) {
                                *(float2*)(o + sa) = make_float2(a, b);
                            } else {
                                o[sa] = a;
                                if (two) o[sa + 1] = b;
                            }
                        }
                    }
                }
            }
        } else {
#pragma unroll
            for (int hr = 0; hr < 2; ++hr) {
                const int row = 16 * w4 + 8 * hr + (lane >> 2);
                const i64 s = tb + row;
                float part[QB];
#pragma unroll
                for (int qi = 0; qi < QB; ++qi) part[qi] = 0.f;
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    const int c0 = 8 * j + 2 * (lane & 3);
                    part[j / NTQ] += Ws[c0] * relu(acc[4 * j + 2 * hr]) + Ws[c0 + 1] * relu(acc[4 * j + 2 * hr + 1]);
                }
#pragma unroll
                for (int qi = 0; qi < QB; ++qi) {
                    part[qi] += __shfl_xor_sync(0xffffffffu, part[qi], 1);
                    part[qi] += __shfl_xor_sync(0xffffffffu, part[qi], 2);
                }
                if (s < s1) {
                    const i64 key = kx ? (i64)kx[s] : s;
                    const float sc = myS[st * F8S_KT + row];
#pragma unroll
                    for (int qi = 0; qi < QB; ++qi) {
                        if constexpr (NS) sink += part[qi] * sc;
                        else if ((qi & 3) == (lane & 3) && qi < nq) out[(m0 + qi) * ld + key] = part[qi] * sc;
                    }
                }
            }
        }
    }
    if constexpr (NS) {
        if (sink == 3.402823466e38f) out[0] = sink;
    }
    if constexpr (FT) {
#pragma unroll
        for (int t = 0; t < FQ; ++t) {
            const int qi = QB >= 4 ? 4 * t + (lane & 3) : (lane & 3);
            if ((QB >= 4 || (lane & 3) < QB) && qi < nq) fp.counts[(m0 + qi) * (i64)gridDim.y * 64 + freg] = (int)fcnt[t];
        }
    }
}

#define F8S_LOGITS_PN(H, QB, SW, P, NS, NAME)                                                            \
    extern "C" __global__ void __launch_bounds__(F8_THREADS, 2) NAME(                                    \
        const unsigned char* q8, const unsigned char* k8, const float* ks, const float* w, const int* ke, \
        i64 M, i64 keysPerSplit, i64 ld, i64 rowsPerSeq, i64 seqKeys, const int* kidx, i64 kidxLd,      \
        float* out) {                                                                                    \
        ON_SM90A(fp8s_logits_body<H, QB, SW, P, NS>(q8, k8, ks, w, ke, M, keysPerSplit, ld, rowsPerSeq,  \
                                                    seqKeys, kidx, kidxLd, out));                        \
    }
#define F8S_LOGITS_P(H, QB, SW, P, NAME) F8S_LOGITS_PN(H, QB, SW, P, false, NAME)
#define F8S_LOGITS(H, QB, SW) F8S_LOGITS_P(H, QB, SW, 0, fp8s_logits_h##H##_q##QB##_sw##SW)
#define F8P_LOGITS(H, QB) F8S_LOGITS_P(H, QB, 1, 1, fp8p_logits_h##H##_q##QB)
#define F8Q_LOGITS(H, QB) F8S_LOGITS_P(H, QB, 1, 2, fp8q_logits_h##H##_q##QB)
#define F8R_LOGITS(H, QB) F8S_LOGITS_P(H, QB, 1, 3, fp8r_logits_h##H##_q##QB)
// The no-store diagnostics (BenchmarkFP8Logits' v8nostore, v12nostore).
#define F8D_LOGITS(H, QB, P, NAME) F8S_LOGITS_PN(H, QB, 1, P, true, NAME)
F8S_LOGITS(8, 16, 1)
F8S_LOGITS(16, 8, 1)
F8S_LOGITS(32, 4, 1)
F8S_LOGITS(64, 2, 1)
F8S_LOGITS(8, 1, 1)
F8S_LOGITS(16, 1, 1)
F8S_LOGITS(32, 1, 1)
F8S_LOGITS(64, 1, 1)
F8S_LOGITS(8, 16, 0)
F8S_LOGITS(16, 8, 0)
F8S_LOGITS(32, 4, 0)
F8S_LOGITS(64, 2, 0)
F8S_LOGITS(8, 1, 0)
F8S_LOGITS(16, 1, 0)
F8S_LOGITS(32, 1, 0)
F8S_LOGITS(64, 1, 0)
F8P_LOGITS(8, 16)
F8P_LOGITS(16, 8)
F8P_LOGITS(32, 4)
F8P_LOGITS(64, 2)
F8P_LOGITS(8, 1)
F8P_LOGITS(16, 1)
F8P_LOGITS(32, 1)
F8P_LOGITS(64, 1)
F8Q_LOGITS(8, 16)
F8Q_LOGITS(16, 8)
F8Q_LOGITS(32, 4)
F8Q_LOGITS(64, 2)
F8Q_LOGITS(8, 1)
F8Q_LOGITS(16, 1)
F8Q_LOGITS(32, 1)
F8Q_LOGITS(64, 1)
F8R_LOGITS(8, 16)
F8R_LOGITS(16, 8)
F8R_LOGITS(32, 4)
F8R_LOGITS(64, 2)
F8R_LOGITS(8, 1)
F8R_LOGITS(16, 1)
F8R_LOGITS(32, 1)
F8R_LOGITS(64, 1)
F8D_LOGITS(64, 2, 2, fp8qd_logits_h64_q2)
F8D_LOGITS(8, 16, 2, fp8qd_logits_h8_q16)
F8D_LOGITS(64, 2, 3, fp8rd_logits_h64_q2)
F8D_LOGITS(8, 16, 3, fp8rd_logits_h8_q16)
