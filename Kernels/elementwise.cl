// Elementwise ops, one work-item per run of EW_VEC elements (FOR_ELEMENTS) or, where the
// launch has more dimensions, per element (dropout: per Philox block of four). Every op may
// run in place: each element is read before it is written. Activation codes:
// 0 identity, 1 relu, 2 leaky relu (slope), 3 sigmoid, 4 tanh, 5 softplus.

__kernel void fill(__global float *d, int d_off, int n, float value) {
    FOR_ELEMENTS(i, n) d[d_off + i] = value;
}

__kernel void copy(__global const float *s, int s_off, __global float *d, int d_off, int n) {
    FOR_ELEMENTS(i, n) d[d_off + i] = s[s_off + i];
}

// Global size (length, count): run b of `length` floats from s[b * s_stride] to d[b * d_stride].
__kernel void copy_blocks(__global const float *s, int s_off, int s_stride, __global float *d, int d_off,
                          int d_stride, int length, int count) {
    const int i = get_global_id(0), b = get_global_id(1);
    if (i < length && b < count) d[d_off + b * d_stride + i] = s[s_off + b * s_stride + i];
}

// y = alpha * x + beta * y; beta == 0 does not read y.
__kernel void axpby(float alpha, __global const float *x, int x_off, float beta, __global float *y, int y_off, int n) {
    FOR_ELEMENTS(i, n) {
        const float value = alpha * x[x_off + i];
        y[y_off + i] = beta == 0.0f ? value : value + beta * y[y_off + i];
    }
}

__kernel void multiply(__global const float *a, int a_off, __global const float *b, int b_off,
                       __global float *o, int o_off, int n) {
    FOR_ELEMENTS(i, n) o[o_off + i] = a[a_off + i] * b[b_off + i];
}

inline float activate(float v, int activation, float slope) {
    switch (activation) {
    case 1: return v < 0.0f ? 0.0f : v;
    case 2: return v > 0.0f ? v : v * slope;
    case 3: return 1.0f / (1.0f + latent_exp(-v));
    case 4: return latent_tanh(v);
    case 5: return v > 20.0f ? v : latent_log1p(latent_exp(v));
    default: return v;
    }
}

// y[n, c, s] = activation(x[n, c, s] + bias[c]). Global (ceil(spatial / EW_VEC), channels,
// samples): a work-item takes a run of EW_VEC consecutive positions of one channel (1 on
// GPUs, where neighbouring work-items on neighbouring floats coalesce; a loop the compiler
// vectorises on CPU devices, where PoCL left one element per work-item scalar: bias +
// sigmoid ran at 1.3 GB/s), and the channel comes from the range rather than from dividing
// the flat index. Fully connected layers (spatial 1) use global (ceil(channels / EW_VEC), 1,
// samples), with `spatial` passed as 0: the run is along the features, each with its bias.
// One kernel per activation (bias_activation_0 ... _5): with the activation a compile-time
// constant the compiler vectorises, which a switch on a run-time code prevents on CPU devices.
#define BIAS_ACTIVATION(code)                                                                            \
    __kernel void bias_activation_##code(__global const float *x, int x_off, __global const float *bias, \
                                         int bias_off, int has_bias, float slope, __global float *y,     \
                                         int y_off, int channels, int spatial) {                         \
        const int n = get_global_id(2);                                                                  \
        if (spatial == 0) {                                                                              \
            const int first = get_global_id(0) * EW_VEC, end = min(first + EW_VEC, channels);            \
            const int row = n * channels;                                                                \
            for (int c = first; c < end; ++c) {                                                          \
                float v = x[x_off + row + c];                                                            \
                if (has_bias) v += bias[bias_off + c];                                                   \
                y[y_off + row + c] = activate(v, code, slope);                                           \
            }                                                                                            \
        } else {                                                                                         \
            const int c = get_global_id(1), first = get_global_id(0) * EW_VEC;                           \
            const int end = min(first + EW_VEC, spatial), base = (n * channels + c) * spatial;           \
            const float b = has_bias ? bias[bias_off + c] : 0.0f;                                        \
            for (int s = first; s < end; ++s) {                                                          \
                float v = x[x_off + base + s];                                                           \
                if (has_bias) v += b;                                                                    \
                y[y_off + base + s] = activate(v, code, slope);                                          \
            }                                                                                            \
        }                                                                                                \
    }
BIAS_ACTIVATION(0)
BIAS_ACTIVATION(1)
BIAS_ACTIVATION(2)
BIAS_ACTIVATION(3)
BIAS_ACTIVATION(4)
BIAS_ACTIVATION(5)

