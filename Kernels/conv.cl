// Convolution as GEMM on packed operands (see gemm.cl for the panel layout and the
// compute kernels). For images x (N, Cin, H, W) the column matrix col has Kc = Cin*kH*kW
// rows and N*P columns (P = Ho*Wo): col[(c*kH + ki)*kW + kj, n*P + oh*Wo + ow] =
// x[n, c, oh*sh - ph + ki, ow*sw - pw + kj], or 0 in the padding. It is never stored:
//   forward          y (Cout, N*P) = W (Cout, Kc) * col          pack_im2col, orientation 0
//   backward-weights dW (Cout, Kc) = dY (Cout, N*P) * col^T      pack_batched 1, pack_im2col 1
//   backward-data    dcol (Kc, N*P) = W^T * dY, then col2im      pack_batched 0, col2im
// A transposed convolution is the same geometry run the other way round.

#define PACKED(dst, r, k, W, Kp) ((dst) + ((r) / (W)) * (Kp) * (W) + (k) * (W) + (r) % (W))


// Element (r, k) of the column matrix seen as an R x K operand: orientation 0 has r = column
// (n*P + p) and k = row (c, ki, kj); orientation 1 the other way round. Global size
// (Kp, Rp / S): work-item (k, s) writes the segment of S consecutive r from s * S (S
// divides the panel width), stepping the window position instead of dividing per element.
__kernel void pack_im2col(__global const float *x, int x_off, int C, int H, int W,
                          int kh, int kw, int sh, int sw, int ph, int pw, int Ho, int Wo,
                          int orientation, int R, int K, __global float *dst, int panel, int Rp, int Kp, int S) {
    const int k = get_global_id(0), r0 = get_global_id(1) * S;
    if (k >= Kp || r0 >= Rp) return;
    __global float *out = PACKED(dst, r0, k, panel, Kp);
    if (k >= K) {
        for (int t = 0; t < S; ++t) out[t] = 0.0f;
        return;
    }
    const int P = Ho * Wo;
    const __global float *image = x + x_off;
    if (orientation == 0) {
        // Fixed row (c, ki, kj); columns (n, oh, ow) step along the segment.
        const int c = k / (kh * kw), ki = (k / kw) % kh, kj = k % kw;
        int n = r0 / P, oh = (r0 % P) / Wo, ow = r0 % Wo;
        for (int t = 0; t < S; ++t) {
            float value = 0.0f;
            const int ih = oh * sh - ph + ki, iw = ow * sw - pw + kj;
            if (r0 + t < R && ih >= 0 && ih < H && iw >= 0 && iw < W) value = image[((n * C + c) * H + ih) * W + iw];
            out[t] = value;
            if (++ow == Wo) {
                ow = 0;
                if (++oh == Ho) {
                    oh = 0;
                    ++n;
                }
            }
        }
    } else {
        // Fixed column (n, oh, ow); rows (c, ki, kj) step along the segment.
        const int n = k / P, oh = (k % P) / Wo, ow = k % Wo;
        int c = r0 / (kh * kw), ki = (r0 / kw) % kh, kj = r0 % kw;
        for (int t = 0; t < S; ++t) {
            float value = 0.0f;
            const int ih = oh * sh - ph + ki, iw = ow * sw - pw + kj;
            if (r0 + t < R && ih >= 0 && ih < H && iw >= 0 && iw < W) value = image[((n * C + c) * H + ih) * W + iw];
            out[t] = value;
            if (++kj == kw) {
                kj = 0;
                if (++ki == kh) {
                    ki = 0;
                    ++c;
                }
            }
        }
    }
}

// Images (N, rows, P) seen as a rows x N*P matrix; orientation 0: r = column, k = row
// (backward-data's B), orientation 1: r = row, k = column (backward-weights' A).
__kernel void pack_batched(__global const float *src, int src_off, int rows, int P,
                           int orientation, int R, int K, __global float *dst, int panel, int Rp, int Kp, int S) {
    const int k = get_global_id(0), r0 = get_global_id(1) * S;
    if (k >= Kp || r0 >= Rp) return;
    __global float *out = PACKED(dst, r0, k, panel, Kp);
    if (k >= K) {
        for (int t = 0; t < S; ++t) out[t] = 0.0f;
        return;
    }
    const __global float *base = src + src_off;
    if (orientation == 0) {
        int n = r0 / P, p = r0 % P;
        for (int t = 0; t < S; ++t) {
            out[t] = r0 + t < R ? base[(n * rows + k) * P + p] : 0.0f;
            if (++p == P) {
                p = 0;
                ++n;
            }
        }
    } else {
        const int n = k / P, p = k % P;
        for (int t = 0; t < S; ++t) out[t] = r0 + t < R ? base[(n * rows + r0 + t) * P + p] : 0.0f;
    }
}

// dx (N, C, H, W) (+)= bias[c] + the column entries that im2col would have read from each
// element, gathered (no atomics, a fixed order). col is Kc x NP, row-major. Only the taps
// with (ih + ph - ki) divisible by sh are visited: ki = (ih + ph) % sh, then every sh-th.
// Global size (W, H, N * C).
__kernel void col2im(__global const float *col, int NP, int C, int H, int W, int kh, int kw,
                     int sh, int sw, int ph, int pw, int Ho, int Wo,
                     __global float *dx, int dx_off, __global const float *bias, int bias_off,
                     int has_bias, int accumulate) {
    const int iw = get_global_id(0), ih = get_global_id(1), nc = get_global_id(2);
    if (iw >= W || ih >= H) return;
    const int c = nc % C, n = nc / C;
    const int index = (nc * H + ih) * W + iw;
    const int P = Ho * Wo;
    float value = accumulate ? dx[dx_off + index] : 0.0f;
    if (has_bias) value += bias[bias_off + c];
    const int y = ih + ph, x = iw + pw;
    const int oh0 = y / sh, ow0 = x / sw;
    const int ki0 = y - oh0 * sh, kj0 = x - ow0 * sw;
    const __global float *base = col + (c * kh * kw) * NP + n * P;
    for (int ki = ki0, oh = oh0; ki < kh; ki += sh, --oh) {
        if (oh < 0) break;
        if (oh >= Ho) continue;
        for (int kj = kj0, ow = ow0; kj < kw; kj += sw, --ow) {
            if (ow < 0) break;
            if (ow >= Wo) continue;
            value += base[(ki * kw + kj) * NP + oh * Wo + ow];
        }
    }
    dx[dx_off + index] = value;
}

