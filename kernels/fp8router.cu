// fp8router.cu — MISA's pooling and pooled router on the FP8 fast path
// (DESIGN.md §1, MISA steps 1–3), in fp32 / tensor-core arithmetic. The exact
// fp32/float64 versions that the bit-exact backend uses stay in pool.cu and
// router.cu.
//
// fp8_pool_prefix: per-block inclusive prefix sums of the dequantised keys,
//   P[s][d] = Σ_{u = block start of s … s} e4m3(k8[u][d])·ks[u]   (fp32)
//   so a full block's mean is P[end]/B and a query's causal own-block mean
//   P[p_t]/(p_t − start + 1). One CTA per 64-token tile (8 warps × 8 tokens,
//   a lane holds 4 dims): a segmented scan inside the tile, then a decoupled
//   look-back (Merrill & Garland) across the tiles of a block through a small
//   scratch buffer (flags tagged with a launch epoch, so it is never cleared):
//   warp 0 publishes the tile's sum, warp 1 polls the predecessors' flags,
//   then all 8 warps read the published sums at once (one L2 round trip for
//   blocks of up to 31 tiles, B ≤ 1984; open tiles publish their inclusive
//   prefix too only for longer blocks). With qpos set ("At" mode) only the
//   rows that routing reads are stored: every block end, the last key, and
//   each query position (found by warps 2–3 during the look-back). The
//   running sums are not kept in registers: the few tiles that store rows
//   re-read their tokens from L2 and recompute them in the same order, so a
//   thread needs 32 registers and 8 CTAs share an SM (1024 tiles, 64K keys,
//   in one wave on 132 SMs; _c6 and _c4 are the same body at 6 and 4).
//   FLOPs: N·128 adds. Bytes: N·132 read; N·512 written (dense) or
//   (⌈N/B⌉ + M)·512 (At); scratch 1 KB per tile, L2-resident.
//
// fp8_route: R = 4 rows per CTA at H > 32 (8 at H ≤ 32), two warps a row:
//   r[h] = |w[h]|·qs[h]·Σ_{b ≤ own} ReLU(e4m3(q8[h])·kbar_b)
//   (qs is a power of two, so this is |w|·Σ ReLU(q·kbar) with q dequantised),
//   then the h best heads (ties to the lower head), ascending, the gathered
//   q8r [M][h][128] and wr = w·qs that fp8_logits consumes, and optionally
//   the scores. The dots run on the tensor cores (mma.sync m16n8k16, f16 in,
//   f32 accumulate): q's E4M3 values are exact in f16, and each pooled
//   column is scaled by a power of two (its largest element to [2^14, 2^15))
//   and split into hi + lo f16 halves, so the products keep ~22 bits — about
//   fp32 accuracy. The contraction order over the 128 dims is permuted
//   (the same permutation for q and kbar) so that a thread's operand bytes
//   are contiguous: thread (g, t) of a warp reads dims kp·32 + t·8 … +7.
//   Columns: the CTA's full blocks [0, maxOwn) shared by its rows, then one
//   own-block column per row; their P rows are copied to shared memory with
//   cp.async (all in flight at once), split in place, in chunks of CC. The
//   CTA's q8 rows go to shared memory by cp.async too (swizzled), and the
//   routed heads are gathered from there.
//   FLOPs: 2·2·H·128 per (row, column) (2 passes): 4.8 GFLOP at 1024 rows ×
//   64 heads × 72 columns. Bytes: q8 M·H·128 once, P rows from L2.

#define FP_TILE 64
#define FP_THREADS 256
#define FR_THREADS 256
#define FR_QBYTES 32768  // the CTA's q8: rows·H·128 = 4·64·128 or 8·32·128 bytes, at most

__device__ __forceinline__ float4 fr_add4(float4 a, float4 b) {
    return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}

