// Random fills from Philox4x32-10 (philox.clh), one block of four values per work-item.
// Built with -cl-fp32-correctly-rounded-divide-sqrt; with FP_CONTRACT OFF (common.clh) the
// results equal Philox.swift's bit for bit, normals included.

// Philox.log: fdlibm's logf reduction and polynomial for x in (0, 1].
inline float philox_log(float x) {
    const uint bits = as_uint(x);
    int exponent = (int)((bits >> 23) & 0xFFu) - 127;
    float mantissa = as_float((bits & 0x007FFFFFu) | 0x3F800000u);
    if (mantissa > as_float(0x3FB504F3u)) {
        mantissa *= 0.5f;
        exponent += 1;
    }
    const float lg1 = as_float(0x3F2AAAAAu), lg2 = as_float(0x3ECCCCE1u);
    const float lg3 = as_float(0x3E91E9EEu), lg4 = as_float(0x3E789E26u);
    const float ln2_high = as_float(0x3F317180u), ln2_low = as_float(0x3717F7D1u);
    const float f = mantissa - 1.0f;
    const float s = f / (2.0f + f);
    const float z = s * s;
    const float w = z * z;
    const float t1 = w * (lg2 + w * lg4);
    const float t2 = z * (lg1 + w * lg3);
    const float r = t2 + t1;
    const float half_f_squared = 0.5f * f * f;
    const float e = (float)exponent;
    return e * ln2_high - ((half_f_squared - (s * (half_f_squared + r) + e * ln2_low)) - f);
}

// Philox.sinCos2Pi: (sin 2 pi u, cos 2 pi u) for u in [0, 1).
inline float2 philox_sincos2pi(float u) {
    const float two_pi = as_float(0x40C90FDBu);
    const float sin1 = -1.0f / 6.0f, sin2 = 1.0f / 120.0f, sin3 = -1.0f / 5040.0f, sin4 = 1.0f / 362880.0f;
    const float cos1 = -0.5f, cos2 = 1.0f / 24.0f, cos3 = -1.0f / 720.0f, cos4 = 1.0f / 40320.0f;
    const float quarter_turns = rint(u * 4.0f);
    const float r = u - quarter_turns * 0.25f;
    const float theta = r * two_pi;
    const float theta2 = theta * theta;
    const float sine = theta + theta * theta2 * (sin1 + theta2 * (sin2 + theta2 * (sin3 + theta2 * sin4)));
    const float cosine = 1.0f + theta2 * (cos1 + theta2 * (cos2 + theta2 * (cos3 + theta2 * cos4)));
    switch ((int)quarter_turns & 3) {
    case 0: return (float2)(sine, cosine);
    case 1: return (float2)(cosine, -sine);
    case 2: return (float2)(-sine, -cosine);
    default: return (float2)(-cosine, sine);
    }
}

// Box-Muller on a lane pair: (r cos, r sin).
inline float2 philox_box_muller(uint x0, uint x1) {
    const float u1 = ((float)(x0 >> 8) + 1.0f) * 0x1p-24f;
    const float u2 = (float)(x1 >> 8) * 0x1p-24f;
    const float radius = sqrt(-2.0f * philox_log(u1));
    const float2 sc = philox_sincos2pi(u2);
    return (float2)(radius * sc.y, radius * sc.x);
}

inline void store4(__global float *d, int first, int n, float4 v) {
    if (first + 4 <= n) {
        vstore4(v, 0, d + first);
        return;
    }
    const float lanes[4] = {v.x, v.y, v.z, v.w};
    for (int lane = 0; first + lane < n; ++lane) d[first + lane] = lanes[lane];
}

// d = low + range * u, range = high - low.
__kernel void fill_uniform(__global float *d, int d_off, int n, float low, float range, ulong seed, ulong counter) {
    const int block = get_global_id(0);
    if (block * 4 >= n) return;
    const float4 u = philox_uniforms(philox_block(counter + (ulong)block, seed));
    store4(d + d_off, block * 4, n, (float4)(low) + (float4)(range) * u);
}

// d = mean + std * z.
__kernel void fill_normal(__global float *d, int d_off, int n, float mean, float std, ulong seed, ulong counter) {
    const int block = get_global_id(0);
    if (block * 4 >= n) return;
    const uint4 bits = philox_block(counter + (ulong)block, seed);
    const float2 a = philox_box_muller(bits.x, bits.y);
    const float2 b = philox_box_muller(bits.z, bits.w);
    const float4 z = (float4)(a.x, a.y, b.x, b.y);
    store4(d + d_off, block * 4, n, (float4)(mean) + (float4)(std) * z);
}

// o = u < p ? 1 : 0.
__kernel void fill_bernoulli(__global const float *p, int p_off, __global float *o, int o_off, int n,
                             ulong seed, ulong counter) {
    const int block = get_global_id(0);
    const int first = block * 4;
    if (first >= n) return;
    const float4 u = philox_uniforms(philox_block(counter + (ulong)block, seed));
    const float lanes[4] = {u.x, u.y, u.z, u.w};
    for (int lane = 0; lane < 4 && first + lane < n; ++lane)
        o[o_off + first + lane] = lanes[lane] < p[p_off + first + lane] ? 1.0f : 0.0f;
}