// ---------------------------------------------------------------------------------------
// Batch-inner convolution (CPU-class devices; the CPU backend's CPUConvBatchInner.swift).
// Images are transposed into a zero-padded layout with the batch innermost, rounded up to
// 16 lanes: element (c, h, w, n) at ((c * Hp + h + pt) * Wp + w + pl) * lanes + n. Then 16
// images at one position are one float16, and a convolution is an implicit GEMM whose B
// rows are read in place: no im2col panels, no col2im. Backward-data runs per stride phase
// (sub-pixel decomposition): an input position (ih, iw) with (ih + ph) % sh == a only gets
// the taps ki = a + sh * t, from gradient row (ih + ph) / sh - t.

// NCHW <-> batch-inner by 16 x 16 tiles through private memory: 16 images x 16 plane
// positions per work-item, vector loads on one side and vector stores on the other (one
// work-item per element would read or write with a stride of `lanes`). bi_pack_tiles fills
// the interior, spare lanes zeroed; bi_zero_pads zeroes the padding. bi_unpack_tiles adds
// bias[c] and, accumulating, what y holds. Global (ceil(H * W / 16), lanes / 16, C).
__kernel void bi_pack_tiles(__global const float *x, int x_off, int N, int C, int H, int W,
                            int pt, int pl, int Hp, int Wp, int lanes, __global float *dst) {
    const int p0 = get_global_id(0) * 16, n0 = get_global_id(1) * 16, c = get_global_id(2);
    const int plane = H * W;
    if (p0 >= plane) return;
    const int count = min(16, plane - p0);
    float tile[16][16];
    for (int t = 0; t < 16; ++t) {
        const int n = n0 + t;
        const __global float *row = x + x_off + (n * C + c) * plane + p0;
        if (n < N && count == 16) {
            vstore16(vload16(0, row), 0, tile[t]);
        } else {
            for (int i = 0; i < 16; ++i) tile[t][i] = (n < N && i < count) ? row[i] : 0.0f;
        }
    }
    for (int t = 0; t < count; ++t) {
        const int p = p0 + t, h = p / W, w = p % W;
        const float16 column = (float16)(tile[0][t], tile[1][t], tile[2][t], tile[3][t], tile[4][t], tile[5][t],
                                         tile[6][t], tile[7][t], tile[8][t], tile[9][t], tile[10][t], tile[11][t],
                                         tile[12][t], tile[13][t], tile[14][t], tile[15][t]);
        vstore16(column, 0, dst + ((c * Hp + h + pt) * Wp + w + pl) * lanes + n0);
    }
}

// Global (Wp, Hp, C * lanes / 16); positions inside the image write nothing.
__kernel void bi_zero_pads(int H, int W, int pt, int pl, int Hp, int Wp, int lanes, __global float *dst) {
    const int wp = get_global_id(0), hp = get_global_id(1), cb = get_global_id(2);
    if (wp >= Wp || hp >= Hp) return;
    if (hp >= pt && hp < pt + H && wp >= pl && wp < pl + W) return;
    const int blocks = lanes / 16, c = cb / blocks, n0 = (cb % blocks) * 16;
    vstore16((float16)(0.0f), 0, dst + ((c * Hp + hp) * Wp + wp) * lanes + n0);
}

// Global (ceil(H * W / 16), ceil(N / 16), C).
__kernel void bi_unpack_tiles(__global const float *src, int N, int C, int H, int W, int pt, int pl, int Hp, int Wp,
                              int lanes, __global float *y, int y_off, __global const float *bias, int bias_off,
                              int has_bias, int accumulate) {
    const int p0 = get_global_id(0) * 16, n0 = get_global_id(1) * 16, c = get_global_id(2);
    const int plane = H * W;
    if (p0 >= plane || n0 >= N) return;
    const int count = min(16, plane - p0);
    float tile[16][16];
    for (int t = 0; t < count; ++t) {
        const int p = p0 + t, h = p / W, w = p % W;
        vstore16(vload16(0, src + ((c * Hp + h + pt) * Wp + w + pl) * lanes + n0), 0, tile[t]);
    }
    const float shift = has_bias ? bias[bias_off + c] : 0.0f;
    for (int t = 0; t < 16; ++t) {
        const int n = n0 + t;
        if (n >= N) break;
        __global float *row = y + y_off + (n * C + c) * plane + p0;
        if (count == 16) {
            float16 value = (float16)(tile[0][t], tile[1][t], tile[2][t], tile[3][t], tile[4][t], tile[5][t],
                                      tile[6][t], tile[7][t], tile[8][t], tile[9][t], tile[10][t], tile[11][t],
                                      tile[12][t], tile[13][t], tile[14][t], tile[15][t]) + shift;
            if (accumulate) value += vload16(0, row);
            vstore16(value, 0, row);
        } else {
            for (int i = 0; i < count; ++i) row[i] = (accumulate ? row[i] : 0.0f) + tile[i][t] + shift;
        }
    }
}

// Forward: ys[co][oh][ow][lanes] = sum over (ci, ki, kj) of A[co][(ci, ki, kj)] * xs[ci][oh*sh + ki][ow*sw + kj]
// (xs padded by ph, pw). A packed in GEMM_ROWS-row panels as gemm_pack packs it. One work-item:
// GEMM_ROWS output channels x 16 lanes at one position. Global (lanes / 16, Ho * Wo, panels).
__kernel void bi_conv_forward(__global const float *xs, int Cin, int kh, int kw, int sh, int sw,
                              int rowStride, int channelStride, int lanes, int Wo,
                              __global const float *A, int K, int Cout, __global float *ys, int outChannel) {
    const int lane = get_global_id(0) * 16, pos = get_global_id(1), panel = get_global_id(2);
    const int oh = pos / Wo, ow = pos % Wo;
    const __global float *base = xs + (oh * sh) * rowStride + (ow * sw) * lanes + lane;
    const __global float *a = A + (size_t)panel * K * GEMM_ROWS;
    float16 acc[GEMM_ROWS];
#pragma unroll
    for (int r = 0; r < GEMM_ROWS; ++r) acc[r] = (float16)(0.0f);
    for (int ci = 0; ci < Cin; ++ci) {
        for (int ki = 0; ki < kh; ++ki) {
            block_fma(acc, a, base + ci * channelStride + ki * rowStride, kw, lanes);
            a += kw * GEMM_ROWS;
        }
    }
    __global float *out = ys + pos * lanes + lane;
#pragma unroll
    for (int r = 0; r < GEMM_ROWS; ++r) {
        const int co = panel * GEMM_ROWS + r;
        if (co < Cout) vstore16(acc[r], 0, out + co * outChannel);
    }
}