// fr_e4m3x2: two E4M3 values (the low 16 bits of v, lower byte first) as f16x2.
__device__ __forceinline__ u32 fr_e4m3x2(u32 v) {
    u32 h;
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;\n" : "=r"(h) : "h"((unsigned short)(v & 0xffffu)));
    return h;
}
__device__ __forceinline__ float fr_h2f(u32 h16) {
    float f;
    asm("cvt.f32.f16 %0, %1;\n" : "=f"(f) : "h"((unsigned short)(h16 & 0xffffu)));
    return f;
}
// fr_pack: (lo, hi) rounded to f16, lo in the low half.
__device__ __forceinline__ u32 fr_pack(float lo, float hi) {
    u32 r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

__device__ __forceinline__ u32 fr_ld_acquire(const u32* p) {
    u32 v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void fr_st_release(u32* p, u32 v) {
    asm volatile("st.release.gpu.global.u32 [%0], %1;\n" ::"l"(p), "r"(v) : "memory");
}

// fr_lower_bound2: for x0 and x1, the first i in [0, n) with a[i] ≥ x (n if
// none), a sorted ascending; two 32-way searches by the whole warp whose
// loads go out together (two rounds each at n = 1024).
__device__ void fr_lower_bound2(const i64* __restrict__ a, i64 n, i64 x0, i64 x1, int lane, i64& r0, i64& r1) {
    i64 lo[2] = {0, 0}, hi[2] = {n, n};
    const i64 x[2] = {x0, x1};
    while (lo[0] < hi[0] || lo[1] < hi[1]) {
        i64 step[2];
        bool less[2];
#pragma unroll
        for (int s = 0; s < 2; ++s) {
            step[s] = (hi[s] - lo[s] + 31) / 32;
            const i64 p = lo[s] + (i64)lane * step[s];
            less[s] = lo[s] < hi[s] && p < hi[s] && a[p] < x[s];
        }
#pragma unroll
        for (int s = 0; s < 2; ++s) {
            const int c = __popc(__ballot_sync(0xffffffffu, less[s]));
            if (lo[s] >= hi[s]) continue;
            if (c == 0) {
                hi[s] = lo[s];
            } else {
                const i64 base = lo[s];
                lo[s] = base + (i64)(c - 1) * step[s] + 1;
                hi[s] = min(hi[s], base + (i64)c * step[s]);
            }
        }
    }
    r0 = lo[0];
    r1 = lo[1];
}

// fr_poll: lane l watches tile j − l until the nearest tile with an
// inclusive value (state 2) and every tile before it (open, state 1) have
// published; returns that lane (32: none within the window, all published).
__device__ int fr_poll(const u32* __restrict__ flags, i64 j, u32 ep, int lane) {
    const i64 jl = j - lane;
    for (;;) {
        u32 st = 2u;  // before tile 0: closed (never reached: tile 0 is closed)
        if (jl >= 0) {
            const u32 f = fr_ld_acquire(flags + jl);
            st = (f >> 2) == ep ? (f & 3u) : 0u;
        }
        const u32 pm = __ballot_sync(0xffffffffu, st == 2u), nr = __ballot_sync(0xffffffffu, st == 0u);
        const int first = pm ? __ffs(pm) - 1 : 32;
        const u32 need = first >= 31 ? 0xffffffffu : ((2u << first) - 1u);
        if (!(nr & need)) return first;
        __nanosleep(32);
    }
}

// fr_look_flags: the look-back of the tile after j. Returns the poll of the
// first window (tiles j … j − 31); when it holds no inclusive value (blocks
// longer than 31 tiles only), far gets the sum beyond it, walked serially.
__device__ int fr_look_flags(const u32* __restrict__ flags, const float* agg, const float* incl, i64 j, u32 ep,
                             int lane, float4& far) {
    far = make_float4(0.f, 0.f, 0.f, 0.f);
    const int first = fr_poll(flags, j, ep, lane);
    if (first < 32) return first;
    for (i64 jj = j - 32;; jj -= 32) {
        const int f = fr_poll(flags, jj, ep, lane);
        const int last = f < 32 ? f : 31;
        for (int l = 0; l <= last && jj - l >= 0; ++l)
            far = fr_add4(far, __ldcg((const float4*)((l == f ? incl : agg) + (jj - l) * 128 + lane * 4)));
        if (f < 32) return 32;
    }
}

// qpos (may be null) with M rows, sorted ascending: store only block ends,
// the last key and query rows. flags [tiles], agg and incl [tiles][128] are
// the look-back scratch; epoch (30 bits, never 0) tags this launch's flags.
__device__ __forceinline__ void fp_pool_body(const unsigned char* __restrict__ k8, const float* __restrict__ ks,
                                             i64 N, i64 B, const i64* __restrict__ qpos, i64 M, float* __restrict__ P,
                                             u32* __restrict__ flags, float* __restrict__ agg, float* __restrict__ incl,
                                             i64 epoch) {
    __shared__ float4 fp_tail[8][32];
    __shared__ int fp_reset[8];
    __shared__ float4 fp_carry[32];
    __shared__ u32 fp_mask[2];
    __shared__ int fp_first;
    const int tid = threadIdx.x, lane = tid & 31, wp = tid >> 5;
    const i64 tile = blockIdx.x, t0 = tile * FP_TILE, u0 = t0 + wp * 8;
    const u32 ep = (u32)epoch & 0x3fffffffu;

    u32 raw[8];
    float sc[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        const i64 u = u0 + j;
        raw[j] = 0u;
        sc[j] = 0.f;
        if (u < N) {
            raw[j] = __ldg((const u32*)(k8 + u * 128) + lane);
            sc[j] = __ldg(ks + u);
        }
    }
    if (tid < 2) fp_mask[tid] = 0u;

    // Segmented running sums over the thread's 8 tokens (restart at block
    // starts). The sums are not kept: the rows to store are recomputed from
    // raw and sc at the end, with the same operations in the same order,
    // which halves the registers and lets twice the CTAs share an SM.
    float4 run = make_float4(0.f, 0.f, 0.f, 0.f);
    int first = 8;     // the first block start among the 8 tokens
    u32 ends = 0u;     // tokens that end a block
    u32 starts = 0u;   // tokens that start one
    int rem = (int)(u0 % B);  // < N, and P (N·512 bytes) keeps N far below 2^31
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        const float s = sc[j];
        const u32 a = fr_e4m3x2(raw[j]), b = fr_e4m3x2(raw[j] >> 16);
        if (rem == 0) {
            run = make_float4(0.f, 0.f, 0.f, 0.f);
            starts |= 1u << j;
            if (first == 8) first = j;
        }
        run.x += fr_h2f(a) * s;
        run.y += fr_h2f(a >> 16) * s;
        run.z += fr_h2f(b) * s;
        run.w += fr_h2f(b >> 16) * s;
        if (rem == B - 1) ends |= 1u << j;
        rem = rem + 1 == B ? 0 : rem + 1;
    }
    fp_tail[wp][lane] = run;
    if (lane == 0) fp_reset[wp] = first < 8;
    __syncthreads();

    // In-tile offset of this warp's segment: the tails of the segments before
    // it, back to (and including) the nearest one that holds a block start.
    float4 off = make_float4(0.f, 0.f, 0.f, 0.f);
    bool needCarry = true;
    for (int w2 = wp - 1; w2 >= 0; --w2) {
        off = fr_add4(off, fp_tail[w2][lane]);
        if (fp_reset[w2]) {
            needCarry = false;
            break;
        }
    }
    // Warp 0 publishes the tile's tail; warp 1 polls the predecessors'
    // flags (look-back, when the tile does not start a block); in At mode
    // warps 2 and 3 find and mark the tile's query positions.
    const bool look = t0 % B != 0;
    float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
    bool closed = false;  // the tile holds a block start: its tail is an inclusive prefix
    if (wp == 0) {
        for (int w2 = 7; w2 >= 0; --w2) {
            a = fr_add4(a, fp_tail[w2][lane]);
            if (fp_reset[w2]) {
                closed = true;
                break;
            }
        }
        // The release orders the whole warp's stores (__syncwarp first).
        *(float4*)((closed ? incl : agg) + tile * 128 + lane * 4) = a;
        __syncwarp();
        if (lane == 0) fr_st_release(flags + tile, (ep << 2) | (closed ? 2u : 1u));
    } else if (wp == 1) {
        if (look) {
            float4 far;
            const int f = fr_look_flags(flags, agg, incl, tile - 1, ep, lane, far);
            fp_carry[lane] = far;
            if (lane == 0) fp_first = f;
        }
    } else if (qpos && wp <= 3) {
        // Each of the two warps finds both ends itself rather than trading
        // them through a named barrier (racecheck reported hazards after
        // one; NOTES.md).
        i64 lo, hi;
        fr_lower_bound2(qpos, M, t0, t0 + FP_TILE, lane, lo, hi);
        for (i64 i0 = lo + (tid - 64); i0 < hi; i0 += 4 * 64) {
            i64 p[4];
#pragma unroll
            for (int u = 0; u < 4; ++u) p[u] = i0 + 64 * u < hi ? qpos[i0 + 64 * u] : -1;
#pragma unroll
            for (int u = 0; u < 4; ++u)
                if (p[u] >= 0) atomicOr(&fp_mask[(p[u] - t0) >> 5], 1u << ((p[u] - t0) & 31));
        }
    }
    __syncthreads();
    float4 carry = make_float4(0.f, 0.f, 0.f, 0.f);
    if (look) {
        // All warps read the window's published values at once (warp w:
        // tiles j − w, j − w − 8, …), then sum the 8 partial sums.
        const int pf = fp_first, last = pf < 32 ? pf : 31;  // the window's inclusive tile
        float4 part = wp == 0 ? fp_carry[lane] : make_float4(0.f, 0.f, 0.f, 0.f);
        float4 x[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const int l = wp + 8 * k;
            const i64 jj = tile - 1 - l;
            x[k] = l <= last && jj >= 0 ? __ldcg((const float4*)((l == pf ? incl : agg) + jj * 128 + lane * 4))
                                        : make_float4(0.f, 0.f, 0.f, 0.f);
        }
#pragma unroll
        for (int k = 0; k < 4; ++k) part = fr_add4(part, x[k]);
        fp_tail[wp][lane] = part;  // every read of the tails is done (barrier above)
        __syncthreads();
#pragma unroll
        for (int w2 = 0; w2 < 8; ++w2) carry = fr_add4(carry, fp_tail[w2][lane]);
        // An open tile's inclusive value is read only by a look-back that
        // does not reach its block's first tile within 32 tiles: B > 31·64.
        if (wp == 0 && !closed && B > 31 * FP_TILE) {
            *(float4*)(incl + tile * 128 + lane * 4) = fr_add4(carry, a);
            __syncwarp();
            if (lane == 0) fr_st_release(flags + tile, (ep << 2) | 2u);
        }
    }

    const float4 add = needCarry ? fr_add4(off, carry) : off;
    const u32 qm = qpos ? (wp < 4 ? fp_mask[0] >> (wp * 8) : fp_mask[1] >> ((wp - 4) * 8)) : 0xffu;
    u32 st = 0u;  // the thread's tokens to store
#pragma unroll
    for (int j = 0; j < 8; ++j)
        if (u0 + j < N && (((qm | ends) >> j) & 1u || u0 + j == N - 1)) st |= 1u << j;
    if (st != 0u) {  // the same for the whole warp (lanes are dimensions)
        // The tokens again, from L2 (few tiles store anything in At mode).
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            const i64 u = u0 + j;
            raw[j] = u < N ? __ldcg((const u32*)(k8 + u * 128) + lane) : 0u;
            sc[j] = u < N ? __ldcg(ks + u) : 0.f;
        }
        float4 r = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            const float s = sc[j];
            const u32 a = fr_e4m3x2(raw[j]), b = fr_e4m3x2(raw[j] >> 16);
            if ((starts >> j) & 1u) r = make_float4(0.f, 0.f, 0.f, 0.f);
            r.x += fr_h2f(a) * s;
            r.y += fr_h2f(a >> 16) * s;
            r.z += fr_h2f(b) * s;
            r.w += fr_h2f(b >> 16) * s;
            if ((st >> j) & 1u) {
                const float4 val = j < first ? fr_add4(r, add) : r;
                *(float4*)(P + (u0 + j) * 128 + lane * 4) = val;
            }
        }
    }
}

