#ifndef PULLSKETCH_CXXHASH_SHIM_H
#define PULLSKETCH_CXXHASH_SHIM_H
#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

/* xxhash.h again, as static inline code: the names' hashes (once per name) and a key's hash
   (two name hashes, 16 bytes, once per key and pull) are then computed in place instead of by
   a call into the shared library. The same algorithm and version as the library's, so the same
   values (tested). */
#define XXH_INLINE_ALL
#include <xxhash.h>

static inline uint64_t pullsketch_xxh3_64bits(const void *input, size_t length) {
    return XXH3_64bits(input, length);
}

static inline uint64_t pullsketch_xxh3_64bits_16_withSeed(const void *input, uint64_t seed) {
    return XXH3_64bits_withSeed(input, 16, seed);
}
#endif
