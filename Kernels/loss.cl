// Losses and the Gaussian KL term: stage one sums per-element terms into per-work-group
// partials, loss_finish reduces them into the one-element output (see common.clh); the
// backward kernels are elementwise (FOR_ELEMENTS). Term kinds: 0 BCE, 1 BCE with logits,
// 2 MSE, 3 L1, 4 KL log-variance, 5 KL log-std, 6 KL std. Parameterisation codes as
// elementwise.cl.

__kernel void loss_finish(FINISH_ARGS) {
    __local acc_t scratch[REDUCE_WG];
    finish_sum(partials, count, scale_bits, divisor_bits, scale_f, divisor_f, out, out_off, scratch);
}

// max(v, -100) keeping NaN, as PyTorch's clamp.
inline float clamp_log(float v) { return v < -100.0f ? -100.0f : v; }

inline __attribute__((always_inline)) float term(int kind, float a, float b) {
    switch (kind) {
    case 0: return (b - 1.0f) * clamp_log(latent_log1p(-a)) - b * clamp_log(latent_log(a));
    case 1: return (a < 0.0f ? 0.0f : a) - a * b + latent_log1p(latent_exp(-fabs(a)));
    case 2: { const float d = a - b; return d * d; }
    case 3: return fabs(a - b);
    case 4: return 1.0f + b - a * a - latent_exp(b);
    case 5: return 1.0f + 2.0f * b - a * a - latent_exp(2.0f * b);
    default: return 0.5f * (b * b + a * a - 1.0f) - latent_log(b);
    }
}

// Stage one of a loss: per-work-group partial sums of term(kind) over n elements. One kernel
// per term kind (loss_partials_0 ... _6): with the kind a compile-time constant the term is
// inlined and its switch folded, where a run-time kind left PoCL calling `term` once per
// element.
#define LOSS_PARTIALS(kind)                                                                               \
    __kernel void loss_partials_##kind(__global const float *a, int a_off, __global const float *b,       \
                                       int b_off, int n, __global acc_t *partials) {                      \
        __local acc_t scratch[REDUCE_WG];                                                                 \
        acc_t total = 0;                                                                                  \
        FOR_EACH_STRIDED(i, n) total += term(kind, a[a_off + i], b[b_off + i]);                          \
        total = group_sum(total, scratch);                                                                \
        if (get_local_id(0) == 0) partials[get_group_id(0)] = total;                                      \
    }
LOSS_PARTIALS(0)
LOSS_PARTIALS(1)
LOSS_PARTIALS(2)
LOSS_PARTIALS(3)
LOSS_PARTIALS(4)
LOSS_PARTIALS(5)
LOSS_PARTIALS(6)

// gradPrediction (+)= factor * d(loss)/d(prediction); factor = scale (/ count for mean).
__kernel void loss_backward(int kind, __global const float *p, int p_off, __global const float *t, int t_off,
                            __global float *g, int g_off, float factor, int accumulate, int n) {
    FOR_ELEMENTS(i, n) {
        const float x = p[p_off + i], y = t[t_off + i];
        float grad;
        switch (kind) {
        case 0: {
            float denominator = (1.0f - x) * x;
            if (denominator < 1e-12f) denominator = 1e-12f;
            grad = factor * (x - y) / denominator;
            break;
        }
        case 1: grad = (1.0f / (1.0f + latent_exp(-x)) - y) * factor; break;
        case 2: grad = (2.0f * factor) * (x - y); break;
        default: {
            const float d = x - y;
            grad = (d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f)) * factor;
        }
        }
        if (accumulate) grad += g[g_off + i];
        g[g_off + i] = grad;
    }
}

// Gradients of scale * KL(N(mean, std^2) || N(0, 1)).
__kernel void kl_backward(int parameterization, __global const float *mu, int mu_off, __global const float *p,
                          int p_off, float scale, __global float *gm, int gm_off, __global float *gp, int gp_off,
                          int accumulate, int n) {
    FOR_ELEMENTS(i, n) {
        const float m = mu[mu_off + i], q = p[p_off + i];
        float grad_mu = scale * m;
        float grad_p;
        switch (parameterization) {
        case 0: grad_p = (0.5f * scale) * latent_exp(q) + (-0.5f * scale); break;   // autograd's two paths, as the CPU backend
        case 1: grad_p = scale * (latent_exp(2.0f * q) - 1.0f); break;
        default: grad_p = scale * (q - 1.0f / q);
        }
        if (accumulate) {
            grad_mu += gm[gm_off + i];
            grad_p += gp[gp_off + i];
        }
        gm[gm_off + i] = grad_mu;
        gp[gp_off + i] = grad_p;
    }
}
