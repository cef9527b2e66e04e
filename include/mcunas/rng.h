/* Seeded random numbers: xoshiro256** seeded through splitmix64. One mn_rng per consumer,
 * so a result depends only on its seed, never on what else drew numbers before it. */
#ifndef MCUNAS_RNG_H
#define MCUNAS_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mn_rng {
    uint64_t s[4];
} mn_rng;

void mn_rng_seed(mn_rng *rng, uint64_t seed);
uint64_t mn_rng_next(mn_rng *rng);
/* Uniform double in [0, 1). */
double mn_rng_uniform(mn_rng *rng);
/* Uniform integer in [0, n), unbiased. */
uint64_t mn_rng_below(mn_rng *rng, uint64_t n);
/* Fisher-Yates shuffle of n indices. */
void mn_rng_shuffle(mn_rng *rng, uint32_t *idx, size_t n);
/* Mixes two values into a new seed (for per-epoch / per-step sub-streams). */
uint64_t mn_seed_mix(uint64_t a, uint64_t b);

#ifdef __cplusplus
}
#endif
#endif
