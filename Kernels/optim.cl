// torch.optim update rules, one work-item per run of EW_VEC parameter elements
// (FOR_ELEMENTS), in PyTorch's order of operations. The host computes every scalar (bias
// corrections, step sizes, 1 - beta) as the CPU backend does and passes floats; fma()
// stands exactly where the CPU backend fuses.
// Built with -cl-fp32-correctly-rounded-divide-sqrt, so the steps equal the CPU's bit for bit.

__kernel void sgd(__global float *p, int p_off, __global const float *g, int g_off, __global float *buf, int b_off,
                  float weight_decay, float momentum, float one_minus_dampening, float negative_lr,
                  int first, int nesterov, int n) {
    FOR_ELEMENTS(i, n) {
        float grad = g[g_off + i];
        const float param = p[p_off + i];
        if (weight_decay != 0.0f) grad = fma(param, weight_decay, grad);
        if (momentum != 0.0f) {
            float b;
            if (first) {
                b = grad;
            } else {
                b = buf[b_off + i] * momentum;
                b = fma(grad, one_minus_dampening, b);
            }
            buf[b_off + i] = b;
            grad = nesterov ? fma(b, momentum, grad) : b;
        }
        p[p_off + i] = fma(grad, negative_lr, param);
    }
}

// Adam and AdamW (decoupled: param *= decay before the update).
__kernel void adam(__global float *p, int p_off, __global const float *g, int g_off,
                   __global float *m1, int m1_off, __global float *m2, int m2_off,
                   float weight_decay, int decoupled, float decay, float lerp_weight, float beta2,
                   float one_minus_beta2, float negative_step_size, float bias_correction2_sqrt, float eps, int n) {
    FOR_ELEMENTS(i, n) {
        float grad = g[g_off + i];
        float param = p[p_off + i];
        if (weight_decay != 0.0f) {
            if (decoupled) param *= decay; else grad = fma(param, weight_decay, grad);
        }
        const float start = m1[m1_off + i];
        const float difference = grad - start;
        // PyTorch's lerp: start + w * (end - start) below w = 0.5, end - (end - start) * (1 - w) above.
        const float exp_avg = fabs(lerp_weight) < 0.5f ? fma(lerp_weight, difference, start)
                                                       : fma(lerp_weight - 1.0f, difference, grad);
        const float exp_avg_sq = fma(one_minus_beta2 * grad, grad, m2[m2_off + i] * beta2);
        const float denominator = sqrt(exp_avg_sq) / bias_correction2_sqrt + eps;
        param += (negative_step_size * exp_avg) / denominator;
        m1[m1_off + i] = exp_avg;
        m2[m2_off + i] = exp_avg_sq;
        p[p_off + i] = param;
    }
}

__kernel void rmsprop(__global float *p, int p_off, __global const float *g, int g_off,
                      __global float *sq, int sq_off, __global float *buf, int b_off,
                      float weight_decay, float alpha, float one_minus_alpha, float eps, float momentum,
                      float negative_lr, int n) {
    FOR_ELEMENTS(i, n) {
        float grad = g[g_off + i];
        const float param = p[p_off + i];
        if (weight_decay != 0.0f) grad = fma(param, weight_decay, grad);
        const float square_avg = fma(one_minus_alpha * grad, grad, sq[sq_off + i] * alpha);
        sq[sq_off + i] = square_avg;
        const float avg = sqrt(square_avg) + eps;
        if (momentum > 0.0f) {
            const float b = buf[b_off + i] * momentum + grad / avg;
            buf[b_off + i] = b;
            p[p_off + i] = fma(b, negative_lr, param);
        } else {
            p[p_off + i] = param + (negative_lr * grad) / avg;
        }
    }
}

__kernel void adagrad(__global float *p, int p_off, __global const float *g, int g_off, __global float *s, int s_off,
                      float weight_decay, float negative_clr, float eps, int n) {
    FOR_ELEMENTS(i, n) {
        float grad = g[g_off + i];
        const float param = p[p_off + i];
        if (weight_decay != 0.0f) grad = fma(param, weight_decay, grad);
        const float sum = fma(grad, grad, s[s_off + i]);
        s[s_off + i] = sum;
        const float std = sqrt(sum) + eps;
        p[p_off + i] = param + (negative_clr * grad) / std;
    }
}

__kernel void adadelta(__global float *p, int p_off, __global const float *g, int g_off,
                       __global float *sq, int sq_off, __global float *acc, int a_off,
                       float weight_decay, float rho, float one_minus_rho, float eps, float negative_lr, int n) {
    FOR_ELEMENTS(i, n) {
        float grad = g[g_off + i];
        const float param = p[p_off + i];
        if (weight_decay != 0.0f) grad = fma(param, weight_decay, grad);
        const float square_avg = fma(one_minus_rho * grad, grad, sq[sq_off + i] * rho);
        const float std = sqrt(square_avg + eps);
        const float acc_delta = acc[a_off + i];
        const float delta = sqrt(acc_delta + eps) / std * grad;
        const float new_acc_delta = fma(one_minus_rho * delta, delta, acc_delta * rho);
        sq[sq_off + i] = square_avg;
        acc[a_off + i] = new_acc_delta;
        p[p_off + i] = fma(delta, negative_lr, param);
    }
}