// The CTAs an SM is the register budget: 8 (32 registers, one wave of 1024
// tiles on 132 SMs), 6 (40) or 4 (56, the earlier bound), for comparison.
#define FP_POOL_KERNEL(NAME, CTAS)                                                                          \
    extern "C" __global__ void __launch_bounds__(FP_THREADS, CTAS)                                         \
        NAME(const unsigned char* k8, const float* ks, i64 N, i64 B, const i64* qpos, i64 M, float* P,     \
             u32* flags, float* agg, float* incl, i64 epoch) {                                             \
        ON_SM89(fp_pool_body(k8, ks, N, B, qpos, M, P, flags, agg, incl, epoch));                          \
    }
FP_POOL_KERNEL(fp8_pool_prefix, 8)
FP_POOL_KERNEL(fp8_pool_prefix_c6, 6)
FP_POOL_KERNEL(fp8_pool_prefix_c4, 4)

__device__ __forceinline__ void fr_cp_async16(void* smem, const void* gmem) {
    const u32 a = (u32)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(a), "l"(gmem) : "memory");
}

// fr_qswz: the chunk swizzle of q8 row R in shared memory (even, < 8).
__device__ __forceinline__ int fr_qswz(i64 R) { return ((int)R & 3) << 1; }

__device__ __forceinline__ void fr_mma(float* c, const u32* a, u32 b0, u32 b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// fr_split: 4 floats as f16 hi (rounded) and lo (the rounded remainder).
__device__ __forceinline__ void fr_split(float4 y, uint2& hi, uint2& lo) {
    hi.x = fr_pack(y.x, y.y);
    hi.y = fr_pack(y.z, y.w);
    lo.x = fr_pack(y.x - fr_h2f(hi.x), y.y - fr_h2f(hi.x >> 16));
    lo.y = fr_pack(y.z - fr_h2f(hi.y), y.w - fr_h2f(hi.y >> 16));
}

// fr_col: the row of P and the key count behind column col of the CTA
// (row −1: an empty column).
__device__ __forceinline__ void fr_col(int col, int nc, int maxOwn, const i64* fr_own, const i64* fr_pos,
                                       i64 reference, i64 B, i64 N, i64& row, i64& n) {
    row = -1;
    n = 0;
    if (col >= nc) return;
    if (col < maxOwn) {
        row = (i64)(col + 1) * B - 1;
        n = B;
        return;
    }
    const int rr = col - maxOwn;
    const i64 own = fr_own[rr];
    if (own < 0) return;
    if (reference) {
        const i64 end = min((own + 1) * B, N);
        row = end - 1;
        n = end - own * B;
    } else {
        row = fr_pos[rr];
        n = row - own * B + 1;
    }
}

// fr_stage: columns [c0, c0 + ncp) of the CTA into shared memory, Kc [CC][32]
// 16-byte chunks: first the fp32 P rows (cp.async, all in flight at once),
// then, in place, a warp per column: scaled f16 hi halves in chunks 0–15 and
// lo halves in 16–31 (8 dims a chunk, swizzled by the column's parity).
// Ends with a __syncthreads.
__device__ __forceinline__ void fr_stage(const float* __restrict__ P, int c0, int nc, int ncp, int maxOwn,
                                         const i64* fr_own, const i64* fr_pos, i64 reference, i64 B, i64 N,
                                         uint4* Kc, float* Kinv, int tid, int warp, int lane) {
    for (int i = tid; i < ncp * 32; i += FR_THREADS) {
        const int j = i >> 5, l = i & 31;
        i64 row, n;
        fr_col(c0 + j, c0 + nc, maxOwn, fr_own, fr_pos, reference, B, N, row, n);
        const u32 d = (u32)__cvta_generic_to_shared(Kc + i);
        const float* src = row >= 0 ? P + row * 128 + l * 4 : P;
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(row >= 0 ? 16 : 0)
                     : "memory");
    }
    asm volatile("cp.async.commit_group;\ncp.async.wait_all;\n" ::: "memory");
    __syncthreads();
    // Two columns a warp at a time (j and j + 8): independent shuffle chains.
    for (int j0 = warp; j0 < ncp; j0 += 2 * (FR_THREADS / 32)) {
        float4 x[2];
        float am[2];
#pragma unroll
        for (int u = 0; u < 2; ++u) {
            const int j = j0 + 8 * u;
            x[u] = j < ncp ? ((const float4*)(Kc + j * 32))[lane] : make_float4(0.f, 0.f, 0.f, 0.f);
            am[u] = fmaxf(fmaxf(fabsf(x[u].x), fabsf(x[u].y)), fmaxf(fabsf(x[u].z), fabsf(x[u].w)));
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            am[0] = fmaxf(am[0], __shfl_xor_sync(0xffffffffu, am[0], o));
            am[1] = fmaxf(am[1], __shfl_xor_sync(0xffffffffu, am[1], o));
        }
        __syncwarp();  // the columns are read before they are overwritten
#pragma unroll
        for (int u = 0; u < 2; ++u) {
            const int j = j0 + 8 * u;
            if (j < ncp) {
                i64 row, n;
                fr_col(c0 + j, c0 + nc, maxOwn, fr_own, fr_pos, reference, B, N, row, n);
                const int eb = (int)((__float_as_uint(am[u]) >> 23) & 0xffu);
                const int sb = min(max(268 - eb, 1), 253);  // am·2^(sb−127) ∈ [2^14, 2^15)
                const float s = __uint_as_float((u32)sb << 23), invs = __uint_as_float((u32)(254 - sb) << 23);
                uint2 hi, lo;
                fr_split(make_float4(x[u].x * s, x[u].y * s, x[u].z * s, x[u].w * s), hi, lo);
                const int ch = (lane >> 1) ^ ((j & 1) << 2);
                ((uint2*)(Kc + j * 32 + ch))[lane & 1] = hi;
                ((uint2*)(Kc + j * 32 + 16 + ch))[lane & 1] = lo;
                if (lane == 0) Kinv[j] = n > 0 ? invs / (float)n : 0.f;
            }
        }
    }
    __syncthreads();
}

