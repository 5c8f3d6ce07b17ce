// Reductions (two stages: partial sums per work-group of REDUCE_WG, then reduce_finish on
// one work-group), per-channel sums (one work-group per channel), and the vector
// quantiser's codebook ops. Sums accumulate in acc_t (double where the device has it).

__kernel void reduce_finish(FINISH_ARGS) {
    __local acc_t scratch[REDUCE_WG];
    finish_sum(partials, count, scale_bits, divisor_bits, scale_f, divisor_f, out, out_off, scratch);
}

// Stage one of sum(x): partials[group] (kind 0), or of the count of NaNs and infinities (kind 1).
__kernel void reduce_partials(__global const float *x, int x_off, int n, int kind, __global acc_t *partials) {
    __local acc_t scratch[REDUCE_WG];
    acc_t total = 0;
    if (kind == 0) {
        FOR_EACH_STRIDED(i, n) total += x[x_off + i];
    } else {
        FOR_EACH_STRIDED(i, n) total += isfinite(x[x_off + i]) ? 0 : 1;
    }
    total = group_sum(total, scratch);
    if (get_local_id(0) == 0) partials[get_group_id(0)] = total;
}

// out[c] (+)= sum over n, s of x[n, c, s]; one work-group per channel.
__kernel void channel_sum(__global const float *x, int x_off, int batch, int channels, int spatial,
                          __global float *out, int out_off, int accumulate) {
    __local acc_t scratch[REDUCE_WG];
    const int c = get_group_id(0);
    const int count = batch * spatial;
    acc_t total = 0;
    // (n, s) of e = lid, lid + REDUCE_WG, ... stepped rather than divided per element.
    const int lid = get_local_id(0);
    int n = lid / spatial, s = lid % spatial;
    const int dn = REDUCE_WG / spatial, ds = REDUCE_WG % spatial;
    for (int e = lid; e < count; e += REDUCE_WG) {
        total += x[x_off + (n * channels + c) * spatial + s];
        s += ds;
        n += dn;
        if (s >= spatial) {
            s -= spatial;
            ++n;
        }
    }
    total = group_sum(total, scratch);
    if (get_local_id(0) == 0) out[out_off + c] = (accumulate ? out[out_off + c] : 0.0f) + (float)total;
}

// channel_sum on CPU-class devices (PoCL): one work-item per channel, each sample's row in
// float16 partial sums (row_sum), rows added in acc_t, as batchnorm_train_channels. channel_sum's
// work-group per channel spent its time in scalar strided loops and the reduction tree there
// (0.5-1 ms a call for the conv VAE's layers).
__kernel void channel_sum_rows(__global const float *x, int x_off, int batch, int channels, int spatial,
                               __global float *out, int out_off, int accumulate) {
    const int c = get_global_id(0);
    if (c >= channels) return;
    acc_t total = 0;
    for (int n = 0; n < batch; ++n) total += row_sum(x + x_off + (n * channels + c) * spatial, spatial);
    out[out_off + c] = (accumulate ? out[out_off + c] : 0.0f) + (float)total;
}

// channel_sum for spatial 1 (Linear layers' bias gradients): one work-item per channel adds
// its column of the batch in order, in acc_t; neighbouring work-items read neighbouring
// floats. (A work-group per channel would spend its time in the reduction tree.)
__kernel void channel_sum_columns(__global const float *x, int x_off, int batch, int channels,
                                  __global float *out, int out_off, int accumulate) {
    const int c = get_global_id(0);
    if (c >= channels) return;
    acc_t total = 0;
    for (int n = 0; n < batch; ++n) total += x[x_off + n * channels + c];
    out[out_off + c] = (accumulate ? out[out_off + c] : 0.0f) + (float)total;
}

// indices[r] = the codebook row nearest to input row r (squared distance; ties: lowest index).
__kernel void nearest_codebook(__global const float *x, int x_off, __global const float *table, int t_off,
                               __global float *indices, int i_off, int rows, int entries, int width) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    const __global float *row = x + x_off + r * width;
    float best = INFINITY;
    int best_index = 0;
    for (int e = 0; e < entries; ++e) {
        const __global float *entry = table + t_off + e * width;
        float distance = 0.0f;
        for (int i = 0; i < width; ++i) {
            const float d = row[i] - entry[i];
            distance += d * d;
        }
        if (distance < best) {
            best = distance;
            best_index = e;
        }
    }
    indices[i_off + r] = (float)best_index;
}

// Global size (width, rows): output[r] = table[indices[r]]. An index that is not a row of
// the table (the CPU backend rejects it) gives zeros.
__kernel void gather_rows(__global const float *table, int t_off, int table_rows, __global const float *indices,
                          int i_off, __global float *out, int o_off, int rows, int width) {
    const int w = get_global_id(0), r = get_global_id(1);
    if (w >= width || r >= rows) return;
    const float index = indices[i_off + r];
    const int t = (int)index;
    const bool valid = index >= 0.0f && index < (float)table_rows && (float)t == index;
    out[o_off + r * width + w] = valid ? table[t_off + t * width + w] : 0.0f;
}

// One work-item per column: gradTable[indices[r]] += gradOutput[r] in row order, so
// repeated indices add up deterministically (as on the CPU). Invalid indices are skipped.
__kernel void scatter_add_rows(__global const float *g, int g_off, __global const float *indices, int i_off,
                               __global float *table, int t_off, int table_rows, int rows, int width) {
    const int w = get_global_id(0);
    if (w >= width) return;
    for (int r = 0; r < rows; ++r) {
        const float index = indices[i_off + r];
        const int t = (int)index;
        if (!(index >= 0.0f && index < (float)table_rows && (float)t == index)) continue;
        table[t_off + t * width + w] += g[g_off + r * width + w];
    }
}
