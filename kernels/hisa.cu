// hisa.cu — HISA's block stage (DESIGN.md §1): block scores over causal
// means of B_h-token blocks with all heads, the first and the last visible
// block forced, then the candidate tokens of the chosen blocks. (The top-m
// of the block scores and the final top-k inside the candidates are
// topk_rows.)
//
// hisa_block_scores: bs[t,b] = Σ_{h ascending} w[t,h]·ReLU(q[t,h]·kbar[b])
//   for b ≤ own = ⌊p_t/B⌋ (kbar[own] = the causal mean of the own block);
//   bs[t,0] = bs[t,own] = +Inf. FLOPs: 2·H·D per (row, visible block):
//   1024 rows × 512 blocks (64K keys, B 128) × 64 × 128 × 2 = 8.6 GFLOP.
//   Bytes: kbar (N/B·D·4 = 2 MB) per row from L2, Q once, bs written.
//   A CTA takes one row and 128 blocks: Q, w and the 128 means sit in
//   shared memory; a thread scores one block with Go's portable arithmetic
//   (rounded multiply and add, heads ascending), as indexer's hisa does.
// hisa_expand: candidates = tokens of the chosen blocks (ascending), the own
//   block cut at p_t. Bytes: candidates written (≤ m·B·4 per row).

#define HB_THREADS 128

extern "C" __global__ void __launch_bounds__(HB_THREADS)
hisa_block_scores(const float* __restrict__ q, const float* __restrict__ w, const i64* __restrict__ qpos,
                  const float* __restrict__ kfull, const float* __restrict__ kown, i64 row0, i64 H,
                  i64 D, i64 B, i64 ldb, float* __restrict__ out) {
    extern __shared__ float hb_sm[];
    float* Qs = hb_sm;                  // [H][D]
    float* Ws = Qs + H * D;             // [H]
    float* Kb = Ws + H;                 // [HB_THREADS][D+1]
    const i64 r = blockIdx.y, t = row0 + r;
    const i64 own = qpos[t] / B;
    const i64 b0 = (i64)blockIdx.x * HB_THREADS;
    if (b0 > own) return;
    for (i64 i = threadIdx.x; i < H * D; i += blockDim.x) Qs[i] = q[t * H * D + i];
    for (i64 h = threadIdx.x; h < H; h += blockDim.x) Ws[h] = w[t * H + h];
    const i64 nb = min((i64)HB_THREADS, own + 1 - b0);
    for (i64 i = threadIdx.x; i < nb * D; i += blockDim.x) {
        const i64 j = i / D, x = i - j * D, b = b0 + j;
        Kb[j * (D + 1) + x] = b < own ? kfull[b * D + x] : kown[r * D + x];
    }
    __syncthreads();
    const i64 b = b0 + threadIdx.x;
    if (b > own) return;
    // Four heads at a time: one shared-memory read of the mean feeds four
    // independent dot products; the head sum still runs in ascending order.
    float s = 0.f;
    const float* kb = Kb + threadIdx.x * (D + 1);
    i64 h = 0;
    for (; h + 4 <= H; h += 4) {
        const float* q0 = Qs + h * D;
        float d0 = 0.f, d1 = 0.f, d2 = 0.f, d3 = 0.f;
        for (i64 x = 0; x < D; ++x) {
            const float kv = kb[x];
            d0 = __fadd_rn(d0, __fmul_rn(q0[x], kv));
            d1 = __fadd_rn(d1, __fmul_rn(q0[D + x], kv));
            d2 = __fadd_rn(d2, __fmul_rn(q0[2 * D + x], kv));
            d3 = __fadd_rn(d3, __fmul_rn(q0[3 * D + x], kv));
        }
        s = __fadd_rn(s, __fmul_rn(Ws[h], relu(d0)));
        s = __fadd_rn(s, __fmul_rn(Ws[h + 1], relu(d1)));
        s = __fadd_rn(s, __fmul_rn(Ws[h + 2], relu(d2)));
        s = __fadd_rn(s, __fmul_rn(Ws[h + 3], relu(d3)));
    }
    for (; h < H; ++h) s = __fadd_rn(s, __fmul_rn(Ws[h], relu(dot_plain(Qs + h * D, kb, (int)D))));
    if (b == 0 || b == own) s = POS_INF;
    out[r * ldb + b] = s;
}

extern "C" __global__ void hisa_expand(const int* __restrict__ chosen, i64 chLd, const int* __restrict__ chCnt,
                                       const i64* __restrict__ qpos, i64 row0, i64 B, int* __restrict__ cand,
                                       i64 candLd, int* __restrict__ candCnt) {
    const i64 r = blockIdx.x;
    const i64 L = qpos[row0 + r] + 1;
    const int c = chCnt[r];
    const int* ch = chosen + r * chLd;
    i64 total = 0;
    if (c > 0) total = (i64)(c - 1) * B + min(B, L - (i64)ch[c - 1] * B);
    for (i64 pos = threadIdx.x; pos < total; pos += blockDim.x) {
        const i64 j = pos / B;
        cand[r * candLd + pos] = (int)((i64)ch[j] * B + (pos - j * B));
    }
    if (threadIdx.x == 0) candCnt[r] = (int)total;
}
