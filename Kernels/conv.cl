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
