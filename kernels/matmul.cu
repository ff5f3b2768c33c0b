// matmul.cu — the projections of `misabench trace convert` (convert.Project,
// research/papers.md §1.2): k = wk·x for every key row, q = wq_b·qr and
// w = weights_proj·x for the query rows, as one product Y = X·Aᵀ each.
//
// matmul_t: Y[n][m] = Σ_j X[n][j]·A[m][j] for X [N][K] and A [M][K] fp32
//   row-major, Y [N][M] fp32. FLOPs: 2·N·M·K, executed as N·M·K float64
//   FMAs (DFMA; 1.2e11 for k = wk·x at N = 128K, M = 128, K = 7168, about
//   4 ms at the H100's FP64 peak). Bytes: X read ⌈M/64⌉ times (3.7 GB per
//   read at the shape above; ≤ 1 GiB per call, the Go side chunks N), A
//   read ⌈N/64⌉ times (mostly from L2: 3.7 MB for wk, 50 MB for wq_b),
//   Y written once (N·M·4). The host↔device copies of X (PCIe) dominate.
//
// Arithmetic contract: the result is convert.matVec's, bit for bit. A
// product of two fp32 values is exact in float64, so a fused multiply-add
// rounds exactly as matVec's separate multiply and add; what remains is the
// order of the sums, which is matVec's: four partial sums, term j going to
// partial j mod 4 for j < K4 = K − K mod 4, the last K mod 4 terms to
// partial 0 in ascending order, then ((s0 + s1) + s2) + s3 rounded once to
// fp32 (round to nearest even).
//
// Tiling: a block of 256 threads computes a 64×64 tile of Y; each thread
// 4×4 outputs (rows ty + 16i, columns tx + 16j, so that a warp's stores
// cover 16 consecutive columns), each with four float64 partial sums. The
// K dimension is walked in tiles of 32 staged in shared memory as float64
// (X and A tiles transposed, 32 KB); ragged edges are zero-filled, and a
// zero product added to a partial sum leaves it unchanged (no partial sum
// is ever −0). The last K mod 4 terms are read from global memory after
// the tiled loop.

#define MM_BN 64   // rows of X per block
#define MM_BM 64   // rows of A per block
#define MM_BK 32   // K per shared-memory tile (a multiple of 4)
#define MM_PAD 1   // breaks bank conflicts of the transposed stores

extern "C" __global__ void __launch_bounds__(256)
matmul_t(const float* __restrict__ X, const float* __restrict__ A, i64 N, i64 M, i64 K,
         float* __restrict__ Y) {
    __shared__ double xs[MM_BK][MM_BN + MM_PAD];
    __shared__ double as[MM_BK][MM_BM + MM_PAD];
    const int tid = threadIdx.x;
    const int tx = tid & 15, ty = tid >> 4;
    const i64 n0 = (i64)blockIdx.x * MM_BN, m0 = (i64)blockIdx.y * MM_BM;
    const i64 K4 = K - (K & 3);

    double acc[4][4][4];  // [partial][i][j]
#pragma unroll
    for (int p = 0; p < 4; ++p)
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) acc[p][i][j] = 0.0;

    // Tile loads: thread tid loads column c = tid % 32 of rows
    // tid / 32 + 8r, r < 8, of both tiles (128-byte row segments).
    const int lc = tid & (MM_BK - 1), lr = tid >> 5;
    for (i64 k0 = 0; k0 < K4; k0 += MM_BK) {
        const i64 col = k0 + lc;
        const bool colOK = col < K4;
#pragma unroll
        for (int r = 0; r < MM_BN / 8; ++r) {
            const int row = lr + 8 * r;
            const i64 n = n0 + row, m = m0 + row;
            xs[lc][row] = (colOK && n < N) ? (double)X[n * K + col] : 0.0;
            as[lc][row] = (colOK && m < M) ? (double)A[m * K + col] : 0.0;
        }
        __syncthreads();
#pragma unroll 2
        for (int kk = 0; kk < MM_BK; kk += 4) {
#pragma unroll
            for (int p = 0; p < 4; ++p) {
                double xv[4], av[4];
#pragma unroll
                for (int i = 0; i < 4; ++i) xv[i] = xs[kk + p][ty + 16 * i];
#pragma unroll
                for (int j = 0; j < 4; ++j) av[j] = as[kk + p][tx + 16 * j];
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j) acc[p][i][j] = __fma_rn(xv[i], av[j], acc[p][i][j]);
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const i64 n = n0 + ty + 16 * i;
        if (n >= N) continue;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const i64 m = m0 + tx + 16 * j;
            if (m >= M) continue;
            double s0 = acc[0][i][j];
            for (i64 c = K4; c < K; ++c) s0 = __fma_rn((double)X[n * K + c], (double)A[m * K + c], s0);
            const double s = __dadd_rn(__dadd_rn(__dadd_rn(s0, acc[1][i][j]), acc[2][i][j]), acc[3][i][j]);
            Y[n * M + m] = __double2float_rn(s);
        }
    }
}
