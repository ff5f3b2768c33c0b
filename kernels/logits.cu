// logits.cu — index logits with the fused ReLU·weight·head-sum epilogue
// (DESIGN.md §1): out[t, s] = Σ_{j < nh, ascending} w[t, h_j] · ReLU(q[t, h_j]·k[s])
// for every visible key s ≤ p_t. DSA passes all H heads (heads == NULL);
// MISA passes each row's routed heads, ascending.
//
// FLOPs: 2·nh·D per (row, visible key) — 1.10e12 for DSA at 1024 rows ×
//   65536 keys × 64 heads × D 128 (full rectangle); 1.37e11 for MISA h=8.
// Bytes (floor): K once (N·D·4; 33.5 MB fp32 at 65536 × 128), Q once, and
//   the fp32 logits written once (rows·L·4 = 268 MB at 1024 × 65536). This
//   version re-reads K from L2 once per block of RB rows.
//
// fp32 CUDA-core version (shared-memory tiles): a CTA of 256 threads takes
// RB query rows × up to keysPerBlock keys in tiles of 16·KPT keys. Its Q
// rows (only the nh heads used), one K tile and the ReLU'd products sit in
// shared memory; a thread computes 8 heads × KPT keys (keys kg + 16c,
// conflict-free float4 reads) with one fused multiply-add per term in
// ascending dimension order (the CPU reference's arithmetic, bit for bit),
// then the head sum runs over the slots in ascending head order with
// separately rounded multiply and add, as indexer.CPU.weighted does.
// Layout: RB = 16 / min(⌈nh/8⌉, 16) rows per CTA (2 for nh = 64, 16 for nh ≤ 8).
// logits_heads4 (KPT 4, 64-key tiles) is version 1; logits_heads8 (KPT 8,
// 128-key tiles: twice the FMAs per shared-memory load, ~199 KB of shared
// memory at D 128) is version 2, used whenever it fits (NOTES.md).

#define LG_THREADS 256

