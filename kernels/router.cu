// router.cu — MISA router scores and per-row head ranking (DESIGN.md §1).
//
// router_pooled:  r[t,h] = |w[t,h]| · (Σ_{b < own} ReLU(q[t,h]·kbar[b]) + ReLU(q[t,h]·kown[t]))
//   FLOPs: 2·H·D·(own+1) per row (2·64·128·129 ≈ 2.1 MFLOP at 128K keys,
//   B = 1024). Bytes: Q once, kbar (N/B·D·4) from L2 once per row.
// router_selfkey: r[t,h] = w[t,h] · ReLU(q[t,h]·k[p_t]). FLOPs 2·H·D per row.
// router_qnorm:   r[t,h] = ‖q[t,h]‖. FLOPs 2·H·D per row. Bytes: Q once.
// rank_heads:     per row, the rank of each head by descending score, ties
//   to the lower head (indexer.rankHeads): writes the full order (HeadRank)
//   and/or the nh best heads ascending. O(H²) compares per row.
//
// Router arithmetic follows indexer/cpu.go: the pooled dots are Go's
// portable reluDot (rounded multiply, rounded add), summed in float64 in
// ascending block order with the own block last; selfkey uses the AVX2
// tile's fused chain; qnorm sums squares in float64. Scores are float64.

#define RT_THREADS 128
#define RP_THREADS 256
#define RP_TILE 32

// router_pooled: one CTA per row. The row's H query vectors sit in shared
// memory; the block means stream through in tiles of 32 (coalesced loads),
// all H×32 dots of a tile are computed in parallel, then one thread per
// head adds its 32 in ascending block order (float64), as the CPU does.
extern "C" __global__ void __launch_bounds__(RP_THREADS)
router_pooled(const float* __restrict__ q, const float* __restrict__ w, const i64* __restrict__ qpos,
              const float* __restrict__ kfull, const float* __restrict__ kown, i64 row0, i64 H,
              i64 D, i64 B, double* __restrict__ out) {
    extern __shared__ double rp_sm[];
    double* acc = rp_sm;                         // [H]
    float* Qs = (float*)(acc + H);               // [H][D]
    float* Ks = Qs + H * D;                      // [RP_TILE][D+1]
    float* Rs = Ks + RP_TILE * (D + 1);          // [H][RP_TILE+1]
    const i64 r = blockIdx.x, t = row0 + r;
    const i64 own = qpos[t] / B;
    for (i64 i = threadIdx.x; i < H * D; i += blockDim.x) Qs[i] = q[t * H * D + i];
    for (int h = threadIdx.x; h < H; h += blockDim.x) acc[h] = 0.0;
    // Tiles of full blocks, then one last "tile" holding the own block.
    for (i64 b0 = 0; b0 <= own; b0 += RP_TILE) {
        const bool last = b0 == own;
        const i64 m = last ? 1 : min((i64)RP_TILE, own - b0);
        __syncthreads();
        for (i64 i = threadIdx.x; i < m * D; i += blockDim.x) {
            const i64 j = i / D, x = i - j * D;
            Ks[j * (D + 1) + x] = last ? kown[r * D + x] : kfull[(b0 + j) * D + x];
        }
        __syncthreads();
        for (i64 i = threadIdx.x; i < H * RP_TILE; i += blockDim.x) {
            const i64 h = i / RP_TILE, j = i - h * RP_TILE;
            if (j < m) Rs[h * (RP_TILE + 1) + j] = relu(dot_plain(Qs + h * D, Ks + j * (D + 1), (int)D));
        }
        __syncthreads();
        for (int h = threadIdx.x; h < H; h += blockDim.x) {
            double a = acc[h];
            for (int j = 0; j < m; ++j) a = __dadd_rn(a, (double)Rs[h * (RP_TILE + 1) + j]);
            acc[h] = a;
        }
        if (!last && b0 + RP_TILE > own) b0 = own - RP_TILE;  // next: the own block
    }
    __syncthreads();
    for (int h = threadIdx.x; h < H; h += blockDim.x) out[r * H + h] = __dmul_rn(fabs((double)w[t * H + h]), acc[h]);
}

extern "C" __global__ void router_selfkey(const float* __restrict__ q, const float* __restrict__ k,
                                          const float* __restrict__ w, const i64* __restrict__ qpos,
                                          i64 row0, i64 rows, i64 H, i64 D, double* __restrict__ out) {
    const i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * H) return;
    const i64 r = i / H, h = i - r * H, t = row0 + r;
    const float v = relu(dot_fma(q + (t * H + h) * D, k + qpos[t] * D, (int)D));
    out[i] = __dmul_rn((double)w[t * H + h], (double)v);
}

extern "C" __global__ void router_qnorm(const float* __restrict__ q, i64 row0, i64 rows, i64 H, i64 D,
                                        double* __restrict__ out) {
    const i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * H) return;
    const float* p = q + (row0 * H + i) * D;
    double s = 0.0;
    for (i64 x = 0; x < D; ++x) {
        const double v = (double)p[x];
        s = __dadd_rn(s, __dmul_rn(v, v));
    }
    out[i] = __dsqrt_rn(s);
}

extern "C" __global__ void __launch_bounds__(RT_THREADS)
rank_heads(const double* __restrict__ score, i64 H, i64 nh, int* __restrict__ heads,
           int* __restrict__ order) {
    extern __shared__ double rk_sm[];
    double* sc = rk_sm;                       // [H]
    int* rk = (int*)(rk_sm + (H + 3) / 4 * 4);  // [H], 32-byte aligned: racecheck tracks
                                              // shared memory in 16-byte words and flagged
                                              // sc[H−1] / rk[0] sharing one as a race
    const i64 r = blockIdx.x;
    for (int h = threadIdx.x; h < H; h += blockDim.x) sc[h] = score[r * H + h];
    __syncthreads();
    for (int h = threadIdx.x; h < H; h += blockDim.x) {
        const double v = sc[h];
        int c = 0;
        for (int g = 0; g < H; ++g) {
            const double u = sc[g];
            c += (u > v) || (u == v && g < h);
        }
        rk[h] = c;
        if (order) order[r * H + c] = h;
    }
    __syncthreads();
    if (heads) {
        for (int h = threadIdx.x; h < H; h += blockDim.x) {
            if (rk[h] < nh) {
                int pos = 0;
                for (int g = 0; g < h; ++g) pos += rk[g] < nh;
                heads[r * nh + pos] = h;
            }
        }
    }
}
