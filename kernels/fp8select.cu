// fp8select.cu — fused scoring and selection (research/kernels.md §3,
// LiteTopK's idea): the index logits of a row are never written in full.
// The unfused path writes M·L fp32 logits (268 MB at 1024 × 65536) and
// topk_fast_rows reads them back; here the logits kernel keeps only the keys
// whose logit reaches a per-row threshold that lets ~2k of L through, and
// topk_fast_pairs selects the k best of those.
//
//  1. fp8_sample_keys copies every S-th key (and its scale) into a dense
//     sample cache, and the sample's key counts ⌈ke/S⌉; it also clears the
//     failure count.
//  2. fp8r_logits (the unfused kernel) scores the sample: M·⌈L/S⌉ logits.
//  3. fp8_sample_kth writes each row's r-th largest sample logit,
//     r = ⌈2k/S⌉ + 8: about r·S ≈ 2k + 8S keys of the row reach it (an
//     order statistic of the sample, relative spread ~1/√r: fewer than k
//     would be ~6 standard deviations off for rows without structure). A
//     sample of r keys or fewer gives −inf: every key survives.
//  4. fp8rf_logits (this file: fp8s_logits_body with FT) scores every key
//     and appends the (logit, key) pairs that reach the threshold, each
//     lane group of each warp to its own region (no atomics).
//  5. topk_fast_pairs selects the k best pairs, or counts the row as failed
//     (a region overflowed, or fewer than k pairs reached the threshold —
//     ties, or a sample that misjudged the row).
//  6. Fallback, always launched: fp8rg_logits (the unfused kernel) and
//     topk_fast_rows run only when the failure count is not zero (each CTA
//     reads it first), and then redo every row.
//
// FLOPs: the logits' 2·H·128 per (row, key), plus 1/S of that for the
// sample. Bytes: keys (N·132) and Q as the unfused kernel; the pairs written
// and read once, ~8·(2k + 8S) per row (about 35 MB at 1024 rows, k 2048,
// S 32) instead of 8·L (537 MB of logits written and read at L 65536).

// fp8_sample_keys: grid (⌈max(8·Ns, M)/256⌉, seqs); thread i copies 16-byte
// chunk i % 8 of row i / 8 of sequence q of the sample, key (i / 8)·S of
// sequence q (Ns = ⌈N/S⌉ rows a sequence). Threads i < M of sequence 0 also
// write keS[i] = ⌈ke[i]/S⌉, and thread 0 clears *fail.
extern "C" __global__ void fp8_sample_keys(const unsigned char* __restrict__ k8, const float* __restrict__ ks,
                                           i64 N, i64 S, const int* __restrict__ ke, i64 M,
                                           unsigned char* __restrict__ k8s, float* __restrict__ kss,
                                           int* __restrict__ keS, int* __restrict__ fail) {
    const i64 Ns = (N + S - 1) / S, q = blockIdx.y;
    const i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x, j = i / 8, ch = i % 8;
    if (j < Ns) {
        const uint4 v = *((const uint4*)(k8 + (q * N + j * S) * 128) + ch);
        *((uint4*)(k8s + (q * Ns + j) * 128) + ch) = v;
        if (ch == 0) kss[q * Ns + j] = ks[q * N + j * S];
    }
    if (q == 0) {
        if (i < M) keS[i] = (int)((ke[i] + S - 1) / S);
        if (i == 0) *fail = 0;
    }
}