// Taps of stride phase `a` along one axis of a kernel of `k` taps and stride `s`.
inline int bi_taps(int a, int k, int s) { return a < k ? (k - a + s - 1) / s : 0; }

// Backward-data per phase: A[phase][ci][(co, t, u)] = W[co][ci][a + sh t][b + sw u] in GEMM_ROWS-row
// panels over ci, each phase at phase * phaseStride. Global (Cout * Tmax * Umax, panels, sh * sw).
__kernel void bi_pack_phase_weights(__global const float *w, int w_off, int Cin, int Cout, int kh, int kw,
                                    int sh, int sw, int phaseStride, __global float *dst) {
    const int k = get_global_id(0), panel = get_global_id(1), phase = get_global_id(2);
    const int pa = phase / sw, pb = phase % sw;
    const int T = bi_taps(pa, kh, sh), U = bi_taps(pb, kw, sw);
    const int K = Cout * T * U;
    if (k >= K) return;
    const int co = k / (T * U), t = (k / U) % T, u = k % U;
    const int ki = pa + sh * t, kj = pb + sw * u;
    __global float *out = dst + (size_t)phase * phaseStride + ((size_t)panel * K + k) * GEMM_ROWS;
    for (int r = 0; r < GEMM_ROWS; ++r) {
        const int ci = panel * GEMM_ROWS + r;
        out[r] = ci < Cin ? w[w_off + ((co * Cin + ci) * kh + ki) * kw + kj] : 0.0f;
    }
}

// Backward-data (a transposed convolution's forward): dxs[ci][ih][iw][lanes] from the padded
// gradient dys (padTop = Tmax - 1 rows above). Global (lanes / 16, H * W, panels over Cin).
__kernel void bi_conv_backward_data(__global const float *dys, int Cout, int kh, int kw, int sh, int sw,
                                    int ph, int pw, int rowStride, int channelStride, int lanes,
                                    int padTop, int padLeft, int W, __global const float *A, int phaseStride,
                                    int Cin, __global float *dxs, int outChannel) {
    const int lane = get_global_id(0) * 16, pos = get_global_id(1), panel = get_global_id(2);
    const int ih = pos / W, iw = pos % W;
    const int pa = (ih + ph) % sh, pb = (iw + pw) % sw;
    const int T = bi_taps(pa, kh, sh), U = bi_taps(pb, kw, sw);
    const int K = Cout * T * U;
    const __global float *base = dys + ((ih + ph) / sh + padTop) * rowStride + ((iw + pw) / sw + padLeft) * lanes + lane;
    const __global float *a = A + (size_t)(pa * sw + pb) * phaseStride + (size_t)panel * K * GEMM_ROWS;
    float16 acc[GEMM_ROWS];
#pragma unroll
    for (int r = 0; r < GEMM_ROWS; ++r) acc[r] = (float16)(0.0f);
    for (int co = 0; co < Cout; ++co) {
        for (int t = 0; t < T; ++t) {
            block_fma(acc, a, base + co * channelStride - t * rowStride, U, -lanes);
            a += U * GEMM_ROWS;
        }
    }
    __global float *out = dxs + pos * lanes + lane;
#pragma unroll
    for (int r = 0; r < GEMM_ROWS; ++r) {
        const int ci = panel * GEMM_ROWS + r;
        if (ci < Cin) vstore16(acc[r], 0, out + ci * outChannel);
    }
}

#ifndef BD_POS   // input positions per work-item of bi_conv_backward_data_narrow
#define BD_POS 4
#endif

// Backward-data into fewer channels than GEMM_ROWS (a decoder's last transposed conv,
// 64 -> 1), where bi_conv_backward_data would spend GEMM_ROWS - Cin of its rows on nothing:
// one channel ci x BD_POS positions iw0, iw0 + sw, ... of one row, all in one stride phase,
// so they share every weight and read neighbouring gradient columns. A as for
// bi_conv_backward_data (one panel). The taps run in the same order, so every element is
// the same float. Global (lanes / 16, H * sw * chunks, Cin), chunks = ceil(ceil(W / sw) / BD_POS).
__kernel void bi_conv_backward_data_narrow(__global const float *dys, int Cout, int kh, int kw, int sh, int sw,
                                           int ph, int pw, int rowStride, int channelStride, int lanes,
                                           int padTop, int padLeft, int W, __global const float *A, int phaseStride,
                                           __global float *dxs, int outChannel, int chunks) {
    const int lane = get_global_id(0) * 16, item = get_global_id(1), ci = get_global_id(2);
    const int chunk = item % chunks, q = (item / chunks) % sw, ih = item / (chunks * sw);
    const int iw0 = q + sw * chunk * BD_POS;
    if (iw0 >= W) return;
    const int count = min(BD_POS, (W - 1 - iw0) / sw + 1);
    const int pa = (ih + ph) % sh, pb = (iw0 + pw) % sw;
    const int T = bi_taps(pa, kh, sh), U = bi_taps(pb, kw, sw);
    const __global float *base = dys + ((ih + ph) / sh + padTop) * rowStride + ((iw0 + pw) / sw + padLeft) * lanes + lane;
    const __global float *a = A + (size_t)(pa * sw + pb) * phaseStride + ci;
    int column[BD_POS];   // positions past the row's end repeat its last one (never stored)
#pragma unroll
    for (int j = 0; j < BD_POS; ++j) column[j] = min(j, count - 1) * lanes;
    float16 acc[BD_POS];
#pragma unroll
    for (int j = 0; j < BD_POS; ++j) acc[j] = (float16)(0.0f);
    for (int co = 0; co < Cout; ++co) {
        for (int t = 0; t < T; ++t) {
            const __global float *b = base + co * channelStride - t * rowStride;
            for (int u = 0; u < U; ++u) {
                const float16 weight = (float16)(a[0]);
                a += GEMM_ROWS;
#pragma unroll
                for (int j = 0; j < BD_POS; ++j) acc[j] = fma(weight, vload16(0, b + column[j] - u * lanes), acc[j]);
            }
        }
    }
    __global float *out = dxs + ci * outChannel + (ih * W + iw0) * lanes + lane;
#pragma unroll
    for (int j = 0; j < BD_POS; ++j) {
        if (j < count) vstore16(acc[j], 0, out + j * sw * lanes);
    }
}

