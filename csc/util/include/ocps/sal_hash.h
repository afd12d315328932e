/*
 * sal_hash.h - 64-bit FNV-1a, the one non-cryptographic hash of the
 * project: hash-table slots, recently seen commands, the checksum of an
 * ingested file. Header only, so that every library can use it.
 */
#ifndef SAL_HASH_H
#define SAL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The value a running hash starts from (FNV-1a offset basis). */
#define SAL_FNV1A64_INIT 0xcbf29ce484222325ULL

/* h with the n bytes at p hashed in: feed a stream piece by piece. */
static inline uint64_t sal_fnv1a64_update(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 0x100000001b3ULL;
    }
    return h;
}

/* The hash of the NUL-terminated string s (NULL hashes as ""). */
static inline uint64_t sal_fnv1a64_str(const char *s)
{
    uint64_t h = SAL_FNV1A64_INIT;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p != '\0'; p++) {
        h = (h ^ *p) * 0x100000001b3ULL;
    }
    return h;
}

#endif