// q8 [M][H][128], qs and w [M][H], qpos [M] (any order), P from
// fp8_pool_prefix (dense, or At mode with these qpos). Writes heads [M][nh]
// int32 ascending, q8r [M][nh][128], wr [M][nh] = w·qs, scores [M][H] if set.
// CC: columns staged per chunk (multiple of 8); dynamic shared memory
// 32768 + CC·(512 + 4) bytes.
extern "C" __global__ void __launch_bounds__(FR_THREADS, 2)
fp8_route(const unsigned char* __restrict__ q8, const float* __restrict__ qs, const float* __restrict__ w,
          const i64* __restrict__ qpos, const float* __restrict__ P, i64 M, i64 H, i64 nh, i64 N, i64 B,
          i64 reference, i64 CC, int* __restrict__ heads, unsigned char* __restrict__ q8r,
          float* __restrict__ wr, float* __restrict__ scores) {
#if __CUDA_ARCH__ >= 890
    extern __shared__ __align__(16) unsigned char fr_smem[];
    unsigned char* Qs = fr_smem;            // [rows][H][128]: the CTA's q8 (32 KB)
    uint4* Kc = (uint4*)(fr_smem + FR_QBYTES);  // [CC][32] 16-byte chunks: f16 hi (16), lo (16)
    float* Kinv = (float*)(Kc + CC * 32);       // [CC]: 1 / (scale · count), 0 for empty columns
    __shared__ i64 fr_pos[8], fr_own[8];
    __shared__ float fr_sum[8][64], fr_w[8][64], fr_q[8][64];
    __shared__ int fr_sel[8][64];

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int wpr = H > 32 ? 2 : 1, R = 8 / wpr;
    const int r = warp / wpr, mh = warp % wpr;
    const i64 m = (i64)blockIdx.x * R + r;
    const bool rowOK = m < M;

    if (tid < R) {
        const i64 mm = (i64)blockIdx.x * R + tid;
        i64 p = -1, own = -1;
        if (mm < M) {
            p = qpos[mm];
            own = p / B;
        }
        fr_pos[tid] = p;
        fr_own[tid] = own;
    }
    // The CTA's q8 rows (contiguous) into shared memory, asynchronously.
    {
        const i64 m0 = (i64)blockIdx.x * R, n16 = min((i64)R, M - m0) * H * 8;
        const unsigned char* src = q8 + m0 * H * 128;
        // 16-byte chunk c of q8 row R (R = r·H + h) goes to chunk c ^ fr_qswz(R):
        // the A-fragment reads below are then free of bank conflicts.
        for (i64 i = tid; i < n16; i += FR_THREADS)
            fr_cp_async16(Qs + (i >> 3) * 128 + (((int)i & 7) ^ fr_qswz(i >> 3)) * 16, src + i * 16);
        asm volatile("cp.async.commit_group;\n" ::: "memory");
    }
    // The ranking warp's weights and scales, early.
    if (rowOK && mh == 0) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int h = lane + 32 * i;
            if (h < H) {
                fr_w[r][h] = __ldg(w + m * H + h);
                fr_q[r][h] = __ldg(qs + m * H + h);
            }
        }
    }
    __syncthreads();
    // Column indices fit an int (blocks < 2^31 − 8).
    int maxOwn = -1;
    for (int i = 0; i < R; ++i) maxOwn = max(maxOwn, (int)fr_own[i]);
    const int ownR = (int)fr_own[r], ownCol = maxOwn + r;
    const int NC = maxOwn + R;  // maxOwn ≥ 0: the CTA's first row exists

    u32 A[2][8][4];
    float hs[2][2] = {{0.f, 0.f}, {0.f, 0.f}};
    for (int c0 = 0; c0 < NC; c0 += (int)CC) {
        const int nc = min((int)CC, NC - c0), ncp = (nc + 7) & ~7;
        if (c0 > 0) __syncthreads();  // the previous chunk is consumed
        fr_stage(P, c0, nc, ncp, maxOwn, fr_own, fr_pos, reference, B, N, Kc, Kinv, tid, warp, lane);
        if (c0 == 0) {
            // A operand: heads mh·32 + mt·16 + g (+8), dims kp·32 + t·8 … +7.
#pragma unroll
            for (int mt = 0; mt < 2; ++mt)
#pragma unroll
                for (int kp = 0; kp < 4; ++kp) {
                    const int h = mh * 32 + mt * 16 + g;
                    const i64 row = (i64)r * H + h;  // rows row and row + 8 share fr_qswz
                    const unsigned char* qr = Qs + row * 128 + ((kp * 2 + (t >> 1)) ^ fr_qswz(row)) * 16 + (t & 1) * 8;
                    const uint2 x0 = rowOK && h < H ? *(const uint2*)qr : make_uint2(0u, 0u);
                    const uint2 x1 = rowOK && h + 8 < H ? *(const uint2*)(qr + 8 * 128) : make_uint2(0u, 0u);
#pragma unroll
                    for (int e = 0; e < 2; ++e) {
                        const u32 xg = e ? x0.y : x0.x, xg8 = e ? x1.y : x1.x;
                        A[mt][2 * kp + e][0] = fr_e4m3x2(xg);
                        A[mt][2 * kp + e][1] = fr_e4m3x2(xg8);
                        A[mt][2 * kp + e][2] = fr_e4m3x2(xg >> 16);
                        A[mt][2 * kp + e][3] = fr_e4m3x2(xg8 >> 16);
                    }
                }
        }
        if (rowOK) {
            for (int nt = 0; nt < ncp / 8; ++nt) {
                const int cb = c0 + nt * 8;
                if (!(cb < ownR || (ownCol >= cb && ownCol < cb + 8))) continue;
                float acc[2][2][4];
#pragma unroll
                for (int mt = 0; mt < 2; ++mt)
#pragma unroll
                    for (int p = 0; p < 2; ++p)
#pragma unroll
                        for (int i = 0; i < 4; ++i) acc[mt][p][i] = 0.f;
                const uint4* hrow = Kc + (nt * 8 + g) * 32;
                const uint4* lrow = hrow + 16;
#pragma unroll
                for (int kp = 0; kp < 4; ++kp) {
                    const int ch = (kp * 4 + t) ^ ((g & 1) << 2);
                    const uint4 bh = hrow[ch], bl = lrow[ch];
#pragma unroll
                    for (int mt = 0; mt < 2; ++mt) {
                        fr_mma(acc[mt][0], A[mt][2 * kp], bh.x, bh.y);
                        fr_mma(acc[mt][1], A[mt][2 * kp], bl.x, bl.y);
                        fr_mma(acc[mt][0], A[mt][2 * kp + 1], bh.z, bh.w);
                        fr_mma(acc[mt][1], A[mt][2 * kp + 1], bl.z, bl.w);
                    }
                }
                float f[2];
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int col = cb + 2 * t + e;
                    f[e] = (col < ownR || col == ownCol) ? Kinv[nt * 8 + 2 * t + e] : 0.f;
                }
#pragma unroll
                for (int mt = 0; mt < 2; ++mt) {
                    hs[mt][0] += relu((acc[mt][0][0] + acc[mt][1][0]) * f[0]) + relu((acc[mt][0][1] + acc[mt][1][1]) * f[1]);
                    hs[mt][1] += relu((acc[mt][0][2] + acc[mt][1][2]) * f[0]) + relu((acc[mt][0][3] + acc[mt][1][3]) * f[1]);
                }
            }
        }
    }
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            hs[mt][i] += __shfl_xor_sync(0xffffffffu, hs[mt][i], 1);
            hs[mt][i] += __shfl_xor_sync(0xffffffffu, hs[mt][i], 2);
            const int h = mh * 32 + mt * 16 + g + 8 * i;
            if (rowOK && t == 0 && h < H) fr_sum[r][h] = hs[mt][i];
        }
    __syncthreads();
    if (!rowOK || mh != 0) return;

    // Rank the row's heads (descending score, ties to the lower head) and
    // gather the nh best, ascending.
    u32* key = (u32*)fr_sum[r];
    float sc[2], wq[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int h = lane + 32 * i;
        sc[i] = 0.f;
        wq[i] = 0.f;
        if (h < H) {
            const float ww = fr_w[r][h], qq = fr_q[r][h];
            wq[i] = ww * qq;
            sc[i] = fabsf(ww) * qq * fr_sum[r][h];
            key[h] = score_key(sc[i]);
        }
    }
    __syncwarp();
    bool sel[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int h = lane + 32 * i;
        sel[i] = false;
        if (h < H) {
            const u32 k = key[h];
            int c = 0;
            for (int g2 = 0; g2 < H; ++g2) {
                const u32 k2 = key[g2];
                c += (k2 > k) || (k2 == k && g2 < h);
            }
            sel[i] = c < nh;
        }
    }
    const u32 b0 = __ballot_sync(0xffffffffu, sel[0]), b1 = __ballot_sync(0xffffffffu, sel[1]);
    const u32 below = (1u << lane) - 1u;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int h = lane + 32 * i;
        const int pos = i == 0 ? __popc(b0 & below) : __popc(b0) + __popc(b1 & below);
        if (sel[i] && pos < nh) {
            heads[m * nh + pos] = h;
            wr[m * nh + pos] = wq[i];
            fr_sel[r][pos] = h;
        }
        if (scores && h < H) scores[m * H + h] = sc[i];
    }
    __syncwarp();
    for (i64 i = lane; i < nh * 8; i += 32) {
        const i64 pos = i >> 3, ch = i & 7;
        const i64 row = (i64)r * H + fr_sel[r][pos];
        const uint4 v = *((const uint4*)(Qs + row * 128) + (ch ^ fr_qswz(row)));
        *((uint4*)(q8r + (m * nh + pos) * 128) + ch) = v;
    }
#else
    __trap();
#endif
}

// fr_bench_spin: one thread busy for ns nanoseconds (benchmarks queue their
// launches behind it so that the timed kernels run back to back).
extern "C" __global__ void fr_bench_spin(i64 ns) {
    u64 t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t0));
    do {
        __nanosleep(1000);
        asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
    } while ((i64)(t - t0) < ns);
}
