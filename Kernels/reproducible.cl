// Reproducible mode (`--reproducible`): every op that sums accumulates in double, in the
// order of the CPU backend's loops in Sources/LatentCPU/CPUBackend+Reproducible.swift, and
// rounds to float once. A product of two floats is exact in double, so the order alone fixes
// every bit and both backends give the same floats. One work-item per output (eight for the
// convolutions on CPU-class devices, the `_lanes` kernels): no sum is split, so a GPU runs
// these far below its peak; that is the price of the mode.
// Needs cl_khr_fp64 (the host refuses the mode on a device without it).

// Outputs per work-item of the `_lanes` kernels (CPU-class devices): one double8.
#define REPRO_LANES 8
// A double8's lanes as an array initialiser.
#define LANES_OF(v) {v.s0, v.s1, v.s2, v.s3, v.s4, v.s5, v.s6, v.s7}

// Convolution geometry in ConvGeometry's order.
#define GEOMETRY int batch, int cin, int h, int w, int cout, int kh, int kw, int sh, int sw, int ph, int pw, int ho, int wo

// C (m x n) = alpha * sum over k ascending of A(i, k) * B(k, j) + beta * C; global (n, m).
__kernel void repro_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                         __global const float *a, int a_off, int lda, __global const float *b, int b_off, int ldb,
                         float beta, __global float *c, int c_off, int ldc) {
    const int j = get_global_id(0), i = get_global_id(1);
    if (i >= m || j >= n) return;
    double acc = 0.0;
    for (int kk = 0; kk < k; ++kk) {
        const double av = trans_a ? a[a_off + kk * lda + i] : a[a_off + i * lda + kk];
        const double bv = trans_b ? b[b_off + j * ldb + kk] : b[b_off + kk * ldb + j];
        acc += av * bv;
    }
    const int at = c_off + i * ldc + j;
    c[at] = (float)(beta == 0.0f ? (double)alpha * acc : (double)alpha * acc + (double)beta * (double)c[at]);
}

// CPU-class devices: B (k x n as op(B)) copied to k rows of npad floats (zeros past n), for repro_gemm_lanes.
__kernel void repro_gemm_pack_b(int trans_b, int n, int k, __global const float *b, int b_off, int ldb, int npad,
                                __global float *packed) {
    const int j = get_global_id(0), kk = get_global_id(1);
    if (j >= npad || kk >= k) return;
    packed[kk * npad + j] = j < n ? (trans_b ? b[b_off + j * ldb + kk] : b[b_off + kk * ldb + j]) : 0.0f;
}

// repro_gemm for columns j0 .. j0 + 7 of row i, from the packed B; global (npad / 8, m).
__kernel void repro_gemm_lanes(int trans_a, int m, int n, int k, float alpha, __global const float *a, int a_off, int lda,
                               __global const float *packed, int npad, float beta, __global float *c, int c_off, int ldc) {
    const int j0 = get_global_id(0) * REPRO_LANES, i = get_global_id(1);
    if (i >= m || j0 >= npad) return;
    double8 acc = (double8)(0.0);
    for (int kk = 0; kk < k; ++kk) {
        const double av = trans_a ? a[a_off + kk * lda + i] : a[a_off + i * lda + kk];
        acc += av * convert_double8(vload8(0, packed + kk * npad + j0));
    }
    const double sums[REPRO_LANES] = LANES_OF(acc);
    for (int l = 0; l < REPRO_LANES && j0 + l < n; ++l) {
        const int at = c_off + i * ldc + j0 + l;
        c[at] = (float)(beta == 0.0f ? (double)alpha * sums[l] : (double)alpha * sums[l] + (double)beta * (double)c[at]);
    }
}