// The sum of a vector's lanes, halving it until one is left.
inline float bi_sum8(float8 v) {
    const float4 b = v.lo + v.hi;
    const float2 c = b.lo + b.hi;
    return c.x + c.y;
}
inline float bi_sum16(float16 v) { return bi_sum8(v.lo + v.hi); }

#ifndef BW_CO    // output channels per work-item of bi_conv_backward_weights
#define BW_CO 4
#endif
#ifndef BW_R     // (ci, ki, kj) rows per work-item of bi_conv_backward_weights
#define BW_R 4
#endif
#ifndef BW_WIDTH // images per vector there: 16, or 8 where a float16 takes two registers
#define BW_WIDTH 16
#endif
#if BW_WIDTH == 8
typedef float8 bw_vector;
#define bw_load vload8
#define bw_sum bi_sum8
#else
typedef float16 bw_vector;
#define bw_load vload16
#define bw_sum bi_sum16
#endif

// acc[i * BW_R + j] += rows[i][offset ...] * x[j] over BW_WIDTH lanes: one step of the
// weight-gradient blocks (bi_conv_backward_weights, winograd_multiply_nt), one row vector
// loaded at a time so that only BW_R inputs and one row stay in registers beside the sums.
inline void bw_step(bw_vector acc[BW_CO * BW_R], const __global float *rows[BW_CO], int offset, const bw_vector x[BW_R]) {
#pragma unroll
    for (int i = 0; i < BW_CO; ++i) {
        const bw_vector row = bw_load(0, rows[i] + offset);
#pragma unroll
        for (int j = 0; j < BW_R; ++j) acc[i * BW_R + j] = fma(row, x[j], acc[i * BW_R + j]);
    }
}

