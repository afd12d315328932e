/*
 * fuzz_fits_rice: libFuzzer target for the RICE_1 tile decoder of the
 * FITS fast path (fp_rice_decode, fp_rice_decode4; processing/fits),
 * which decodes the compressed bytes of raws read from disk. Any bytes
 * must give either pixels or an error, without crashing or reading
 * outside the tile and its FP_RICE_PAD bytes (the tile is copied into a
 * buffer of exactly that size, so ASan sees any read past it); and:
 *   - the padding's values never change a result (decoded twice, with
 *     the padding all zeros and all ones);
 *   - four tiles decoded side by side (fp_rice_decode4, both builds of
 *     it where the processor has LZCNT) give what four single decodes
 *     give, and fail when any of them fails;
 *   - a tile we decode, cfitsio's fits_rdecomp decodes to the same
 *     integers; a tile we call truncated, cfitsio refuses too.
 *
 * Input: nblock byte (block size 1 + b % 64), two bytes of pixel count
 * (1 + n % 1024), three bytes splitting the rest into four tiles; then
 * the bytes of the tiles.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fp__rice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* cfitsio's decoder (exported by libcfitsio, declared in fitsio2.h). */
int fits_rdecomp(unsigned char *c, int clen, unsigned int array[], int nx, int nblock);

enum { MAX_PIX = 1024, CFITSIO_PAD = 1 << 16 };

/* A copy of src[0..len) followed by FP_RICE_PAD bytes of `pad`. */
static unsigned char *padded(const uint8_t *src, size_t len, int pad)
{
    unsigned char *p = malloc(len + FP_RICE_PAD);
    if (!p)
        abort();
    if (len)
        memcpy(p, src, len);
    memset(p + len, pad, FP_RICE_PAD);
    return p;
}

/* Decode with both paddings; they must agree. */
static int decode_checked(const uint8_t *src, size_t len, int nblock, float *out, size_t n)
{
    static float other[MAX_PIX];
    unsigned char *a = padded(src, len, 0), *b = padded(src, len, 0xff);
    int rc = fp_rice_decode(a, len, nblock, out, n);
    int rc2 = fp_rice_decode(b, len, nblock, other, n);
    if (rc != rc2 || (rc == 0 && memcmp(out, other, sizeof(float) * n) != 0))
        abort();
    free(a);
    free(b);
    return rc;
}

/* cfitsio's result on the same tile (given ample readable bytes after
 * it: cfitsio checks the end only after each block). */
static void compare_cfitsio(const uint8_t *src, size_t len, int nblock, const float *ours, int rc, size_t n)
{
    static unsigned int ints[MAX_PIX];
    unsigned char *c = malloc(len + CFITSIO_PAD);
    if (!c)
        abort();
    if (len)
        memcpy(c, src, len);
    memset(c + len, 0xff, CFITSIO_PAD);
    int theirs = len >= 4 ? fits_rdecomp(c, (int)len, ints, (int)n, nblock) : 1;
    free(c);
    if (rc == 0) {
        if (theirs != 0)
            abort();
        for (size_t i = 0; i < n; i++)
            if (ours[i] != (float)(int32_t)ints[i])
                abort();
    } else if (rc == FP_RICE_TRUNCATED && theirs == 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static float single[4][MAX_PIX], lanes[4][MAX_PIX];
    if (size < 6)
        return 0;
    int nblock = 1 + data[0] % 64;
    size_t n = 1 + ((size_t)data[1] | (size_t)data[2] << 8) % MAX_PIX;
    const uint8_t *body = data + 6;
    size_t body_n = size - 6, cut[5] = {0, 0, 0, 0, body_n};
    for (int k = 1; k < 4; k++) {
        cut[k] = body_n * data[2 + k] / 256;
        if (cut[k] < cut[k - 1])
            cut[k] = cut[k - 1];
    }
    /* the whole body as one tile */
    int rc = decode_checked(body, body_n, nblock, single[0], n);
    compare_cfitsio(body, body_n, nblock, single[0], rc, n);
    /* four tiles side by side */
    const unsigned char *src[4];
    unsigned char *copies[4];
    size_t len[4];
    float *out[4];
    int all_ok = 1;
    for (int k = 0; k < 4; k++) {
        len[k] = cut[k + 1] - cut[k];
        copies[k] = padded(body + cut[k], len[k], 0x5a);
        src[k] = copies[k];
        out[k] = lanes[k];
        all_ok &= decode_checked(body + cut[k], len[k], nblock, single[k], n) == 0;
    }
    for (int lz = 0; lz <= fp_rice_cpu_lzcnt(); lz++) {
        int rc4 = fp_rice_decode4(src, len, nblock, out, n, lz);
        if ((rc4 == 0) != all_ok)
            abort();
        for (int k = 0; all_ok && k < 4; k++)
            if (memcmp(lanes[k], single[k], sizeof(float) * n) != 0)
                abort();
    }
    for (int k = 0; k < 4; k++)
        free(copies[k]);
    return 0;
}