// y[n, co, oh, ow] = sum over ci, kh, kw (padding skipped) of x * w, then + bias[co].
__kernel void repro_conv_forward(GEOMETRY, __global const float *x, int x_off, __global const float *wt, int w_off,
                                 __global const float *bias, int bias_off, int has_bias, __global float *y, int y_off) {
    const int e = get_global_id(0);
    if (e >= batch * cout * ho * wo) return;
    const int ow = e % wo, oh = (e / wo) % ho, co = (e / (wo * ho)) % cout, n = e / (wo * ho * cout);
    double acc = 0.0;
    for (int ci = 0; ci < cin; ++ci) {
        for (int r = 0; r < kh; ++r) {
            const int ih = oh * sh - ph + r;
            if (ih < 0 || ih >= h) continue;
            for (int s = 0; s < kw; ++s) {
                const int iw = ow * sw - pw + s;
                if (iw < 0 || iw >= w) continue;
                acc += (double)wt[w_off + ((co * cin + ci) * kh + r) * kw + s] * (double)x[x_off + ((n * cin + ci) * h + ih) * w + iw];
            }
        }
    }
    if (has_bias) acc += (double)bias[bias_off + co];
    y[y_off + e] = (float)acc;
}

// dx[n, ci, ih, iw] = sum over co, kh, kw (the one (oh, ow) each tap meets) of dy * w, then
// + bias[ci] (a transposed convolution's forward pass), then + the old dx when accumulating.
__kernel void repro_conv_backward_data(GEOMETRY, __global const float *dy, int dy_off, __global const float *wt, int w_off,
                                       __global const float *bias, int bias_off, int has_bias,
                                       __global float *dx, int dx_off, int accumulate) {
    const int e = get_global_id(0);
    if (e >= batch * cin * h * w) return;
    const int iw = e % w, ih = (e / w) % h, ci = (e / (w * h)) % cin, n = e / (w * h * cin);
    // Only taps r = (ih + ph) mod sh + j * sh meet an output row (likewise s); ascending as the CPU's.
    const int r0 = (ih + ph) % sh, s0 = (iw + pw) % sw;
    double acc = 0.0;
    for (int co = 0; co < cout; ++co) {
        for (int r = r0; r < kh; r += sh) {
            const int th = ih + ph - r;
            if (th < 0) break;
            const int oh = th / sh;
            if (oh >= ho) continue;
            for (int s = s0; s < kw; s += sw) {
                const int tw = iw + pw - s;
                if (tw < 0) break;
                const int ow = tw / sw;
                if (ow >= wo) continue;
                acc += (double)wt[w_off + ((co * cin + ci) * kh + r) * kw + s] * (double)dy[dy_off + ((n * cout + co) * ho + oh) * wo + ow];
            }
        }
    }
    if (has_bias) acc += (double)bias[bias_off + ci];
    if (accumulate) acc += (double)dx[dx_off + e];
    dx[dx_off + e] = (float)acc;
}

// dw[co, ci, kh, kw] = sum over n, oh, ow (padding skipped) of dy * x, then + the old dw when accumulating.
__kernel void repro_conv_backward_weights(GEOMETRY, __global const float *x, int x_off, __global const float *dy, int dy_off,
                                          __global float *dw, int dw_off, int accumulate) {
    const int e = get_global_id(0);
    if (e >= cout * cin * kh * kw) return;
    const int s = e % kw, r = (e / kw) % kh, ci = (e / (kw * kh)) % cin, co = e / (kw * kh * cin);
    double acc = 0.0;
    for (int n = 0; n < batch; ++n) {
        for (int oh = 0; oh < ho; ++oh) {
            const int ih = oh * sh - ph + r;
            if (ih < 0 || ih >= h) continue;
            for (int ow = 0; ow < wo; ++ow) {
                const int iw = ow * sw - pw + s;
                if (iw < 0 || iw >= w) continue;
                acc += (double)dy[dy_off + ((n * cout + co) * ho + oh) * wo + ow] * (double)x[x_off + ((n * cin + ci) * h + ih) * w + iw];
            }
        }
    }
    if (accumulate) acc += (double)dw[dw_off + e];
    dw[dw_off + e] = (float)acc;
}

// CPU-class devices (PoCL): the three passes with eight outputs per work-item, the same
// sums in the same order, reading a copy of one operand with those eight outputs' values
// side by side (repro_lanes_last), so that a term is one vload8 and one double8 multiply-add
// rather than a work-item vectorisation across divergent loops.

