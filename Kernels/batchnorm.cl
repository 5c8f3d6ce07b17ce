// Batch normalisation with PyTorch's semantics, one work-group (REDUCE_WG work-items) per
// channel: statistics over (N, H, W) with work-group reductions in acc_t, then every
// work-item normalises its own elements. Element e of a channel is x[(n*C + c)*S + s] with
// n = e / S, s = e % S (CHANNEL_LOOP). Hyperparameters that PyTorch handles in double (momentum, eps)
// come as double bit patterns, and as floats for devices without fp64.

#ifdef LATENT_ACC_DOUBLE
#define ACC_PARAM(bits, f) as_double(bits)
#else
#define ACC_PARAM(bits, f) (f)
#endif

// Visits a channel's elements e = lid, lid + REDUCE_WG, ... (the same order as dividing e
// into (n, s) each time) with `index` = x's index of element e, stepping (n, s) instead of
// dividing per element: integer division costs as much as the rest of the loop on a CPU.
#define CHANNEL_LOOP(body)                                                          \
    {                                                                               \
        int n_ = lid / spatial, s_ = lid % spatial;                                 \
        const int dn_ = REDUCE_WG / spatial, ds_ = REDUCE_WG % spatial;             \
        for (int e = lid; e < count; e += REDUCE_WG) {                              \
            const int index = (n_ * channels + c) * spatial + s_;                   \
            body                                                                    \
            s_ += ds_;                                                              \
            n_ += dn_;                                                              \
            if (s_ >= spatial) {                                                    \
                s_ -= spatial;                                                      \
                ++n_;                                                               \
            }                                                                       \
        }                                                                           \
    }