// Backward-weights: dW[co][r] (+)= sum over positions and lanes of dys[co][pos][n] * xs[base(pos) + offset(r)][n],
// r = (ci, ki, kj); dys unpadded (Cout, Ho * Wo, lanes), xs padded as for the forward pass.
// BW_CO x BW_R (co, r) per work-item in BW_WIDTH-lane partial sums over the images, added up
// at the end: BW_CO * BW_R accumulators, BW_R inputs and one gradient vector must stay in
// registers (4 x 4 float16 fill AVX-512's 32; AVX2's 16 ymm hold 4 x 3 float8).
// Global (ceil(R / BW_R), ceil(Cout / BW_CO)).
__kernel void bi_conv_backward_weights(__global const float *xs, int Cin, int kh, int kw, int sh, int sw,
                                       int rowStride, int channelStride, int lanes, int Ho, int Wo,
                                       __global const float *dys, int gradChannel, int Cout,
                                       __global float *dw, int dw_off, int accumulate) {
    const int r0 = get_global_id(0) * BW_R, co0 = get_global_id(1) * BW_CO;
    const int R = Cin * kh * kw;
    if (r0 >= R || co0 >= Cout) return;
    int offsets[BW_R];
    const __global float *g[BW_CO];
#pragma unroll
    for (int j = 0; j < BW_R; ++j) {
        const int r = min(r0 + j, R - 1);
        offsets[j] = (r / (kh * kw)) * channelStride + ((r / kw) % kh) * rowStride + (r % kw) * lanes;
    }
#pragma unroll
    for (int i = 0; i < BW_CO; ++i) g[i] = dys + min(co0 + i, Cout - 1) * gradChannel;
    bw_vector acc[BW_CO * BW_R];
#pragma unroll
    for (int i = 0; i < BW_CO * BW_R; ++i) acc[i] = (bw_vector)(0.0f);
    for (int oh = 0; oh < Ho; ++oh) {
        for (int ow = 0; ow < Wo; ++ow) {
            const __global float *xb = xs + (oh * sh) * rowStride + (ow * sw) * lanes;
            const int gp = (oh * Wo + ow) * lanes;
            for (int n = 0; n < lanes; n += BW_WIDTH) {
                bw_vector x[BW_R];
#pragma unroll
                for (int j = 0; j < BW_R; ++j) x[j] = bw_load(0, xb + offsets[j] + n);
                bw_step(acc, g, gp + n, x);
            }
        }
    }
    for (int i = 0; i < BW_CO; ++i) {
        const int co = co0 + i;
        if (co >= Cout) break;
        for (int j = 0; j < BW_R; ++j) {
            const int r = r0 + j;
            if (r >= R) break;
            const int index = dw_off + co * R + r;
            const float sum = bw_sum(acc[i * BW_R + j]);
            dw[index] = accumulate ? dw[index] + sum : sum;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions, forward and backward-data: the CPU
// backend's transforms (Sources/LatentCPU/CPUConvWinograd3x3.swift) on the batch-inner
// layout, 16 images per float16. A 4x4 output tile comes from a 6x6 input tile with 36
// multiplies per channel pair. Point e = 6x + y; column j = tile * lanes + image. The 36
// products M_e = U_e V_e run in one launch of winograd_multiply (gemm_block's scheme): U_e in
// GEMM_ROWS-row panels (k-major, rows past R zero), V_e and M_e row-major, J columns, each
// point's plane `plane` floats from the next (the host keeps planes off multiples of 4 KiB:
// a tile's 36 vectors, one per plane, would otherwise share one L1 set).
//     B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//     G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//     A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]

inline void w3_input6(const float16 d[6], float16 r[6]) {
    const float16 a = fma((float16)(-4.0f), d[2], d[4]), b = fma((float16)(-4.0f), d[1], d[3]);
    const float16 c = d[4] - d[2], e = 2.0f * (d[3] - d[1]);
    r[0] = fma((float16)(4.0f), d[0], fma((float16)(-5.0f), d[2], d[4]));
    r[1] = a + b; r[2] = a - b; r[3] = c + e; r[4] = c - e;
    r[5] = fma((float16)(4.0f), d[1], fma((float16)(-5.0f), d[3], d[5]));
}

inline void w3_output6(const float16 m[6], float16 r[4]) {
    const float16 s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
    r[0] = m[0] + s12 + s34;
    r[1] = fma((float16)(2.0f), d34, d12);
    r[2] = fma((float16)(4.0f), s34, s12);
    r[3] = fma((float16)(8.0f), d34, d12) + m[5];
}

inline void w3_filter3(const float16 g[3], float16 r[6]) {
    const float16 sixth = (float16)(1.0f / 6.0f), outer = g[0] + g[2];
    const float16 a = fma(sixth, g[2], (1.0f / 24.0f) * g[0]), b = (1.0f / 12.0f) * g[1];
    r[0] = 0.25f * g[0]; r[1] = -sixth * (outer + g[1]); r[2] = sixth * (g[1] - outer);
    r[3] = a + b; r[4] = a - b; r[5] = g[2];
}

// The first `count` (at most 16) lanes of v at target: one vector store when all 16 are wanted
// (the filter transforms' panel runs; the last run of a panel may be shorter).
inline void store_first(const float16 v, int count, __global float *target) {
    if (count == 16) {
        vstore16(v, 0, target);
    } else {
        float values[16];
        vstore16(v, 0, values);
        for (int l = 0; l < count; ++l) target[l] = values[l];
    }
}

// U[e] = G g G^T in GEMM_ROWS-row panels (`plane` >= Rp * K floats per point, rows past R
// zero) of the 3x3 filters (row, k): W[row][k] (forward) or, with `flip`, W[k][row] turned by
// 180 degrees (backward-data). A work-item transforms the 16 filters behind 16 consecutive
// floats of a panel (row fastest, then k) and stores each point's 16 values with one vector
// store, as w42_filters. Global (ceil(K * GEMM_ROWS / 16), Rp / GEMM_ROWS).
__kernel void w3_filters(__global const float *w, int w_off, int R, int K, int Rp, int flip, int plane, __global float *U) {
    const int first = get_global_id(0) * 16, panel = get_global_id(1), span = K * GEMM_ROWS;
    if (first >= span || panel * GEMM_ROWS >= Rp) return;
    const int count = min(16, span - first);
    float taps[9][16];
    for (int l = 0; l < 16; ++l) {
        const int index = first + l, k = index / GEMM_ROWS, row = panel * GEMM_ROWS + index % GEMM_ROWS;
        const bool inside = l < count && row < R;
        for (int ab = 0; ab < 9; ++ab) {
            taps[ab][l] = inside ? (flip ? w[w_off + (k * R + row) * 9 + 8 - ab] : w[w_off + (row * K + k) * 9 + ab]) : 0.0f;
        }
    }
    float16 g[9];
    for (int ab = 0; ab < 9; ++ab) g[ab] = vload16(0, taps[ab]);
    float16 c[3][6];
    for (int b = 0; b < 3; ++b) {
        const float16 column[3] = {g[b], g[3 + b], g[6 + b]};
        w3_filter3(column, c[b]);
    }
    __global float *u = U + (size_t)panel * span + first;
    for (int x = 0; x < 6; ++x) {
        const float16 row3[3] = {c[0][x], c[1][x], c[2][x]};
        float16 r[6];
        w3_filter3(row3, r);
        for (int y = 0; y < 6; ++y) {
            store_first(r[y], count, u + (size_t)(6 * x + y) * plane);
        }
    }
}

// V[e][c][tile * lanes + n0 ...] = B^T d B of the 6x6 tiles of 16 images at padded rows
// 4 th + s, columns 4 tw + v of channel c in a batch-inner layout that holds every such
// tile (rowStride, channelStride as BatchInnerLayout). Global (lanes / 16, tiles, C).
__kernel void w3_inputs(__global const float *xs, int rowStride, int channelStride, int lanes, int tilesW, int tiles,
                        int plane, __global float *V) {
    const int n0 = get_global_id(0) * 16, tile = get_global_id(1), c = get_global_id(2);
    const int h0 = (tile / tilesW) * 4, w0 = (tile % tilesW) * 4;
    const __global float *base = xs + (size_t)c * channelStride + h0 * rowStride + w0 * lanes + n0;
    float16 t[6][6];
    for (int v = 0; v < 6; ++v) {
        float16 d[6], r[6];
        for (int s = 0; s < 6; ++s) d[s] = vload16(0, base + s * rowStride + v * lanes);
        w3_input6(d, r);
        for (int x = 0; x < 6; ++x) t[x][v] = r[x];
    }
    const int J = tiles * lanes;
    __global float *out = V + (size_t)c * J + tile * lanes + n0;
    for (int x = 0; x < 6; ++x) {
        float16 r[6];
        w3_input6(t[x], r);
        for (int y = 0; y < 6; ++y) vstore16(r[y], 0, out + (size_t)(6 * x + y) * plane);
    }
}

// M_e (R x J, row-major) = A_e B_e for every point (36 for F(4x4, 3x3), 25 for F(4x4, 2x2)):
// A_e in GEMM_ROWS-row panels (K deep, `a_plane` floats per point), B_e row-major K x J.
// One work-item: GEMM_ROWS rows x 16 columns of one point. Global (J / 16, panels, points).
__kernel void winograd_multiply(__global const float *A, int a_plane, __global const float *B, int b_plane, int K, int J,
                          __global float *M, int m_plane, int R) {
    const int jb = get_global_id(0), panel = get_global_id(1), e = get_global_id(2);
    const __global float *a = A + (size_t)e * a_plane + (size_t)panel * K * GEMM_ROWS;
    const __global float *b = B + (size_t)e * b_plane + jb * 16;
    float16 acc[GEMM_ROWS];
#pragma unroll
    for (int r = 0; r < GEMM_ROWS; ++r) acc[r] = (float16)(0.0f);
    block_fma(acc, a, b, K, J);
    __global float *m = M + (size_t)e * m_plane + jb * 16;
#pragma unroll
    for (int r = 0; r < GEMM_ROWS; ++r) {
        const int row = panel * GEMM_ROWS + r;
        if (row < R) vstore16(acc[r], 0, m + (size_t)row * J);
    }
}

// ys (batch-inner, unpadded H x W, rowStride, channelStride) at (row, 4 th + i, 4 tw + j)
// = A^T M A of the products M[e][row][tile * lanes + n0 ...], inside the map.
// Global (lanes / 16, tiles, R).
__kernel void w3_outputs(__global const float *M, int plane, int lanes, int tilesW, int tiles, int H, int W,
                         int rowStride, int channelStride, __global float *ys) {
    const int n0 = get_global_id(0) * 16, tile = get_global_id(1), row = get_global_id(2);
    const int h0 = (tile / tilesW) * 4, w0 = (tile % tilesW) * 4;
    const int J = tiles * lanes;
    const __global float *m = M + (size_t)row * J + tile * lanes + n0;
    float16 t[4][6];
    for (int y = 0; y < 6; ++y) {
        float16 column[6], r[4];
        for (int x = 0; x < 6; ++x) column[x] = vload16(0, m + (size_t)(6 * x + y) * plane);
        w3_output6(column, r);
        for (int i = 0; i < 4; ++i) t[i][y] = r[i];
    }
    __global float *out = ys + (size_t)row * channelStride + n0;
    for (int i = 0; i < 4; ++i) {
        float16 r[4];
        w3_output6(t[i], r);
        const int oh = h0 + i;
        if (oh >= H) break;
        for (int jj = 0; jj < 4; ++jj) {
            const int ow = w0 + jj;
            if (ow >= W) break;
            vstore16(r[jj], 0, out + oh * rowStride + ow * lanes);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Winograd F(4x4, 2x2) for 4x4 stride-2 convolutions, forward and backward-data: the CPU
// backend's scheme (Sources/LatentCPU/CPUConvWinograd.swift). Forward: the four stride phases
// (p, q) of the input are extra channels, k = 4 ci + 2 p + q, each a 2x2 stride-1 correlation;
// backward-data: rows (phase (a, b), ci) of the input gradient over the phase grid, depth
// Cout. A 4x4 tile from a 5x5 input tile, 25 multiplies per channel pair instead of 64.
// Point e = 5x + y; the products run through winograd_multiply with 25 points.
//     B^T = [2 -1 -2 1 0; 0 -2 -1 1 0; 0 2 -3 1 0; 0 -1 0 1 0; 0 2 -1 -2 1]
//     G   = [1/2 0; -1/2 -1/2; -1/6 1/6; 1/6 1/3; 0 1]
//     A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 0; 0 1 -1 8 1]

inline void w42_input5(const float16 d[5], float16 r[5]) {
    r[0] = fma((float16)(2.0f), d[0] - d[2], d[3] - d[1]);
    r[1] = fma((float16)(-2.0f), d[1], d[3] - d[2]);
    r[2] = fma((float16)(2.0f), d[1] - d[2], d[3] - d[2]);
    r[3] = d[3] - d[1];
    r[4] = fma((float16)(2.0f), d[1] - d[3], d[4] - d[2]);
}

inline void w42_output5(const float16 m[5], float16 r[4]) {
    const float16 sum = m[1] + m[2], difference = m[1] - m[2];
    r[0] = m[0] + sum + m[3];
    r[1] = fma((float16)(2.0f), m[3], difference);
    r[2] = fma((float16)(4.0f), m[3], sum);
    r[3] = fma((float16)(8.0f), m[3], difference) + m[4];
}

// G along two taps (a first) -> five values, for 16 filters.
inline void w42_filter2(const float16 a, const float16 b, float16 r[5]) {
    const float16 sixth = (float16)(1.0f / 6.0f), third = (float16)(1.0f / 3.0f);
    r[0] = 0.5f * a; r[1] = -0.5f * (a + b); r[2] = sixth * (b - a); r[3] = fma(third, b, sixth * a); r[4] = b;
}

// U[e] = G g G^T in GEMM_ROWS-row panels (`plane` >= Rp * K floats per point, rows past R
// zero) of the 2x2 filters g (row, k), from the 4x4 weights W (Cout, Cin, 4, 4): forward
// (`backward` 0) row co, k = 4 ci + 2 p + q, taps (2a + p, 2b + q) for a, b in 0, 1;
// backward-data row (2a + b) Cin + ci, k = co, taps (a + 2 (1 - t), b + 2 (1 - u)) for t, u
// in 0, 1. A work-item transforms the 16 filters behind 16 consecutive floats of a panel
// (row fastest, then k) and stores each point's 16 values with one vector store.
// Global (ceil(K * GEMM_ROWS / 16), Rp / GEMM_ROWS).
__kernel void w42_filters(__global const float *w, int w_off, int R, int K, int Rp, int Cin, int backward, int plane,
                          __global float *U) {
    const int first = get_global_id(0) * 16, panel = get_global_id(1), span = K * GEMM_ROWS;
    if (first >= span || panel * GEMM_ROWS >= Rp) return;
    const int count = min(16, span - first);
    float taps[4][16];
    for (int l = 0; l < 16; ++l) {
        const int index = first + l, k = index / GEMM_ROWS, row = panel * GEMM_ROWS + index % GEMM_ROWS;
        float g00 = 0.0f, g01 = 0.0f, g10 = 0.0f, g11 = 0.0f;
        if (l < count && row < R) {
            if (backward) {
                const int phase = row / Cin, a = phase / 2, b = phase % 2;
                const __global float *g = w + w_off + (k * Cin + row % Cin) * 16;
                g00 = g[(a + 2) * 4 + b + 2]; g01 = g[(a + 2) * 4 + b]; g10 = g[a * 4 + b + 2]; g11 = g[a * 4 + b];
            } else {
                const int p = (k % 4) / 2, q = k % 2;
                const __global float *g = w + w_off + (row * Cin + k / 4) * 16;
                g00 = g[p * 4 + q]; g01 = g[p * 4 + 2 + q]; g10 = g[(2 + p) * 4 + q]; g11 = g[(2 + p) * 4 + 2 + q];
            }
        }
        taps[0][l] = g00; taps[1][l] = g01; taps[2][l] = g10; taps[3][l] = g11;
    }
    float16 left[5], right[5];
    w42_filter2(vload16(0, taps[0]), vload16(0, taps[2]), left);
    w42_filter2(vload16(0, taps[1]), vload16(0, taps[3]), right);
    __global float *u = U + (size_t)panel * span + first;
    for (int x = 0; x < 5; ++x) {
        float16 r[5];
        w42_filter2(left[x], right[x], r);
        for (int y = 0; y < 5; ++y) {
            store_first(r[y], count, u + (size_t)(5 * x + y) * plane);
        }
    }
}

// V[e][k][tile * lanes + n0 ...] (K x J per point, J = tiles * lanes) = B^T d B of the 5x5
// tiles of 16 images in xs, a batch-inner layout that holds every tile (rowStride,
// channelStride as BatchInnerLayout). With `phases` (forward) k = 4 c + 2 p + q reads padded
// rows 2 (4 th + s) + p and columns 2 (4 tw + v) + q of channel c; without (backward-data)
// k = c reads rows 4 th + s, columns 4 tw + v. Global (lanes / 16, tiles, K).
__kernel void w42_inputs(__global const float *xs, int rowStride, int channelStride, int lanes, int tilesW, int tiles,
                         int K, int phases, int plane, __global float *V) {
    const int n0 = get_global_id(0) * 16, tile = get_global_id(1), k = get_global_id(2);
    if (n0 >= lanes || tile >= tiles || k >= K) return;
    const int th = tile / tilesW, tw = tile % tilesW, step = phases ? 2 : 1;
    const int c = phases ? k / 4 : k;
    const int h0 = phases ? 8 * th + (k % 4) / 2 : 4 * th, w0 = phases ? 8 * tw + k % 2 : 4 * tw;
    const __global float *base = xs + (size_t)c * channelStride + h0 * rowStride + w0 * lanes + n0;
    float16 t[5][5];
    for (int v = 0; v < 5; ++v) {
        float16 d[5], r[5];
        for (int s = 0; s < 5; ++s) d[s] = vload16(0, base + step * (s * rowStride + v * lanes));
        w42_input5(d, r);
        for (int x = 0; x < 5; ++x) t[x][v] = r[x];
    }
    const int J = tiles * lanes;
    __global float *out = V + (size_t)k * J + tile * lanes + n0;
    for (int x = 0; x < 5; ++x) {
        float16 r[5];
        w42_input5(t[x], r);
        for (int y = 0; y < 5; ++y) vstore16(r[y], 0, out + (size_t)(5 * x + y) * plane);
    }
}

// The 4x4 outputs A^T M A of the products M[e][row][tile * lanes + n0 ...] (R x J per point)
// into ys (batch-inner, unpadded H x W, rowStride, channelStride). Without `phases`
// (forward) row c at (4 th + i, 4 tw + j); with (backward-data) row (2a + b) C + c at input
// (2 (4 th + i) + a - padH, 2 (4 tw + j) + b - padW) of channel c. Positions outside the map
// are dropped. Global (lanes / 16, tiles, R).
__kernel void w42_outputs(__global const float *M, int plane, int R, int lanes, int tilesW, int tiles, int H, int W,
                          int rowStride, int channelStride, int phases, int C, int padH, int padW, __global float *ys) {
    const int n0 = get_global_id(0) * 16, tile = get_global_id(1), row = get_global_id(2);
    if (n0 >= lanes || tile >= tiles || row >= R) return;
    const int th = tile / tilesW, tw = tile % tilesW, step = phases ? 2 : 1;
    const int J = tiles * lanes;
    const __global float *m = M + (size_t)row * J + tile * lanes + n0;
    float16 t[4][5];
    for (int y = 0; y < 5; ++y) {
        float16 column[5], r[4];
        for (int x = 0; x < 5; ++x) column[x] = vload16(0, m + (size_t)(5 * x + y) * plane);
        w42_output5(column, r);
        for (int i = 0; i < 4; ++i) t[i][y] = r[i];
    }
    const int c = phases ? row % C : row, phase = phases ? row / C : 0;
    const int h0 = phases ? 8 * th + phase / 2 - padH : 4 * th, w0 = phases ? 8 * tw + phase % 2 - padW : 4 * tw;
    __global float *out = ys + (size_t)c * channelStride + n0;
    for (int i = 0; i < 4; ++i) {
        float16 r[4];
        w42_output5(t[i], r);
        const int oh = h0 + step * i;
        if (oh < 0 || oh >= H) continue;
        for (int j = 0; j < 4; ++j) {
            const int ow = w0 + step * j;
            if (ow >= 0 && ow < W) vstore16(r[j], 0, out + oh * rowStride + ow * lanes);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The weight gradient of a 4x4 stride-2 convolution through F(4x4, 2x2), the adjoint of the
// forward pass (the CPU backend's winogradBackwardWeights): V the forward's input tiles
// (w42_inputs with phases, K = 4 Cin rows), dM = A dY A^T of the output gradient's 4x4 tiles,
// dU_e = dM_e V_e^T (a sum over J = tiles * lanes), and dW = G^T dU G per stride phase.

// A along four values -> five (the output transform's adjoint).
inline void w42_output_gradient4(const float16 d[4], float16 r[5]) {
    const float16 even = d[0] + d[2], odd = d[1] + d[3];
    r[0] = d[0]; r[1] = even + odd; r[2] = even - odd;
    r[3] = fma((float16)(8.0f), d[3], fma((float16)(4.0f), d[2], fma((float16)(2.0f), d[1], d[0]))); r[4] = d[3];
}

// D[e][co][tile * lanes + n0 ...] (Cout x J per point) = A dY A^T of the 4x4 tile (th, tw) of
// 16 images of dys (batch-inner, unpadded H x W, rowStride, channelStride), zero outside the
// map. Global (lanes / 16, tiles, Cout).
__kernel void w42_output_gradients(__global const float *dys, int rowStride, int channelStride, int lanes, int tilesW,
                                   int tiles, int Cout, int H, int W, int plane, __global float *D) {
    const int n0 = get_global_id(0) * 16, tile = get_global_id(1), co = get_global_id(2);
    if (n0 >= lanes || tile >= tiles || co >= Cout) return;
    const int h0 = (tile / tilesW) * 4, w0 = (tile % tilesW) * 4;
    const __global float *base = dys + (size_t)co * channelStride + n0;
    float16 t[5][4];
    for (int j = 0; j < 4; ++j) {
        float16 d[4], r[5];
        const int ow = w0 + j;
        for (int i = 0; i < 4; ++i) {
            const int oh = h0 + i;
            d[i] = (oh < H && ow < W) ? vload16(0, base + oh * rowStride + ow * lanes) : (float16)(0.0f);
        }
        w42_output_gradient4(d, r);
        for (int x = 0; x < 5; ++x) t[x][j] = r[x];
    }
    const int J = tiles * lanes;
    __global float *out = D + (size_t)co * J + tile * lanes + n0;
    for (int x = 0; x < 5; ++x) {
        float16 r[5];
        w42_output_gradient4(t[x], r);
        for (int y = 0; y < 5; ++y) vstore16(r[y], 0, out + (size_t)(5 * x + y) * plane);
    }
}

// C_e[r][k] (R x K per point, row-major) = sum over j < J of A_e[r][j] B_e[k][j], both operands
// row-major and J long: bi_conv_backward_weights' blocks, BW_CO rows x BW_R columns per
// work-item in BW_WIDTH-lane partial sums added up at the end. J a multiple of BW_WIDTH.
// Global (ceil(K / BW_R), ceil(R / BW_CO), points).
__kernel void winograd_multiply_nt(__global const float *A, int a_plane, __global const float *B, int b_plane, int J,
                                   int R, int K, __global float *C, int c_plane) {
    const int k0 = get_global_id(0) * BW_R, r0 = get_global_id(1) * BW_CO, e = get_global_id(2);
    if (k0 >= K || r0 >= R) return;
    const __global float *a[BW_CO];
    const __global float *b[BW_R];
#pragma unroll
    for (int i = 0; i < BW_CO; ++i) a[i] = A + (size_t)e * a_plane + (size_t)min(r0 + i, R - 1) * J;
#pragma unroll
    for (int l = 0; l < BW_R; ++l) b[l] = B + (size_t)e * b_plane + (size_t)min(k0 + l, K - 1) * J;
    bw_vector acc[BW_CO * BW_R];
#pragma unroll
    for (int i = 0; i < BW_CO * BW_R; ++i) acc[i] = (bw_vector)(0.0f);
    for (int j = 0; j < J; j += BW_WIDTH) {
        bw_vector x[BW_R];
#pragma unroll
        for (int l = 0; l < BW_R; ++l) x[l] = bw_load(0, b[l] + j);
        bw_step(acc, a, j, x);
    }
    __global float *c = C + (size_t)e * c_plane;
    for (int i = 0; i < BW_CO; ++i) {
        if (r0 + i >= R) break;
        for (int l = 0; l < BW_R; ++l) {
            if (k0 + l >= K) break;
            c[(size_t)(r0 + i) * K + k0 + l] = bw_sum(acc[i * BW_R + l]);
        }
    }
}

// G^T along five values -> two (the filter transform's adjoint), for 16 rows k.
inline void w42_filter_gradient5(const float16 u[5], float16 r[2]) {
    const float16 sixth = (float16)(1.0f / 6.0f);
    r[0] = 0.5f * (u[0] - u[1]) + sixth * (u[3] - u[2]);
    r[1] = fma((float16)(1.0f / 3.0f), u[3], fma(sixth, u[2], -0.5f * u[1])) + u[4];
}

// dW (Cout, Cin, 4, 4) at taps (2a + p, 2b + q) = (G^T dU G)[a][b] of dU[e][co][k], k = 4 ci +
// 2 p + q (Cout x K per point, K = 4 Cin); with `accumulate` added to what dW holds. A
// work-item takes 16 consecutive k of one co (four input channels' 16 taps each), reading each
// point's 16 values with one vector load. Global (ceil(K / 16), Cout).
__kernel void w42_weight_gradients(__global const float *U, int plane, int Cin, int Cout, __global float *dw, int dw_off,
                                   int accumulate) {
    const int k0 = get_global_id(0) * 16, co = get_global_id(1), K = 4 * Cin;
    if (k0 >= K || co >= Cout) return;
    const int count = min(16, K - k0);
    const __global float *u = U + (size_t)co * K + k0;
    float16 rows[5][2];
    for (int x = 0; x < 5; ++x) {
        float16 column[5];
        for (int y = 0; y < 5; ++y) {
            const __global float *point = u + (size_t)(5 * x + y) * plane;
            if (count == 16) {
                column[y] = vload16(0, point);
            } else {
                float values[16];
                for (int l = 0; l < 16; ++l) values[l] = l < count ? point[l] : 0.0f;
                column[y] = vload16(0, values);
            }
        }
        w42_filter_gradient5(column, rows[x]);
    }
    float taps[2][2][16];
    for (int b = 0; b < 2; ++b) {
        const float16 across[5] = {rows[0][b], rows[1][b], rows[2][b], rows[3][b], rows[4][b]};
        float16 g[2];
        w42_filter_gradient5(across, g);
        vstore16(g[0], 0, taps[0][b]);
        vstore16(g[1], 0, taps[1][b]);
    }
    __global float *out = dw + dw_off + (size_t)co * Cin * 16;
    for (int l = 0; l < count; ++l) {
        const int k = k0 + l, ci = k / 4, p = (k % 4) / 2, q = k % 2;
        for (int a = 0; a < 2; ++a) {
            for (int b = 0; b < 2; ++b) {
                const int index = ci * 16 + (2 * a + p) * 4 + 2 * b + q;
                out[index] = accumulate ? out[index] + taps[a][b][l] : taps[a][b][l];
            }
        }
    }
}