// For each group g: dst[(g * length + e) * lanes + i] = src[(g * items + i) * length + e] for
// i < items, 0 for items <= i < lanes; global (length, lanes, groups).
__kernel void repro_lanes_last(__global const float *src, int src_off, int items, int length, int lanes, __global float *dst) {
    const int e = get_global_id(0), i = get_global_id(1), g = get_global_id(2);
    if (e >= length || i >= lanes) return;
    dst[(g * length + e) * lanes + i] = i < items ? src[src_off + (g * items + i) * length + e] : 0.0f;
}

// repro_conv_forward for images n0 .. n0 + 7 of one (co, oh, ow); xl is x as (ci, ih, iw) rows of npad images.
__kernel void repro_conv_forward_lanes(GEOMETRY, __global const float *xl, int npad, __global const float *wt, int w_off,
                                       __global const float *bias, int bias_off, int has_bias, __global float *y, int y_off) {
    const int blocks = npad / REPRO_LANES;
    const int e = get_global_id(0);
    if (e >= blocks * cout * ho * wo) return;
    const int n0 = (e % blocks) * REPRO_LANES, ow = (e / blocks) % wo, oh = (e / (blocks * wo)) % ho, co = e / (blocks * wo * ho);
    double8 acc = (double8)(0.0);
    for (int ci = 0; ci < cin; ++ci) {
        for (int r = 0; r < kh; ++r) {
            const int ih = oh * sh - ph + r;
            if (ih < 0 || ih >= h) continue;
            for (int s = 0; s < kw; ++s) {
                const int iw = ow * sw - pw + s;
                if (iw < 0 || iw >= w) continue;
                const double wv = wt[w_off + ((co * cin + ci) * kh + r) * kw + s];
                acc += wv * convert_double8(vload8(0, xl + ((ci * h + ih) * w + iw) * npad + n0));
            }
        }
    }
    const double sums[REPRO_LANES] = LANES_OF(acc);
    for (int l = 0; l < REPRO_LANES && n0 + l < batch; ++l)
        y[y_off + (((n0 + l) * cout + co) * ho + oh) * wo + ow] = (float)(has_bias ? sums[l] + (double)bias[bias_off + co] : sums[l]);
}

// repro_conv_backward_data for images n0 .. n0 + 7 of one (ci, ih, iw); dyl is dy as (co, oh, ow) rows of npad images.
__kernel void repro_conv_backward_data_lanes(GEOMETRY, __global const float *dyl, int npad, __global const float *wt, int w_off,
                                             __global const float *bias, int bias_off, int has_bias,
                                             __global float *dx, int dx_off, int accumulate) {
    const int blocks = npad / REPRO_LANES;
    const int e = get_global_id(0);
    if (e >= blocks * cin * h * w) return;
    const int n0 = (e % blocks) * REPRO_LANES, iw = (e / blocks) % w, ih = (e / (blocks * w)) % h, ci = e / (blocks * w * h);
    const int r0 = (ih + ph) % sh, s0 = (iw + pw) % sw;
    double8 acc = (double8)(0.0);
    for (int co = 0; co < cout; ++co) {
        for (int r = r0; r < kh; r += sh) {
            const int th = ih + ph - r;
            if (th < 0) break;
            const int oh = th / sh;
            if (oh >= ho) continue;
            for (int s = s0; s < kw; s += sw) {
                const int tw = iw + pw - s;
                if (tw < 0) break;
                const int ow = tw / sw;
                if (ow >= wo) continue;
                const double wv = wt[w_off + ((co * cin + ci) * kh + r) * kw + s];
                acc += wv * convert_double8(vload8(0, dyl + ((co * ho + oh) * wo + ow) * npad + n0));
            }
        }
    }
    const double sums[REPRO_LANES] = LANES_OF(acc);
    for (int l = 0; l < REPRO_LANES && n0 + l < batch; ++l) {
        const int at = dx_off + (((n0 + l) * cin + ci) * h + ih) * w + iw;
        double v = sums[l];
        if (has_bias) v += (double)bias[bias_off + ci];
        if (accumulate) v += (double)dx[at];
        dx[at] = (float)v;
    }
}

