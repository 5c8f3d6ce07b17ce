#ifndef CLATENT_SUPPORT_H
#define CLATENT_SUPPORT_H

/// Flush subnormal floats to zero (FTZ and DAZ on x86-64, FZ on arm64) for the calling thread.
/// Adam's moment estimates drift into the subnormal range and slow every op that touches them.
void latent_enable_flush_to_zero(void);

/// Whether flush-to-zero is active on the calling thread (for tests).
int latent_flush_to_zero_enabled(void);

/// Sixteen floats, imported into Swift as SIMD16<Float>.
typedef float latent_float16 __attribute__((ext_vector_type(16)));

/// Correctly rounded square root of every lane in one full-width instruction (llvm.sqrt).
/// Swift has no vector square root: a per-lane `squareRoot()` loop is left to LLVM's SLP
/// vectorizer, which on targets that prefer 256-bit vectors (Intel's AVX-512 server cores)
/// split it into 8 + 4 + 3 + 1 lanes and made Adam a tenth of a vae-fc training step.
static inline __attribute__((always_inline)) latent_float16 latent_sqrt16(latent_float16 x) {
    return __builtin_elementwise_sqrt(x);
}

/// Asks for the cache lines of `bytes` bytes from `p` (at most 16 lines) ahead of a read.
/// Batch norm reads each channel as N runs of H*W floats a whole image apart; runs of 49 or
/// 196 floats are too short for the hardware prefetcher to follow, and every run waited on
/// memory (most of batch norm's time in the conv VAE on the Xeon machine).
static inline __attribute__((always_inline)) void latent_prefetch(const void *p, long bytes) {
    const char *c = (const char *)p;
    if (bytes > 1024) bytes = 1024;
    for (long offset = 0; offset < bytes; offset += 64) __builtin_prefetch(c + offset, 0, 3);
    __builtin_prefetch(c + bytes - 1, 0, 3);
}

/// Asks for the cache lines holding 16 floats from `p` for writing. The GEMM micro-kernels
/// read and write a tile of C only after their depth loop, rows a whole row of C apart: without
/// the request each row's miss came after the loop, one by one.
static inline __attribute__((always_inline)) void latent_prefetch_row_for_write(const float *p) {
    __builtin_prefetch(p, 1, 3);
    __builtin_prefetch(p + 15, 1, 3);
}

#endif