template <int KPT>
__device__ __forceinline__ void logits_body(
    const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ w,
    const i64* __restrict__ qpos, const int* __restrict__ heads, i64 nh, i64 H, i64 D, i64 N,
    i64 row0, i64 rows, i64 keysPerBlock, i64 ld, float* __restrict__ out, float* sm) {
    constexpr int TILE = 16 * KPT;
    const int NHP = (int)((nh + 7) / 8 * 8), HG = NHP / 8, HGT = HG < 16 ? HG : 16, RB = 16 / HGT;
    const int D4 = (int)((D + 3) / 4 * 4), KST = D4 + 4;
    float* Qs = sm;                           // [RB][NHP][D4]
    float* Ks = Qs + RB * NHP * D4;           // [TILE][KST]
    float* Rs = Ks + TILE * KST;              // [RB][NHP][TILE]
    float* Ws = Rs + RB * NHP * TILE;         // [RB][NHP]

    const i64 rb0 = (i64)blockIdx.y * RB;     // first row of this CTA, chunk-relative
    if (rb0 >= rows) return;
    const int nr = (int)min((i64)RB, rows - rb0);
    const i64 maxVis = qpos[row0 + rb0 + nr - 1] + 1;  // rows ascend
    const i64 s0 = (i64)blockIdx.x * keysPerBlock;
    if (s0 >= maxVis) return;
    const i64 s1 = min(s0 + keysPerBlock, maxVis);

    for (int i = threadIdx.x; i < RB * NHP * D4; i += blockDim.x) {
        const int x = i % D4, rs = i / D4, slot = rs % NHP, r = rs / NHP;
        float v = 0.f;
        if (r < nr && slot < nh && x < D) {
            const i64 t = row0 + rb0 + r;
            const i64 h = heads ? (i64)heads[(rb0 + r) * nh + slot] : (i64)slot;
            v = q[(t * H + h) * D + x];
        }
        Qs[i] = v;
    }
    for (int i = threadIdx.x; i < RB * NHP; i += blockDim.x) {
        const int slot = i % NHP, r = i / NHP;
        float v = 0.f;
        if (r < nr && slot < nh) {
            const i64 t = row0 + rb0 + r;
            const i64 h = heads ? (i64)heads[(rb0 + r) * nh + slot] : (i64)slot;
            v = w[t * H + h];
        }
        Ws[i] = v;
    }

    const int kg = threadIdx.x & 15, rest = threadIdx.x >> 4;
    const int hgT = rest % HGT, r = rest / HGT;
    const bool active = r < nr;

    for (i64 st = s0; st < s1; st += TILE) {
        __syncthreads();  // Qs/Ws written; previous tile's Ks/Rs consumed
        if ((D & 3) == 0) {
            const int D4q = (int)(D >> 2);
            for (int i = threadIdx.x; i < TILE * D4q; i += blockDim.x) {
                const int j = i / D4q, x4 = i - j * D4q;
                const i64 s = st + j;
                float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
                if (s < N) v = *(const float4*)(k + s * D + 4 * x4);
                *(float4*)(Ks + j * KST + 4 * x4) = v;
            }
        } else {
            for (int i = threadIdx.x; i < TILE * D4; i += blockDim.x) {
                const int j = i / D4, x = i - j * D4;
                const i64 s = st + j;
                Ks[j * KST + x] = (s < N && x < D) ? k[s * D + x] : 0.f;
            }
        }
        __syncthreads();
        if (active) {
            for (int hg = hgT; hg < HG; hg += HGT) {
                float acc[8][KPT];
#pragma unroll
                for (int i = 0; i < 8; ++i)
#pragma unroll
                    for (int c = 0; c < KPT; ++c) acc[i][c] = 0.f;
                const float* qb = Qs + (r * NHP + hg * 8) * D4;
                for (int x = 0; x < D4; x += 4) {
                    float4 kv[KPT];
#pragma unroll
                    for (int c = 0; c < KPT; ++c) kv[c] = *(const float4*)(Ks + (kg + 16 * c) * KST + x);
#pragma unroll
                    for (int i = 0; i < 8; ++i) {
                        const float4 qv = *(const float4*)(qb + i * D4 + x);
#pragma unroll
                        for (int c = 0; c < KPT; ++c) {
                            float a = acc[i][c];
                            a = fmaf(qv.x, kv[c].x, a);
                            a = fmaf(qv.y, kv[c].y, a);
                            a = fmaf(qv.z, kv[c].z, a);
                            a = fmaf(qv.w, kv[c].w, a);
                            acc[i][c] = a;
                        }
                    }
                }
                float* rb = Rs + (r * NHP + hg * 8) * TILE;
#pragma unroll
                for (int i = 0; i < 8; ++i)
#pragma unroll
                    for (int c = 0; c < KPT; ++c) rb[i * TILE + kg + 16 * c] = relu(acc[i][c]);
            }
        }
        __syncthreads();
        for (int o = threadIdx.x; o < nr * TILE; o += blockDim.x) {
            const int r2 = o / TILE, j = o - r2 * TILE;
            const i64 s = st + j;
            if (s <= qpos[row0 + rb0 + r2]) {
                const float* rr = Rs + r2 * NHP * TILE + j;
                const float* ww = Ws + r2 * NHP;
                float a = 0.f;
                for (int sl = 0; sl < nh; ++sl) a = __fadd_rn(a, __fmul_rn(ww[sl], rr[sl * TILE]));
                out[(rb0 + r2) * ld + s] = a;
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(LG_THREADS)
logits_heads4(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ w,
              const i64* __restrict__ qpos, const int* __restrict__ heads, i64 nh, i64 H, i64 D,
              i64 N, i64 row0, i64 rows, i64 keysPerBlock, i64 ld, float* __restrict__ out) {
    extern __shared__ float4 lg_sm4[];
    logits_body<4>(q, k, w, qpos, heads, nh, H, D, N, row0, rows, keysPerBlock, ld, out, (float*)lg_sm4);
}

extern "C" __global__ void __launch_bounds__(LG_THREADS)
logits_heads8(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ w,
              const i64* __restrict__ qpos, const int* __restrict__ heads, i64 nh, i64 H, i64 D,
              i64 N, i64 row0, i64 rows, i64 keysPerBlock, i64 ld, float* __restrict__ out) {
    extern __shared__ float4 lg_sm4[];
    logits_body<8>(q, k, w, qpos, heads, nh, H, D, N, row0, rows, keysPerBlock, ld, out, (float*)lg_sm4);
}