// repro_conv_backward_weights for input channels ci0 .. ci0 + 7 of one (co, kh, kw); xl is x as
// (n, ih, iw) rows of cpad channels.
__kernel void repro_conv_backward_weights_lanes(GEOMETRY, __global const float *xl, int cpad, __global const float *dy, int dy_off,
                                                __global float *dw, int dw_off, int accumulate) {
    const int blocks = cpad / REPRO_LANES;
    const int e = get_global_id(0);
    if (e >= blocks * cout * kh * kw) return;
    const int ci0 = (e % blocks) * REPRO_LANES, s = (e / blocks) % kw, r = (e / (blocks * kw)) % kh, co = e / (blocks * kw * kh);
    double8 acc = (double8)(0.0);
    for (int n = 0; n < batch; ++n) {
        for (int oh = 0; oh < ho; ++oh) {
            const int ih = oh * sh - ph + r;
            if (ih < 0 || ih >= h) continue;
            for (int ow = 0; ow < wo; ++ow) {
                const int iw = ow * sw - pw + s;
                if (iw < 0 || iw >= w) continue;
                const double d = dy[dy_off + ((n * cout + co) * ho + oh) * wo + ow];
                acc += d * convert_double8(vload8(0, xl + ((n * h + ih) * w + iw) * cpad + ci0));
            }
        }
    }
    const double sums[REPRO_LANES] = LANES_OF(acc);
    for (int l = 0; l < REPRO_LANES && ci0 + l < cin; ++l) {
        const int at = dw_off + ((co * cin + ci0 + l) * kh + r) * kw + s;
        dw[at] = (float)(accumulate ? sums[l] + (double)dw[at] : sums[l]);
    }
}

// The sum over n, s in order of x[n, c, s] (batch norm's mean, channel sums).
inline double repro_channel_total(__global const float *x, int x_off, int c, int batch, int channels, int spatial) {
    double sum = 0.0;
    for (int n = 0; n < batch; ++n)
        for (int s = 0; s < spatial; ++s) sum += (double)x[x_off + (n * channels + c) * spatial + s];
    return sum;
}

// One work-item per channel c, over (n, s) in order: the mean, the biased variance as the mean
// of (x - mean)^2, invstd = 1 / sqrt(var + eps); y = (x - mean) * invstd * gamma + beta.
// momentum and eps arrive as the bits of doubles.
__kernel void repro_batchnorm_training(__global const float *x, int x_off, __global float *y, int y_off,
                                       __global const float *gamma, int gamma_off, __global const float *beta, int beta_off,
                                       __global float *rmean, int rmean_off, __global float *rvar, int rvar_off,
                                       __global float *smean, int smean_off, __global float *sinv, int sinv_off,
                                       int batch, int channels, int spatial, ulong momentum_bits, ulong eps_bits) {
    const int c = get_global_id(0);
    if (c >= channels) return;
    const double momentum = as_double(momentum_bits), eps = as_double(eps_bits);
    const double count = (double)(batch * spatial);
    const double mean = repro_channel_total(x, x_off, c, batch, channels, spatial) / count;
    double squares = 0.0;
    for (int n = 0; n < batch; ++n)
        for (int s = 0; s < spatial; ++s) {
            const double d = (double)x[x_off + (n * channels + c) * spatial + s] - mean;
            squares += d * d;
        }
    const double variance = squares / count;
    const double inv = 1.0 / sqrt(variance + eps);
    smean[smean_off + c] = (float)mean;
    sinv[sinv_off + c] = (float)inv;
    rmean[rmean_off + c] = (float)(momentum * mean + (1.0 - momentum) * (double)rmean[rmean_off + c]);
    rvar[rvar_off + c] = (float)(momentum * (variance * count / (count - 1.0)) + (1.0 - momentum) * (double)rvar[rvar_off + c]);
    const double g = gamma[gamma_off + c], b = beta[beta_off + c];
    for (int n = 0; n < batch; ++n)
        for (int s = 0; s < spatial; ++s) {
            const int at = (n * channels + c) * spatial + s;
            y[y_off + at] = (float)(((double)x[x_off + at] - mean) * inv * g + b);
        }
}

