#ifndef CLATENT_SUPPORT_H
#define CLATENT_SUPPORT_H

/// Flush subnormal floats to zero (FTZ and DAZ on x86-64, FZ on arm64) for the calling thread.
/// Adam's moment estimates drift into the subnormal range and slow every op that touches them.
void latent_enable_flush_to_zero(void);

/// Whether flush-to-zero is active on the calling thread (for tests).
int latent_flush_to_zero_enabled(void);

#endif