// gradInput (+)= gradOutput * activation'(input or output), as PyTorch computes each; one
// kernel per activation (activation_backward_0 ... _5), as above.
inline float activation_gradient(int activation, float slope, float x, float y, float grad) {
    switch (activation) {
    case 1: return y <= 0.0f ? 0.0f : grad;
    case 2: return x > 0.0f ? grad : grad * slope;
    case 3: return grad * (1.0f - y) * y;
    case 4: return grad * fma(-y, y, 1.0f);   // PyTorch's kernel, contracted by its compiler (as the CPU backend)
    case 5: {
        const float z = latent_exp(x);
        return x > 20.0f ? grad : grad * z / (z + 1.0f);
    }
    default: return grad;
    }
}

#define ACTIVATION_BACKWARD(code)                                                                              \
    __kernel void activation_backward_##code(float slope, __global const float *x, int x_off,                  \
                                             __global const float *y, int y_off, __global const float *g,      \
                                             int g_off, __global float *gi, int gi_off, int accumulate, int n) { \
        FOR_ELEMENTS(i, n) {                                                                                   \
            /* Only what the activation's derivative reads. */                                                 \
            const float xv = (code == 2 || code == 5) ? x[x_off + i] : 0.0f;                                   \
            const float yv = (code == 1 || code == 3 || code == 4) ? y[y_off + i] : 0.0f;                      \
            float result = activation_gradient(code, slope, xv, yv, g[g_off + i]);                             \
            if (accumulate) result += gi[gi_off + i];                                                          \
            gi[gi_off + i] = result;                                                                           \
        }                                                                                                      \
    }
ACTIVATION_BACKWARD(0)
ACTIVATION_BACKWARD(1)
ACTIVATION_BACKWARD(2)
ACTIVATION_BACKWARD(3)
ACTIVATION_BACKWARD(4)
ACTIVATION_BACKWARD(5)

// Parameterisations: 0 log-variance (std = exp(p / 2)), 1 log-std (exp(p)), 2 std (p).
inline float standard_deviation(float p, int parameterization) {
    switch (parameterization) {
    case 0: return latent_exp(0.5f * p);
    case 1: return latent_exp(p);
    default: return p;
    }
}

__kernel void reparameterize(__global const float *mu, int mu_off, __global const float *p, int p_off,
                             __global const float *e, int e_off, __global float *o, int o_off,
                             int parameterization, int n) {
    FOR_ELEMENTS(i, n) {
        const float std = standard_deviation(p[p_off + i], parameterization);
        o[o_off + i] = mu[mu_off + i] + e[e_off + i] * std;
    }
}

__kernel void reparameterize_backward(__global const float *p, int p_off, __global const float *e, int e_off,
                                      __global const float *g, int g_off, __global float *gm, int gm_off,
                                      __global float *gp, int gp_off, int parameterization, int accumulate, int n) {
    FOR_ELEMENTS(i, n) {
        const float grad = g[g_off + i];
        const float grad_std = grad * e[e_off + i];
        float grad_param;
        switch (parameterization) {
        case 0: grad_param = grad_std * latent_exp(0.5f * p[p_off + i]) * 0.5f; break;
        case 1: grad_param = grad_std * latent_exp(p[p_off + i]); break;
        default: grad_param = grad_std;
        }
        float grad_mu = grad;
        if (accumulate) {
            grad_mu += gm[gm_off + i];
            grad_param += gp[gp_off + i];
        }
        gm[gm_off + i] = grad_mu;
        gp[gp_off + i] = grad_param;
    }
}

// Inverted dropout, one Philox block (four elements) per work-item: mask = u >= p ? scale : 0.
__kernel void dropout(__global const float *x, int x_off, __global float *y, int y_off,
                      __global float *mask, int mask_off, float probability, float scale,
                      ulong seed, ulong counter, int n) {
    const int block = get_global_id(0);
    const int first = block * 4;
    if (first >= n) return;
    const float4 u = philox_uniforms(philox_block(counter + (ulong)block, seed));
    const float lanes[4] = {u.x, u.y, u.z, u.w};
    for (int lane = 0; lane < 4 && first + lane < n; ++lane) {
        const int i = first + lane;
        const float keep = lanes[lane] >= probability ? scale : 0.0f;
        mask[mask_off + i] = keep;
        y[y_off + i] = x[x_off + i] * keep;
    }
}
