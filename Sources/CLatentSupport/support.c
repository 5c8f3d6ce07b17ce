#include "CLatentSupport.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define LATENT_MXCSR_FTZ 0x8000u
#define LATENT_MXCSR_DAZ 0x0040u
void latent_enable_flush_to_zero(void) { _mm_setcsr(_mm_getcsr() | LATENT_MXCSR_FTZ | LATENT_MXCSR_DAZ); }
int latent_flush_to_zero_enabled(void) { return (_mm_getcsr() & (LATENT_MXCSR_FTZ | LATENT_MXCSR_DAZ)) == (LATENT_MXCSR_FTZ | LATENT_MXCSR_DAZ); }
#elif defined(__aarch64__)
#include <stdint.h>
#define LATENT_FPCR_FZ (1ull << 24)
void latent_enable_flush_to_zero(void) {
    uint64_t fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    fpcr |= LATENT_FPCR_FZ;
    __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr));
}
int latent_flush_to_zero_enabled(void) {
    uint64_t fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    return (fpcr & LATENT_FPCR_FZ) != 0;
}
#else
void latent_enable_flush_to_zero(void) {}
int latent_flush_to_zero_enabled(void) { return 0; }
#endif