// Training: mean and biased variance (two passes, the first pass's rounding removed),
// running mean and unbiased running variance updated with momentum, mean and 1/sqrt(var + eps)
// saved, y = x * scale + shift.
__kernel void batchnorm_train(__global const float *x, int x_off, __global float *y, int y_off,
                              __global const float *gamma, int g_off, __global const float *beta, int b_off,
                              __global float *rmean, int rm_off, __global float *rvar, int rv_off,
                              __global float *smean, int sm_off, __global float *sinv, int si_off,
                              int batch, int channels, int spatial,
                              ulong momentum_bits, float momentum_f, ulong eps_bits, float eps_f) {
    __local acc_t scratch[REDUCE_WG];
    __local float affine[2];
    const int c = get_group_id(0), lid = get_local_id(0);
    const int count = batch * spatial;
    const acc_t n = (acc_t)count;
    acc_t sum = 0;
    CHANNEL_LOOP(sum += x[x_off + index];)
    sum = group_sum(sum, scratch);
    const float mean_f = (float)(sum / n);
    acc_t deviations = 0, squares = 0;
    CHANNEL_LOOP(
        const float d = x[x_off + index] - mean_f;
        deviations += d;
        squares += d * d;
    )
    deviations = group_sum(deviations, scratch);
    squares = group_sum(squares, scratch);
    if (lid == 0) {
        const acc_t m = ACC_PARAM(momentum_bits, momentum_f);
        const acc_t eps = ACC_PARAM(eps_bits, eps_f);
        const acc_t mean = sum / n;
        acc_t variance = (squares - deviations * deviations / n) / n;
        if (variance < 0) variance = 0;
        const acc_t inverse_std = 1 / sqrt(variance + eps);
        smean[sm_off + c] = (float)mean;
        sinv[si_off + c] = (float)inverse_std;
        rmean[rm_off + c] = (float)(m * mean + (1 - m) * (acc_t)rmean[rm_off + c]);
        rvar[rv_off + c] = (float)(m * (variance * n / (n - 1)) + (1 - m) * (acc_t)rvar[rv_off + c]);
        const float a = (float)inverse_std * gamma[g_off + c];
        affine[0] = a;
        affine[1] = beta[b_off + c] - (float)mean * a;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const float a = affine[0], shift = affine[1];
    CHANNEL_LOOP(y[y_off + index] = x[x_off + index] * a + shift;)
}

// Inference: one work-item per element, the running statistics.
__kernel void batchnorm_infer(__global const float *x, int x_off, __global float *y, int y_off,
                              __global const float *gamma, int g_off, __global const float *beta, int b_off,
                              __global const float *rmean, int rm_off, __global const float *rvar, int rv_off,
                              int channels, int spatial, int total, ulong eps_bits, float eps_f) {
    const int i = get_global_id(0);
    if (i >= total) return;
    const int c = (i / spatial) % channels;
    const acc_t eps = ACC_PARAM(eps_bits, eps_f);
    const float a = (float)(1 / sqrt((acc_t)rvar[rv_off + c] + eps)) * gamma[g_off + c];
    const float shift = beta[b_off + c] - rmean[rm_off + c] * a;
    y[y_off + i] = x[x_off + i] * a + shift;
}

// Backward (PyTorch): k = dot * invstd^2 / n, gradMean = sum(dy) / n,
// dx = (dy - gradMean - (x - mean) * k) * invstd * gamma; dgamma (+)= dot * invstd, dbeta (+)= sum(dy).
__kernel void batchnorm_backward(__global const float *dy, int dy_off, __global const float *x, int x_off,
                                 __global const float *gamma, int g_off, __global const float *smean, int sm_off,
                                 __global const float *sinv, int si_off, __global float *dx, int dx_off,
                                 __global float *dgamma, int dg_off, __global float *dbeta, int db_off,
                                 int batch, int channels, int spatial, int accumulate) {
    __local acc_t scratch[REDUCE_WG];
    const int c = get_group_id(0), lid = get_local_id(0);
    const int count = batch * spatial;
    const float mean = smean[sm_off + c], inverse_std = sinv[si_off + c];
    acc_t sum = 0, dot = 0;
    CHANNEL_LOOP(
        const float g = dy[dy_off + index];
        sum += g;
        dot += (x[x_off + index] - mean) * g;
    )
    sum = group_sum(sum, scratch);
    dot = group_sum(dot, scratch);
    const acc_t inv = (acc_t)inverse_std, n = (acc_t)count;
    const float k = (float)(dot * inv * inv / n);
    const float grad_mean = (float)(sum / n);
    const float factor = inverse_std * gamma[g_off + c];
    CHANNEL_LOOP(dx[dx_off + index] = (dy[dy_off + index] - grad_mean - (x[x_off + index] - mean) * k) * factor;)
    if (lid == 0) {
        dgamma[dg_off + c] = (accumulate ? dgamma[dg_off + c] : 0.0f) + (float)(dot * inv);
        dbeta[db_off + c] = (accumulate ? dbeta[db_off + c] : 0.0f) + (float)sum;
    }
}

// CPU-class devices (PoCL): one work-item per channel, each sample's row of `spatial` floats
// in float16 partial sums (as the CPU backend's vector loops), rows added up in acc_t. A
// work-group per channel spends its time in barriers and scalar strided loops there.
// lanes_sum, row_sum: common.clh.

// The arguments of the CPU-class training and backward kernels (per channel and per feature),
// as OpenCLBackend+BatchNorm.swift passes them.
#define BN_TRAIN_ARGS                                                                                   \
    __global const float *x, int x_off, __global float *y, int y_off, __global const float *gamma,     \
    int g_off, __global const float *beta, int b_off, __global float *rmean, int rm_off,               \
    __global float *rvar, int rv_off, __global float *smean, int sm_off, __global float *sinv,         \
    int si_off, int batch, int channels, int spatial, ulong momentum_bits, float momentum_f,            \
    ulong eps_bits, float eps_f
#define BN_BACKWARD_ARGS                                                                                \
    __global const float *dy, int dy_off, __global const float *x, int x_off, __global const float *gamma, \
    int g_off, __global const float *smean, int sm_off, __global const float *sinv, int si_off,         \
    __global float *dx, int dx_off, __global float *dgamma, int dg_off, __global float *dbeta,          \
    int db_off, int batch, int channels, int spatial, int accumulate

// Channel c's statistics from its sums over n values (the deviations and squares of x minus
// the float mean): saved mean and inverse standard deviation, running averages (unbiased
// variance); returns (a, shift) of y = x a + shift.
inline float2 bn_statistics(acc_t sum, acc_t deviations, acc_t squares, acc_t n, int c,
                            __global const float *gamma, __global const float *beta, __global float *rmean,
                            __global float *rvar, __global float *smean, __global float *sinv, acc_t m, acc_t eps) {
    const acc_t mean = sum / n;
    acc_t variance = (squares - deviations * deviations / n) / n;
    if (variance < 0) variance = 0;
    const acc_t inverse_std = 1 / sqrt(variance + eps);
    smean[c] = (float)mean;
    sinv[c] = (float)inverse_std;
    rmean[c] = (float)(m * mean + (1 - m) * (acc_t)rmean[c]);
    rvar[c] = (float)(m * (variance * n / (n - 1)) + (1 - m) * (acc_t)rvar[c]);
    const float a = (float)inverse_std * gamma[c];
    return (float2)(a, beta[c] - (float)mean * a);
}

// Channel c's parameter gradients from its sums over n values of dy (`sum`) and of
// (x - mean) dy (`dot`), added to dgamma and dbeta when accumulating; returns (k, grad_mean,
// factor) of dx = (dy - grad_mean - (x - mean) k) factor.
inline float3 bn_backward_terms(acc_t sum, acc_t dot, float inverse_std, acc_t n, int c, __global const float *gamma,
                                __global float *dgamma, __global float *dbeta, int accumulate) {
    const acc_t inv = (acc_t)inverse_std;
    dgamma[c] = (accumulate ? dgamma[c] : 0.0f) + (float)(dot * inv);
    dbeta[c] = (accumulate ? dbeta[c] : 0.0f) + (float)sum;
    return (float3)((float)(dot * inv * inv / n), (float)(sum / n), inverse_std * gamma[c]);
}

__kernel void batchnorm_train_channels(BN_TRAIN_ARGS) {
    const int c = get_global_id(0);
    if (c >= channels) return;
    const acc_t n = (acc_t)(batch * spatial);
    acc_t sum = 0;
    for (int b = 0; b < batch; ++b) sum += row_sum(x + x_off + (b * channels + c) * spatial, spatial);
    const float mean_f = (float)(sum / n);
    acc_t deviations = 0, squares = 0;
    for (int b = 0; b < batch; ++b) {
        const __global float *row = x + x_off + (b * channels + c) * spatial;
        float16 accD = (float16)(0.0f), accS = (float16)(0.0f);
        float tailD = 0.0f, tailS = 0.0f;
        int s = 0;
        for (; s + 16 <= spatial; s += 16) {
            const float16 d = vload16(0, row + s) - mean_f;
            accD += d;
            accS += d * d;
        }
        for (; s < spatial; ++s) {
            const float d = row[s] - mean_f;
            tailD += d;
            tailS += d * d;
        }
        deviations += lanes_sum(accD) + (acc_t)tailD;
        squares += lanes_sum(accS) + (acc_t)tailS;
    }
    const float2 affine = bn_statistics(sum, deviations, squares, n, c, gamma + g_off, beta + b_off, rmean + rm_off,
                                        rvar + rv_off, smean + sm_off, sinv + si_off,
                                        ACC_PARAM(momentum_bits, momentum_f), ACC_PARAM(eps_bits, eps_f));
    const float a = affine.x, shift = affine.y;
    for (int b = 0; b < batch; ++b) {
        const int offset = (b * channels + c) * spatial;
        int s = 0;
        for (; s + 16 <= spatial; s += 16) vstore16(vload16(0, x + x_off + offset + s) * a + shift, 0, y + y_off + offset + s);
        for (; s < spatial; ++s) y[y_off + offset + s] = x[x_off + offset + s] * a + shift;
    }
}

__kernel void batchnorm_backward_channels(BN_BACKWARD_ARGS) {
    const int c = get_global_id(0);
    if (c >= channels) return;
    const float mean = smean[sm_off + c], inverse_std = sinv[si_off + c];
    acc_t sum = 0, dot = 0;
    for (int b = 0; b < batch; ++b) {
        const int offset = (b * channels + c) * spatial;
        float16 accSum = (float16)(0.0f), accDot = (float16)(0.0f);
        float tailSum = 0.0f, tailDot = 0.0f;
        int s = 0;
        for (; s + 16 <= spatial; s += 16) {
            const float16 g = vload16(0, dy + dy_off + offset + s);
            accSum += g;
            accDot += (vload16(0, x + x_off + offset + s) - mean) * g;
        }
        for (; s < spatial; ++s) {
            const float g = dy[dy_off + offset + s];
            tailSum += g;
            tailDot += (x[x_off + offset + s] - mean) * g;
        }
        sum += lanes_sum(accSum) + (acc_t)tailSum;
        dot += lanes_sum(accDot) + (acc_t)tailDot;
    }
    const float3 terms = bn_backward_terms(sum, dot, inverse_std, (acc_t)(batch * spatial), c, gamma + g_off,
                                           dgamma + dg_off, dbeta + db_off, accumulate);
    const float k = terms.x, grad_mean = terms.y, factor = terms.z;
    for (int b = 0; b < batch; ++b) {
        const int offset = (b * channels + c) * spatial;
        int s = 0;
        for (; s + 16 <= spatial; s += 16) {
            const float16 g = vload16(0, dy + dy_off + offset + s), xv = vload16(0, x + x_off + offset + s);
            vstore16((g - grad_mean - (xv - mean) * k) * factor, 0, dx + dx_off + offset + s);
        }
        for (; s < spatial; ++s) {
            dx[dx_off + offset + s] = (dy[dy_off + offset + s] - grad_mean - (x[x_off + offset + s] - mean) * k) * factor;
        }
    }
}

// Fully connected layers (spatial 1) on CPU-class devices: one work-item per feature, the
// sums of batchnorm_train_channels / batchnorm_backward_channels in the same order, in plain
// loops over the batch that PoCL vectorises across work-items (neighbouring features are
// neighbouring floats). The per-channel kernels' float16 row loops, empty at spatial 1, kept
// them scalar: BatchNorm1d(6272) at batch 64 took 2.1-3.0 ms forward against the CPU's 0.25.
__kernel void batchnorm_train_features(BN_TRAIN_ARGS) {
    const int c = get_global_id(0);
    if (c >= channels) return;
    const __global float *column = x + x_off + c;
    acc_t sum = 0;
    for (int b = 0; b < batch; ++b) sum += (acc_t)column[b * channels];
    const acc_t n = (acc_t)batch;
    const float mean_f = (float)(sum / n);
    acc_t deviations = 0, squares = 0;
    for (int b = 0; b < batch; ++b) {
        const float d = column[b * channels] - mean_f;
        deviations += (acc_t)d;
        squares += (acc_t)(d * d);
    }
    const float2 affine = bn_statistics(sum, deviations, squares, n, c, gamma + g_off, beta + b_off, rmean + rm_off,
                                        rvar + rv_off, smean + sm_off, sinv + si_off,
                                        ACC_PARAM(momentum_bits, momentum_f), ACC_PARAM(eps_bits, eps_f));
    for (int b = 0; b < batch; ++b) y[y_off + b * channels + c] = column[b * channels] * affine.x + affine.y;
}

__kernel void batchnorm_backward_features(BN_BACKWARD_ARGS) {
    const int c = get_global_id(0);
    if (c >= channels) return;
    const float mean = smean[sm_off + c], inverse_std = sinv[si_off + c];
    acc_t sum = 0, dot = 0;
    for (int b = 0; b < batch; ++b) {
        const float g = dy[dy_off + b * channels + c];
        sum += (acc_t)g;
        dot += (acc_t)((x[x_off + b * channels + c] - mean) * g);
    }
    const float3 terms = bn_backward_terms(sum, dot, inverse_std, (acc_t)batch, c, gamma + g_off,
                                           dgamma + dg_off, dbeta + db_off, accumulate);
    for (int b = 0; b < batch; ++b) {
        const int index = b * channels + c;
        dx[dx_off + index] = (dy[dy_off + index] - terms.y - (x[x_off + index] - mean) * terms.x) * terms.z;
    }
}
