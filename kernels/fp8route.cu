// fp8route.cu — MISA's routed-head gather for the FP8 path: each row's h
// routed heads (ascending, from rank_heads) are copied into a dense
// [M][h][128] FP8 tensor with their weights, so that fp8_logits runs the
// routed scoring as an ordinary h-head problem (16 queries × 8 heads fill
// one 128-column tile).
//
// FLOPs: none. Bytes: M·h·(128 + 4) read and written (about 1 MB at
// 1024 rows × 8 heads).

extern "C" __global__ void fp8_gather_heads(const unsigned char* __restrict__ q8, const float* __restrict__ w,
                                            const int* __restrict__ heads, i64 M, i64 H, i64 h,
                                            unsigned char* __restrict__ q8r, float* __restrict__ wr) {
    const i64 m = blockIdx.x;
    if (m >= M) return;
    for (i64 i = threadIdx.x; i < h * 8; i += blockDim.x) {  // 16-byte chunks
        const i64 j = i / 8, ch = i % 8, hd = heads[m * h + j];
        const uint4 v = *(const uint4*)(q8 + (m * H + hd) * 128 + ch * 16);
        *(uint4*)(q8r + (m * h + j) * 128 + ch * 16) = v;
    }
    for (i64 j = threadIdx.x; j < h; j += blockDim.x) wr[m * h + j] = w[m * H + heads[m * h + j]];
}
