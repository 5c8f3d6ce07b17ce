// SGEMM: C = alpha * op(A) * op(B) + beta * C (+ bias[row]), in two steps.
//
// 1. gemm_pack copies each operand into a zero-padded "panel" layout: logical element
//    (r, k) of an R x K operand (A: r = row of C; B: r = column of C) goes to
//    dst[(r / W) * Kp * W + k * W + r % W]. A pack work-item writes a segment of S
//    consecutive r (S divides W), so index arithmetic is paid once per segment. Transposes, strides and offsets end here, so
//    the compute kernels read unit-stride, bounds-free data. (conv.cl packs im2col and
//    batched images straight into the same layout.)
// 2. A compute kernel, one per device class:
//    - gemm_block (CPU-class devices, e.g. PoCL): no local memory (it is ordinary memory
//      there), GEMM_ROWS x 16 of C per work-item in float16 registers, vload16 + fma.
//      Panels: W = GEMM_ROWS for A, 16 for B.
//    - gemm_tiled (GPUs): TILE_M x TILE_N of C per work-group, TILE_K-deep slices staged in
//      local memory, WPT_M x WPT_N per work-item. Panels: one panel (W = padded R).
//
// C is written through a column map so that convolutions can store (N, C, H, W) images
// directly: element (i, j) lives at c_off + (j / cp) * cbs + i * ldc + j % cp (a plain
// matrix has cp = N).

#ifndef TILE_M
#define TILE_M 64     // gemm_tiled: rows of C per work-group
#endif
#ifndef TILE_N
#define TILE_N 64     // gemm_tiled: columns of C per work-group
#endif
#ifndef TILE_K
#define TILE_K 16     // gemm_tiled: depth of one local-memory slice
#endif
#ifndef WPT_M
#define WPT_M 4       // gemm_tiled: rows of C per work-item
#endif
#ifndef WPT_N
#define WPT_N 4       // gemm_tiled: columns of C per work-item
#endif

#define RTS_M (TILE_M / WPT_M)
#define RTS_N (TILE_N / WPT_N)

// The packed position of element (r, k); S consecutive r (a segment) are contiguous there.
#define PACKED(dst, r, k, W, Kp) ((dst) + ((r) / (W)) * (Kp) * (W) + (k) * (W) + (r) % (W))

// Packs a strided matrix: element (r, k) at src[src_off + r * rs + k * ks]. Global size
// (Kp, Rp / S): work-item (k, s) writes the S elements r = s * S ... of depth k (S divides
// the panel width W, so a segment never crosses panels). Depth varies fastest, so that
// neighbouring work-items write neighbouring segments and read neighbouring source columns.
__kernel void gemm_pack(__global const float *src, int src_off, int rs, int ks, int R, int K,
                        __global float *dst, int W, int Rp, int Kp, int S) {
    const int k = get_global_id(0), r0 = get_global_id(1) * S;
    if (k >= Kp || r0 >= Rp) return;
    __global float *out = PACKED(dst, r0, k, W, Kp);
    if (S == 16 && rs == 1 && k < K && r0 + 16 <= R) {
        // A whole segment of a row-major source: one vector copy (PoCL ran the element loop
        // at a few GB/s: 1.33 -> 0.37 ms a step for the conv VAE's 64 x 6272 Linear input).
        vstore16(vload16(0, src + src_off + r0 + k * ks), 0, out);
        return;
    }
    for (int t = 0; t < S; ++t) {
        const int r = r0 + t;
        out[t] = (k < K && r < R) ? src[src_off + r * rs + k * ks] : 0.0f;
    }
}

// alpha * acc (+ beta * C) (+ bias[i]) into C through the column map.
inline void store_c(__global float *C, int index, float acc, float alpha, float beta, float shift) {
    float value = alpha * acc;
    if (beta != 0.0f) value = fma(beta, C[index], value);
    C[index] = value + shift;
}