// fp8_sample_kth: a warp per row, 4 a CTA. thr[m] = the r-th largest of the
// sample's keS[m] logits by score_key, to FK_BITS bits of the key: a binary
// search on the key, one bit a pass, counting the logits at or above the
// candidate (held in registers up to 32·FK_V of them, else re-read each
// pass); or −inf when there are r or fewer. The key's lower bits are left
// zero, so the threshold is the lower edge of the r-th logit's bin (a
// relative width of 2^-7 at 16 bits): at least r sample logits reach it.
#define FK_V 64
#define FK_BITS 16
extern "C" __global__ void __launch_bounds__(128) fp8_sample_kth(const float* __restrict__ sample, i64 ld,
                                                                 const int* __restrict__ keS, i64 M, i64 r,
                                                                 float* __restrict__ thr) {
#if __CUDA_ARCH__ >= 800
    const i64 m = (i64)blockIdx.x * 4 + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (m >= M) return;
    const int n = keS[m];
    if ((i64)n <= r) {
        if (lane == 0) thr[m] = -__int_as_float(0x7f800000);
        return;
    }
    const float* s = sample + m * ld;
    u32 key = 0u;  // no logit's key is 0 below a candidate (candidates have a bit set)
    if (n <= 32 * FK_V) {
        u32 kv[FK_V];
#pragma unroll
        for (int j = 0; j < FK_V; ++j) kv[j] = 32 * j + lane < n ? score_key(s[32 * j + lane]) : 0u;
        for (int b = 31; b >= 32 - FK_BITS; --b) {
            const u32 cand = key | (1u << b);
            u32 c[4] = {0u, 0u, 0u, 0u};  // four chains, not one of FK_V adds
#pragma unroll
            for (int j = 0; j < FK_V; ++j) c[j & 3] += kv[j] >= cand;
            if (__reduce_add_sync(0xffffffffu, c[0] + c[1] + c[2] + c[3]) >= (u32)r) key = cand;
        }
    } else {
        for (int b = 31; b >= 32 - FK_BITS; --b) {
            const u32 cand = key | (1u << b);
            u32 c = 0u;
            for (int j = lane; j < n; j += 32) c += score_key(__ldg(s + j)) >= cand;
            if (__reduce_add_sync(0xffffffffu, c) >= (u32)r) key = cand;
        }
    }
    // The float whose score_key is key (score_key's inverse).
    if (lane == 0) thr[m] = __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
#else
    __trap();
#endif
}

// The filtered kernels: fp8r_logits' operands, then the filter's (thr [M],
// pairs [M][gridDim.y][64][capReg], counts [M][gridDim.y][64], capReg: a
// region per lane group of each warp of each split); no logits are written.
#define F8F_LOGITS(H, QB)                                                                                    \
    extern "C" __global__ void __launch_bounds__(F8_THREADS, 2) fp8rf_logits_h##H##_q##QB(                  \
        const unsigned char* q8, const unsigned char* k8, const float* ks, const float* w, const int* ke,     \
        i64 M, i64 keysPerSplit, i64 rowsPerSeq, i64 seqKeys, const float* thr, uint2* pairs, int* counts,   \
        i64 capReg) {                                                                                        \
        ON_SM90A((fp8s_logits_body<H, QB, 1, 3, false, true>(q8, k8, ks, w, ke, M, keysPerSplit, 0,         \
                                                             rowsPerSeq, seqKeys, nullptr, 0, nullptr,       \
                                                             f8f_params{thr, pairs, counts, capReg})));      \
    }
// The fallback's kernels: fp8r_logits, run only when *gate is not zero.
#define F8G_LOGITS(H, QB)                                                                                    \
    extern "C" __global__ void __launch_bounds__(F8_THREADS, 2) fp8rg_logits_h##H##_q##QB(                  \
        const unsigned char* q8, const unsigned char* k8, const float* ks, const float* w, const int* ke,     \
        i64 M, i64 keysPerSplit, i64 ld, i64 rowsPerSeq, i64 seqKeys, float* out, const int* gate) {         \
        if (*gate == 0) return;                                                                              \
        ON_SM90A((fp8s_logits_body<H, QB, 1, 3>(q8, k8, ks, w, ke, M, keysPerSplit, ld, rowsPerSeq, seqKeys, \
                                                nullptr, 0, out)));                                          \
    }
F8F_LOGITS(8, 16)
F8F_LOGITS(16, 8)
F8F_LOGITS(32, 4)
F8F_LOGITS(64, 2)
F8F_LOGITS(8, 1)
F8F_LOGITS(16, 1)
F8F_LOGITS(32, 1)
F8F_LOGITS(64, 1)
F8G_LOGITS(8, 16)
F8G_LOGITS(16, 8)
F8G_LOGITS(32, 4)
F8G_LOGITS(64, 2)
F8G_LOGITS(8, 1)
F8G_LOGITS(16, 1)
F8G_LOGITS(32, 1)
F8G_LOGITS(64, 1)