// y = (x - running mean) * (1 / sqrt(running var + eps)) * gamma + beta, one work-item per element.
__kernel void repro_batchnorm_inference(__global const float *x, int x_off, __global float *y, int y_off,
                                        __global const float *gamma, int gamma_off, __global const float *beta, int beta_off,
                                        __global const float *rmean, int rmean_off, __global const float *rvar, int rvar_off,
                                        int batch, int channels, int spatial, ulong eps_bits) {
    const int e = get_global_id(0);
    if (e >= batch * channels * spatial) return;
    const int c = (e / spatial) % channels;
    const double inv = 1.0 / sqrt((double)rvar[rvar_off + c] + as_double(eps_bits));
    y[y_off + e] = (float)(((double)x[x_off + e] - (double)rmean[rmean_off + c]) * inv * (double)gamma[gamma_off + c]
                           + (double)beta[beta_off + c]);
}

// One work-item per channel, over (n, s) in order, from the saved mean and invstd:
// sum = sum(dy), dot = sum((x - mean) * dy); dx = (dy - sum / M - (x - mean) * (dot * invstd^2 / M)) * invstd * gamma;
// dgamma (+)= dot * invstd, dbeta (+)= sum.
__kernel void repro_batchnorm_backward(__global const float *dy, int dy_off, __global const float *x, int x_off,
                                       __global const float *gamma, int gamma_off,
                                       __global const float *smean, int smean_off, __global const float *sinv, int sinv_off,
                                       __global float *dx, int dx_off, __global float *dgamma, int dgamma_off,
                                       __global float *dbeta, int dbeta_off, int batch, int channels, int spatial, int accumulate) {
    const int c = get_global_id(0);
    if (c >= channels) return;
    const double count = (double)(batch * spatial);
    const double mean = smean[smean_off + c], inv = sinv[sinv_off + c];
    double sum = 0.0, dot = 0.0;
    for (int n = 0; n < batch; ++n)
        for (int s = 0; s < spatial; ++s) {
            const int at = (n * channels + c) * spatial + s;
            const double d = dy[dy_off + at];
            sum += d;
            dot += ((double)x[x_off + at] - mean) * d;
        }
    const double grad_mean = sum / count, k = dot * inv * inv / count;
    const double g = gamma[gamma_off + c];
    for (int n = 0; n < batch; ++n)
        for (int s = 0; s < spatial; ++s) {
            const int at = (n * channels + c) * spatial + s;
            const double centred = (double)x[x_off + at] - mean;
            dx[dx_off + at] = (float)(((double)dy[dy_off + at] - grad_mean - centred * k) * inv * g);
        }
    dgamma[dgamma_off + c] = (float)(accumulate ? dot * inv + (double)dgamma[dgamma_off + c] : dot * inv);
    dbeta[dbeta_off + c] = (float)(accumulate ? sum + (double)dbeta[dbeta_off + c] : sum);
}

// out[c] (+)= sum over n, s in order of x[n, c, s]; one work-item per channel.
__kernel void repro_channel_sum(__global const float *x, int x_off, int batch, int channels, int spatial,
                                __global float *out, int out_off, int accumulate) {
    const int c = get_global_id(0);
    if (c >= channels) return;
    const double sum = repro_channel_total(x, x_off, c, batch, channels, spatial);
    out[out_off + c] = (float)(accumulate ? sum + (double)out[out_off + c] : sum);
}

// out[0] = sum of x in index order; a single work-item.
__kernel void repro_sum(__global const float *x, int x_off, int n, __global float *out, int out_off) {
    if (get_global_id(0) != 0) return;
    double total = 0.0;
    for (int i = 0; i < n; ++i) total += (double)x[x_off + i];
    out[out_off] = (float)total;
}

