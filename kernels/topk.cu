// topk.cu — row-wise top-k selection (DESIGN.md §1): the k highest scores of
// a row, ties to the lower index, returned as ascending indices; all of them
// when the row has ≤ k entries. Not a sort: a radix select over the
// order-preserving uint32 key of the fp32 score (score_key), then one
// stable compaction pass in index order.
//
// A row is either a prefix scores[row, 0:len) of a logits buffer (DSA, MISA,
// MISA† stage 1, HISA's top-m blocks) or a gather scores[row, cand[row, i]]
// over an ascending candidate list (MISA† re-rank of the k1 candidates by
// the all-heads score, HISA refinement); then the output holds cand values.
//
// FLOPs: none (integer compares). Bytes (floor): one read of the row
// (len·4, plus len·4 of candidates) and k·4 written: 268 MB for 1024 rows ×
// 65536. Version 1 reads the row five times (four 8-bit histogram passes,
// one compaction pass), mostly from L2.
//
// One CTA of 1024 threads per row. Pass p histograms bits [24−8p, 32−8p) of
// the keys that match the prefix found so far (256 shared-memory bins),
// warp 0 finds the bin holding the k-th largest key; after four passes the
// k-th key T is exact, with need = how many keys equal to T are taken (the
// lowest-index ones). The compaction takes tiles of 4096 in index order: a
// block-wide scan of (count > T, count == T) gives each element its output
// position gt_before + min(eq_before, need), so the output is ascending.

#define TK_THREADS 1024
#define TK_ITEMS 4

extern "C" __global__ void __launch_bounds__(TK_THREADS)
topk_rows(const float* __restrict__ scores, i64 ld, const int* __restrict__ cand, i64 candLd,
          const int* __restrict__ lens, i64 k, int* __restrict__ out, i64 outLd,
          int* __restrict__ outCount) {
    __shared__ u32 hist[256];
    __shared__ u32 scan_sh[33];
    __shared__ u32 sel_bin, sel_k;
    const i64 row = blockIdx.x;
    const int n = lens[row];
    const float* s = scores + row * ld;
    const int* c = cand ? cand + row * candLd : (const int*)0;
    int* o = out + row * outLd;
    if ((i64)n <= k) {
        for (int i = threadIdx.x; i < n; i += blockDim.x) o[i] = c ? c[i] : i;
        if (threadIdx.x == 0) outCount[row] = n;
        return;
    }
    u32 prefix = 0u, mask = 0u, kk = (u32)k;
    for (int pass = 0; pass < 4; ++pass) {
        const int shift = 24 - 8 * pass;
        for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0u;
        __syncthreads();
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            const u32 u = score_key(c ? s[c[i]] : s[i]);
            if ((u & mask) == prefix) atomicAdd(&hist[(u >> shift) & 255u], 1u);
        }
        __syncthreads();
        if (threadIdx.x < 32) {
            const int lane = threadIdx.x;
            u32 cnt[8];
            u32 sum = 0u;
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                cnt[j] = hist[255 - (lane * 8 + j)];
                sum += cnt[j];
            }
            const u32 inc = warp_inclusive_scan(sum);
            const u32 exc = inc - sum;
            if (exc < kk && kk <= inc) {
                u32 run = exc;
                bool found = false;
#pragma unroll
                for (int j = 0; j < 8; ++j) {
                    if (!found && run + cnt[j] >= kk) {
                        sel_bin = (u32)(255 - (lane * 8 + j));
                        sel_k = kk - run;
                        found = true;
                    }
                    run += cnt[j];
                }
            }
        }
        __syncthreads();
        prefix |= sel_bin << shift;
        mask |= 255u << shift;
        kk = sel_k;
        __syncthreads();
    }
    const u32 T = prefix, need = kk;
    u32 gtBefore = 0u, eqBefore = 0u;
    for (int base = 0; base < n; base += TK_THREADS * TK_ITEMS) {
        const int i0 = base + threadIdx.x * TK_ITEMS;
        u32 key[TK_ITEMS];
        u32 gt = 0u, eq = 0u;
#pragma unroll
        for (int j = 0; j < TK_ITEMS; ++j) {
            const int i = i0 + j;
            u32 u = 0u;
            if (i < n) {
                u = score_key(c ? s[c[i]] : s[i]);
                gt += u > T;
                eq += u == T;
            }
            key[j] = u;
        }
        u32 tot;
        const u32 ex = block_exclusive_scan(gt | (eq << 16), &tot, scan_sh);
        u32 g = gtBefore + (ex & 0xffffu), e = eqBefore + (ex >> 16);
#pragma unroll
        for (int j = 0; j < TK_ITEMS; ++j) {
            const int i = i0 + j;
            if (i < n) {
                const u32 u = key[j];
                if (u > T) {
                    o[g + min(e, need)] = c ? c[i] : i;
                    ++g;
                } else if (u == T) {
                    if (e < need) o[g + e] = c ? c[i] : i;
                    ++e;
                }
            }
        }
        gtBefore += tot & 0xffffu;
        eqBefore += tot >> 16;
    }
    if (threadIdx.x == 0) outCount[row] = (int)k;
}