__kernel void gemm_block(int K, __global const float *A, __global const float *B, int M, int N,
                         float alpha, float beta, __global float *C, int c_off, int ldc, int cp, int cbs,
                         __global const float *bias, int bias_off, int has_bias) {
    const int pj = get_global_id(0), pi = get_global_id(1);
    const int i0 = pi * GEMM_ROWS, j0 = pj * 16;
    if (i0 >= M || j0 >= N) return;
    const __global float *a = A + (size_t)pi * K * GEMM_ROWS;
    const __global float *b = B + (size_t)pj * K * 16;
    float16 acc[GEMM_ROWS];
#pragma unroll
    for (int r = 0; r < GEMM_ROWS; ++r) acc[r] = (float16)(0.0f);
    block_fma(acc, a, b, K, 16);
    const int jb = j0 / cp, jr = j0 % cp;
    if (jr + 16 <= cp && j0 + 16 <= N && i0 + GEMM_ROWS <= M) {
        // A whole tile inside one segment of the column map: vector stores.
        __global float *base = C + c_off + jb * cbs + jr;
#pragma unroll
        for (int r = 0; r < GEMM_ROWS; ++r) {
            __global float *row = base + (i0 + r) * ldc;
            float16 value = alpha * acc[r];
            if (beta != 0.0f) value = fma((float16)(beta), vload16(0, row), value);
            if (has_bias) value += (float16)(bias[bias_off + i0 + r]);
            vstore16(value, 0, row);
        }
        return;
    }
#pragma unroll
    for (int r = 0; r < GEMM_ROWS; ++r) {
        const int i = i0 + r;
        if (i >= M) break;
        const float shift = has_bias ? bias[bias_off + i] : 0.0f;
        float values[16];
        vstore16(acc[r], 0, values);
        for (int c = 0; c < 16; ++c) {
            const int j = j0 + c;
            if (j >= N) break;
            store_c(C, c_off + (j / cp) * cbs + i * ldc + j % cp, values[c], alpha, beta, shift);
        }
    }
}

// Global size (Np / WPT_N, Mp / WPT_M), local size (RTS_N, RTS_M); Mp, Np, Kp are multiples
// of TILE_M, TILE_N, TILE_K and A, B hold one panel each (W = Mp, W = Np).
__kernel __attribute__((reqd_work_group_size(RTS_N, RTS_M, 1)))
void gemm_tiled(int Kp, __global const float *A, __global const float *B, int M, int N, int Mp, int Np,
                float alpha, float beta, __global float *C, int c_off, int ldc, int cp, int cbs,
                __global const float *bias, int bias_off, int has_bias) {
    __local float As[TILE_K][TILE_M];
    __local float Bs[TILE_K][TILE_N];
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int tid = ty * RTS_N + tx;
    const int i0 = get_group_id(1) * TILE_M, j0 = get_group_id(0) * TILE_N;
    float acc[WPT_M][WPT_N];
#pragma unroll
    for (int r = 0; r < WPT_M; ++r)
#pragma unroll
        for (int c = 0; c < WPT_N; ++c) acc[r][c] = 0.0f;
    for (int kt = 0; kt < Kp; kt += TILE_K) {
        for (int l = tid; l < TILE_K * TILE_M; l += RTS_M * RTS_N)
            As[l / TILE_M][l % TILE_M] = A[(kt + l / TILE_M) * Mp + i0 + l % TILE_M];
        for (int l = tid; l < TILE_K * TILE_N; l += RTS_M * RTS_N)
            Bs[l / TILE_N][l % TILE_N] = B[(kt + l / TILE_N) * Np + j0 + l % TILE_N];
        barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
        for (int kk = 0; kk < TILE_K; ++kk) {
            float av[WPT_M], bv[WPT_N];
#pragma unroll
            for (int r = 0; r < WPT_M; ++r) av[r] = As[kk][ty + r * RTS_M];
#pragma unroll
            for (int c = 0; c < WPT_N; ++c) bv[c] = Bs[kk][tx + c * RTS_N];
#pragma unroll
            for (int r = 0; r < WPT_M; ++r)
#pragma unroll
                for (int c = 0; c < WPT_N; ++c) acc[r][c] = fma(av[r], bv[c], acc[r][c]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
#pragma unroll
    for (int r = 0; r < WPT_M; ++r) {
        const int i = i0 + ty + r * RTS_M;
        if (i >= M) continue;
        const float shift = has_bias ? bias[bias_off + i] : 0.0f;
#pragma unroll
        for (int c = 0; c < WPT_N; ++c) {
            const int j = j0 + tx + c * RTS_N;
            if (j < N) store_c(C, c_off + (j / cp) * cbs + i * ldc + j % cp, acc[r][c], alpha, beta, shift);
        }
    }
}