// Loss kinds: 0 BCE, 1 BCE with logits, 2 MSE, 3 L1 (LossKind's order).
inline double repro_loss_term(int kind, double p, double t) {
    switch (kind) {
    case 0: {
        const double log_p = log(p), log_1mp = log1p(-p);
        return (t - 1.0) * (log_1mp < -100.0 ? -100.0 : log_1mp) - t * (log_p < -100.0 ? -100.0 : log_p);
    }
    case 1: return (p > 0.0 ? p : 0.0) - p * t + log1p(exp(-fabs(p)));
    case 2: { const double d = p - t; return d * d; }
    default: return fabs(p - t);
    }
}

// out[0] = the loss summed in index order (divided by n for a mean); a single work-item.
__kernel void repro_loss_forward(int kind, __global const float *p, int p_off, __global const float *t, int t_off,
                                 int n, int mean, __global float *out, int out_off) {
    if (get_global_id(0) != 0) return;
    double total = 0.0;
    for (int i = 0; i < n; ++i) total += repro_loss_term(kind, p[p_off + i], t[t_off + i]);
    out[out_off] = (float)(mean ? (n == 0 ? NAN : total / (double)n) : total);
}

// g (+)= scale * d(loss)/d(p) (/ n for a mean), one rounding; scale arrives as a float.
__kernel void repro_loss_backward(int kind, __global const float *p, int p_off, __global const float *t, int t_off,
                                  __global float *g, int g_off, float scale, int mean, int accumulate, int n) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const double x = p[p_off + i], y = t[t_off + i], sc = scale;
    double v;
    switch (kind) {
    case 0: {
        const double denominator = (1.0 - x) * x;
        v = sc * (x - y) / (denominator < 1e-12 ? 1e-12 : denominator);
        break;
    }
    case 1: v = (1.0 / (1.0 + exp(-x)) - y) * sc; break;
    case 2: v = 2.0 * (x - y) * sc; break;
    default: v = (x > y ? 1.0 : (x < y ? -1.0 : 0.0)) * sc;
    }
    if (mean) v /= (double)n;
    if (accumulate) v += (double)g[g_off + i];
    g[g_off + i] = (float)v;
}

// out[0] = the KL term summed in index order; parameterisations 0 log-variance, 1 log-std, 2 std.
__kernel void repro_kl_forward(int parameterization, __global const float *mu, int mu_off, __global const float *p, int p_off,
                               int n, __global float *out, int out_off) {
    if (get_global_id(0) != 0) return;
    double total = 0.0;
    for (int i = 0; i < n; ++i) {
        const double m = mu[mu_off + i], q = p[p_off + i];
        switch (parameterization) {
        case 0: total += 1.0 + q - m * m - exp(q); break;
        case 1: total += 1.0 + 2.0 * q - m * m - exp(2.0 * q); break;
        default: total += 0.5 * (q * q + m * m - 1.0) - log(q);
        }
    }
    out[out_off] = (float)(parameterization == 2 ? total : -0.5 * total);
}

// y = alpha * x + beta * y with one rounding (beta 0: y not read).
__kernel void repro_axpby(float alpha, __global const float *x, int x_off, float beta, __global float *y, int y_off, int n) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const double value = (double)alpha * (double)x[x_off + i];
    y[y_off + i] = (float)(beta == 0.0f ? value : value + (double)beta * (double)y[y_off + i]);
}

// indices[r] = the entry with the least sum over i in order of (x - e)^2; ties to the lowest index.
__kernel void repro_nearest_codebook(__global const float *x, int x_off, __global const float *table, int table_off,
                                     __global float *indices, int indices_off, int rows, int entries, int width) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    double best = INFINITY;
    int best_index = 0;
    for (int e = 0; e < entries; ++e) {
        double distance = 0.0;
        for (int i = 0; i < width; ++i) {
            const double d = (double)x[x_off + r * width + i] - (double)table[table_off + e * width + i];
            distance += d * d;
        }
        if (distance < best) {
            best = distance;
            best_index = e;
        }
    }
    indices[indices_off + r] = (float)best_index;
}
