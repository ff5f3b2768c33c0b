// stats.cu — per-row head contributions (HeadRank, the oracle router) and
// selection mass (DESIGN.md §2), as indexer/cpu.go defines them.
//
// head_contrib: c[t,h] = w[t,h] · Σ_{s ∈ DSA set, ascending} ReLU(q[t,h]·k[s]),
//   in float64. FLOPs: 2·H·D·k per row (33.6 MFLOP at H 64, D 128, k 2048;
//   34 GFLOP for 1024 rows). Bytes: k gathered keys per row (k·D·4 = 1 MB,
//   mostly L2) + Q once.
//   One CTA per row: the row's Q in shared memory, the set's keys in tiles of
//   32; all H×32 products of a tile in parallel (fused chain, as the CPU),
//   then one thread per head adds its 32 in ascending order.
// mass_rows: m[t] = Σ_{s ∈ set, ascending} score[t,s] in float64.
//   Bytes: one gathered fp32 per selected index. The sum is sequential per
//   row (one thread), gathered 256 at a time, to keep the CPU's order.

#define HC_THREADS 256
#define HC_TILE 32

extern "C" __global__ void __launch_bounds__(HC_THREADS)
head_contrib(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ w,
             i64 row0, i64 H, i64 D, const int* __restrict__ ref, i64 refLd,
             const int* __restrict__ refCnt, double* __restrict__ out) {
    extern __shared__ double hc_sm[];
    double* acc = hc_sm;                         // [H]
    float* Qs = (float*)(acc + H);               // [H][D]
    float* Ks = Qs + H * D;                      // [HC_TILE][D+1]
    float* Rs = Ks + HC_TILE * (D + 1);          // [H][HC_TILE+1]
    const i64 r = blockIdx.x, t = row0 + r;
    const int cnt = refCnt[r];
    const int* rr = ref + r * refLd;
    for (i64 i = threadIdx.x; i < H * D; i += blockDim.x) Qs[i] = q[t * H * D + i];
    for (int h = threadIdx.x; h < H; h += blockDim.x) acc[h] = 0.0;
    for (int j0 = 0; j0 < cnt; j0 += HC_TILE) {
        const int m = min(HC_TILE, cnt - j0);
        __syncthreads();
        for (i64 i = threadIdx.x; i < (i64)m * D; i += blockDim.x) {
            const i64 j = i / D, x = i - j * D;
            Ks[j * (D + 1) + x] = k[(i64)rr[j0 + j] * D + x];
        }
        __syncthreads();
        for (i64 i = threadIdx.x; i < H * HC_TILE; i += blockDim.x) {
            const i64 h = i / HC_TILE, j = i - h * HC_TILE;
            if (j < m) Rs[h * (HC_TILE + 1) + j] = relu(dot_fma(Qs + h * D, Ks + j * (D + 1), (int)D));
        }
        __syncthreads();
        for (int h = threadIdx.x; h < H; h += blockDim.x) {
            double a = acc[h];
            for (int j = 0; j < m; ++j) a = __dadd_rn(a, (double)Rs[h * (HC_TILE + 1) + j]);
            acc[h] = a;
        }
    }
    __syncthreads();
    for (int h = threadIdx.x; h < H; h += blockDim.x) out[r * H + h] = __dmul_rn((double)w[t * H + h], acc[h]);
}

#define MS_THREADS 256

extern "C" __global__ void __launch_bounds__(MS_THREADS)
mass_rows(const float* __restrict__ scores, i64 ld, const int* __restrict__ set, i64 setLd,
          const int* __restrict__ cnt, double* __restrict__ out) {
    __shared__ float v[MS_THREADS];
    const i64 r = blockIdx.x;
    const int n = cnt[r];
    double s = 0.0;
    for (int j0 = 0; j0 < n; j0 += MS_THREADS) {
        const int j = j0 + threadIdx.x;
        if (j < n) v[threadIdx.x] = scores[r * ld + set[r * setLd + j]];
        __syncthreads();
        if (threadIdx.x == 0) {
            const int m = min(MS_THREADS, n - j0);
            for (int i = 0; i < m; ++i) s = __dadd_rn(s, (double)v[i]);
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) out[r] = s;
}
