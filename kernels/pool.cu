// pool.cu — causal block pooling of keys (DESIGN.md §1, MISA step 1 and HISA).
//
// pool_full: kbar[b] = mean(k[s], s ∈ [bB, bB+B)) for the nb = ⌊N/B⌋ full
//   blocks. FLOPs: N·D float64 adds + nb·D multiplies. Bytes: N·D·4 read,
//   nb·D·4 written (K read once: 64 MB at N=128K, D=128).
// pool_own: the mean of each query row's own block, over [own·B, p_t]
//   (causal) or the whole block (reference pooling, future keys included).
//   FLOPs: ≤ rows·B·D adds. Bytes: ≤ rows·B·D·4 read (L2-resident rows of K),
//   rows·D·4 written.
//
// Both sum in float64 in ascending token order and multiply by
// 1/float64(count), then round to fp32, exactly as indexer.blockMean does.
// One thread per (block, dim): a warp reads 32 consecutive floats of a key.

extern "C" __global__ void pool_full(const float* __restrict__ k, i64 D, i64 B, i64 nb,
                                     float* __restrict__ out) {
    const i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nb * D) return;
    const i64 b = i / D, x = i - b * D;
    const float* p = k + b * B * D + x;
    double s = 0.0;
    for (i64 j = 0; j < B; ++j) s = __dadd_rn(s, (double)p[j * D]);
    out[i] = (float)__dmul_rn(s, 1.0 / (double)B);
}

extern "C" __global__ void pool_own(const float* __restrict__ k, const i64* __restrict__ qpos,
                                    i64 row0, i64 rows, i64 N, i64 D, i64 B, i64 reference,
                                    float* __restrict__ out) {
    const i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * D) return;
    const i64 r = i / D, x = i - r * D;
    const i64 pt = qpos[row0 + r];
    const i64 lo = (pt / B) * B;
    i64 hi = pt + 1;
    if (reference) hi = min(lo + B, N);
    const float* p = k + lo * D + x;
    double s = 0.0;
    for (i64 j = 0; j < hi - lo; ++j) s = __dadd_rn(s, (double)p[j * D]);
    out[i] = (float)__dmul_rn(s, 1.0 / (double)(hi - lo));
}
