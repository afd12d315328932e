/*
 * fp_rice.c - RICE_1 decoding of 32-bit tiles and the direct reading of
 * rows of tile-compressed raws (see fp__rice.h).
 *
 * The decoder follows the format cfitsio's fits_rdecomp reads: the first
 * pixel as 4 big-endian bytes, then blocks of nblock pixels, each a 5-bit
 * code (0: every difference 0; 26: differences as 32 raw bits; 1..25:
 * Rice codes with fs = code - 1, a unary count of zeros, a one, fs low
 * bits) of the zigzag-mapped differences of successive pixels. Each
 * code is read from the 8 bytes at its bit position (57 bits or more
 * from its first bit); a code must end within the tile, so the 8-byte
 * reads stay within the tile and FP_RICE_PAD bytes after it, and a code
 * that needs bits past the tile's end is an error.
 */
#include <stdlib.h>
#include <string.h>

#include "fp__internal.h"
#include "fp__rice.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <cpuid.h>
#define FP_RICE_X86 1
#endif

#define RICE_FSBITS 5
#define RICE_HIGH 26 /* block code of directly coded differences */

static inline uint64_t rice_load_be64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* The 57 or more stream bits from bit pos of base, from the most
 * significant bit (reads the 8 bytes from byte pos / 8). */
static inline uint64_t rice_peek(const unsigned char *base, uint64_t pos)
{
    return rice_load_be64(base + (pos >> 3)) << (pos & 7);
}

/* The undone zigzag mapping of a difference. */
static inline uint32_t rice_unmap(uint32_t diff)
{
    return (diff >> 1) ^ (0u - (diff & 1));
}

/* nbits (1..32) bits at *pos, within limit; advances *pos. */
static inline int rice_bits(const unsigned char *base, uint64_t *pos, uint64_t limit, unsigned nbits,
                            uint32_t *v)
{
    if (*pos > limit || limit - *pos < nbits)
        return FP_RICE_TRUNCATED;
    *v = (uint32_t)(rice_peek(base, *pos) >> (64 - nbits));
    *pos += nbits;
    return 0;
}

/* One Rice code (zeros, a one, fs bits) at pos, its zeros counted up to
 * 57 bits at a time and never past limit: the new position, or 0 (never
 * a valid one: codes start past bit 32) if the code runs past limit. */
static __attribute__((noinline)) uint64_t rice_code_slow(const unsigned char *base, uint64_t pos,
                                                         uint64_t limit, unsigned fs, uint32_t *diff)
{
    uint64_t zeros = 0;
    for (;;) {
        if (pos >= limit)
            return 0;
        uint64_t avail = limit - pos < 57 ? limit - pos : 57, w = rice_peek(base, pos);
        unsigned lz = (unsigned)__builtin_clzll(w | 1);
        if (lz < avail) {
            zeros += lz;
            pos += lz + 1;
            break;
        }
        zeros += avail;
        pos += avail;
    }
    uint32_t low = 0;
    if (fs > 0 && rice_bits(base, &pos, limit, fs, &low) != 0)
        return 0;
    *diff = (uint32_t)(zeros << fs) | low;
    return pos;
}

/*
 * Decode L tiles of n pixels each at once, block by block: lane s reads
 * src[s][0..len[s]) (and up to FP_RICE_PAD bytes past it, whose values
 * never count) into out[s]. Each tile's pixels form one serial chain
 * (the position of a code depends on the length of the one before), so
 * decoding several tiles side by side keeps the processor busy while one
 * chain waits. Blocks of Rice codes in every lane go through the common
 * loop; any other block, and any code longer than 57 bits or near a
 * tile's end, lane by lane through the exact checks.
 */
static inline __attribute__((always_inline)) int rice_decode_lanes(const unsigned char *const *src,
                                                                   const size_t *len, int nblock,
                                                                   float *const *out, size_t n, const int L)
{
    const unsigned char *base[4];
    uint64_t pos[4], limit[4];
    uint32_t last[4];
    unsigned code[4];
    if (nblock < 1)
        return FP_RICE_BAD_ARG;
#pragma GCC unroll 4
    for (int s = 0; s < L; s++) {
        if (len[s] < 4)
            return FP_RICE_TRUNCATED;
        base[s] = src[s];
        last[s] =
            (uint32_t)src[s][0] << 24 | (uint32_t)src[s][1] << 16 | (uint32_t)src[s][2] << 8 | src[s][3];
        pos[s] = 32;
        limit[s] = (uint64_t)len[s] * 8;
    }
    for (size_t i = 0; i < n;) {
        size_t imax = n - i > (size_t)nblock ? i + (size_t)nblock : n;
        int all_rice = 1;
#pragma GCC unroll 4
        for (int s = 0; s < L; s++) {
            uint32_t c = 0;
            if (rice_bits(base[s], &pos[s], limit[s], RICE_FSBITS, &c) != 0)
                return FP_RICE_TRUNCATED;
            if (c > RICE_HIGH)
                return FP_RICE_BAD_BLOCK;
            code[s] = c;
            all_rice &= c != 0 && c != RICE_HIGH;
        }
        if (!all_rice) {
            /* lane by lane: constant, direct or Rice blocks */
#pragma GCC unroll 4
            for (int s = 0; s < L; s++) {
                if (code[s] == 0) {
                    for (size_t j = i; j < imax; j++)
                        out[s][j] = (float)(int32_t)last[s];
                } else if (code[s] == RICE_HIGH) {
                    for (size_t j = i; j < imax; j++) {
                        uint32_t diff = 0;
                        if (rice_bits(base[s], &pos[s], limit[s], 32, &diff) != 0)
                            return FP_RICE_TRUNCATED;
                        last[s] += rice_unmap(diff);
                        out[s][j] = (float)(int32_t)last[s];
                    }
                } else {
                    for (size_t j = i; j < imax; j++) {
                        uint32_t diff = 0;
                        pos[s] = rice_code_slow(base[s], pos[s], limit[s], code[s] - 1, &diff);
                        if (pos[s] == 0)
                            return FP_RICE_TRUNCATED;
                        last[s] += rice_unmap(diff);
                        out[s][j] = (float)(int32_t)last[s];
                    }
                }
            }
            i = imax;
            continue;
        }
        unsigned fs[4];
#pragma GCC unroll 4
        for (int s = 0; s < L; s++)
            fs[s] = code[s] - 1;
        for (size_t j = i; j < imax; j++) {
#pragma GCC unroll 4
            for (int s = 0; s < L; s++) {
                uint64_t w = rice_peek(base[s], pos[s]);
                unsigned lz = (unsigned)__builtin_clzll(w | 1), k = lz + 1 + fs[s];
                uint32_t diff;
                if (__builtin_expect(k <= 57 && k <= limit[s] - pos[s], 1)) {
                    diff = (uint32_t)lz << fs[s] | (uint32_t)(((w << lz) << 1) >> 1 >> (63 - fs[s]));
                    pos[s] += k;
                } else {
                    pos[s] = rice_code_slow(base[s], pos[s], limit[s], fs[s], &diff);
                    if (pos[s] == 0)
                        return FP_RICE_TRUNCATED;
                }
                last[s] += rice_unmap(diff);
                out[s][j] = (float)(int32_t)last[s];
            }
        }
        i = imax;
    }
    return 0;
}

int fp_rice_decode(const unsigned char *src, size_t len, int nblock, float *out, size_t n)
{
    return rice_decode_lanes(&src, &len, nblock, &out, n, 1);
}

#ifdef FP_RICE_X86
/* The same, compiled for LZCNT (leading zeros in one fast instruction,
 * where the baseline's BSR is slow on some processors) and BMI2 shifts. */
static __attribute__((target("lzcnt,bmi2"))) int rice_decode4_lzcnt(const unsigned char *const src[4],
                                                                    const size_t len[4], int nblock,
                                                                    float *const out[4], size_t n)
{
    return rice_decode_lanes(src, len, nblock, out, n, 4);
}
#endif

int fp_rice_decode4(const unsigned char *const src[4], const size_t len[4], int nblock, float *const out[4],
                    size_t n, int lzcnt)
{
#ifdef FP_RICE_X86
    if (lzcnt)
        return rice_decode4_lzcnt(src, len, nblock, out, n);
#else
    (void)lzcnt;
#endif
    return rice_decode_lanes(src, len, nblock, out, n, 4);
}

int fp_rice_cpu_lzcnt(void)
{
#ifdef FP_RICE_X86
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(0x80000001u, &a, &b, &c, &d) || !(c & (1u << 5))) /* LZCNT (ABM) */
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 8) & 1; /* BMI2 */
#else
    return 0;
#endif
}

const char *fp_rice_strerror(int code)
{
    switch (code) {
    case 0:
        return "no error";
    case FP_RICE_TRUNCATED:
        return "compressed tile truncated";
    case FP_RICE_BAD_BLOCK:
        return "invalid RICE_1 block code";
    case FP_RICE_BAD_ARG:
        return "invalid RICE_1 block size";
    default:
        return "RICE_1 decoding error";
    }
}

/* ---- rows of tile-compressed HDUs ---- */

void fp_rice_buf_free(fp_rice_buf *b)
{
    free(b->len);
    free(b->off);
    free(b->bytes);
    free(b->tile);
    memset(b, 0, sizeof *b);
}

/* A key's presence. */
static int fp_has_key(fitsfile *f, const char *key)
{
    char card[FLEN_CARD];
    int st = 0;
    return fits_read_card(f, key, card, &st) == 0;
}

static long fp_key_long(fitsfile *f, const char *key, long dflt)
{
    long v = dflt;
    int st = 0;
    if (fits_read_key(f, TLONG, key, &v, NULL, &st))
        v = dflt;
    return v;
}

static int fp_key_is(fitsfile *f, const char *key, const char *want)
{
    char value[FLEN_VALUE] = "";
    int st = 0;
    return fits_read_key(f, TSTRING, key, value, NULL, &st) == 0 && strcmp(value, want) == 0;
}

/* Whether the current HDU of f qualifies (see fp__rice.h). */
static int fp_rice_qualifies(fitsfile *f, int raw_nx, fp_rice_hdu *h)
{
    int st = 0, typecode = 0;
    LONGLONG repeat = 0, width = 0, headstart = 0, datastart = 0, dataend = 0;
    if (!fits_is_compressed_image(f, &st) || st)
        return 0;
    if (!fp_key_is(f, "ZCMPTYPE", "RICE_1") || fp_key_long(f, "ZBITPIX", 0) != LONG_IMG ||
        fp_key_long(f, "ZNAXIS", 0) != 2)
        return 0;
    h->nx = fp_key_long(f, "ZNAXIS1", 0);
    h->ny = fp_key_long(f, "ZNAXIS2", 0);
    if (h->nx != raw_nx || h->nx < 1 || h->ny < 1 || fp_key_long(f, "ZTILE1", h->nx) != h->nx)
        return 0;
    h->tile_rows = fp_key_long(f, "ZTILE2", 1);
    if (h->tile_rows < 1 || h->nx > (1L << 24) / h->tile_rows)
        return 0;
    /* RICE parameters: BLOCKSIZE, BYTEPIX 4 (cfitsio's defaults and rules) */
    if (!fp_key_is(f, "ZNAME1", "BLOCKSIZE"))
        return 0;
    long nblock = fp_key_long(f, "ZVAL1", 0), bytepix = 4;
    if (fp_has_key(f, "ZNAME2")) {
        if (!fp_key_is(f, "ZNAME2", "BYTEPIX"))
            return 0;
        bytepix = fp_key_long(f, "ZVAL2", 0);
    }
    if (nblock < 1 || nblock > 1L << 20 || bytepix != 4)
        return 0;
    h->nblock = (int)nblock;
    /* no scaling, no nulls, no quantisation, no other tile columns */
    static const char *const absent[] = {"ZSCALE", "ZZERO", "ZBLANK", "BLANK", "ZQUANTIZ"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        int col = 0;
        st = 0;
        if (fp_has_key(f, absent[i]) ||
            fits_get_colnum(f, CASEINSEN, (char *)absent[i], &col, &st) != COL_NOT_FOUND)
            return 0;
    }
    st = 0;
    int col = 0;
    if (fits_get_colnum(f, CASEINSEN, "UNCOMPRESSED_DATA", &col, &st) != COL_NOT_FOUND)
        return 0;
    st = 0;
    if (fits_get_colnum(f, CASEINSEN, "GZIP_COMPRESSED_DATA", &col, &st) != COL_NOT_FOUND)
        return 0;
    char value[FLEN_VALUE];
    st = 0;
    if (fits_read_key(f, TSTRING, "BSCALE", value, NULL, &st) == 0) {
        double v = 0;
        st = 0;
        if (fits_read_key(f, TDOUBLE, "BSCALE", &v, NULL, &st) || v != 1.0)
            return 0;
    }
    st = 0;
    if (fits_read_key(f, TSTRING, "BZERO", value, NULL, &st) == 0) {
        double v = 1;
        st = 0;
        if (fits_read_key(f, TDOUBLE, "BZERO", &v, NULL, &st) || v != 0.0)
            return 0;
    }
    /* the table: one row per tile, a byte array column, the heap */
    st = 0;
    if (fits_get_colnum(f, CASEINSEN, "COMPRESSED_DATA", &h->colnum, &st) ||
        fits_get_coltypell(f, h->colnum, &typecode, &repeat, &width, &st) || typecode != -TBYTE)
        return 0;
    long rows = fp_key_long(f, "NAXIS2", -1), rowlen = fp_key_long(f, "NAXIS1", -1);
    long pcount = fp_key_long(f, "PCOUNT", -1);
    if (rows != (h->ny - 1) / h->tile_rows + 1 || rowlen < 0 || pcount < 0)
        return 0;
    LONGLONG table = (LONGLONG)rows * rowlen;
    LONGLONG theap = fp_key_long(f, "THEAP", (long)table);
    st = 0;
    if (theap < table || theap > table + pcount ||
        fits_get_hduaddrll(f, &headstart, &datastart, &dataend, &st) || st)
        return 0;
    h->heap = datastart + theap;
    h->heap_n = table + pcount - theap;
    return 1;
}

int fp_rice_probe(fitsfile *f, int hdu, int raw_nx, fp_rice_hdu *h, int *status)
{
    memset(h, 0, sizeof *h);
    if (fits_movabs_hdu(f, hdu, NULL, status))
        return *status;
    h->hdu = hdu;
    h->fast = fp_rice_qualifies(f, raw_nx, h);
    h->lzcnt = h->fast && fp_rice_cpu_lzcnt();
    return 0;
}

/* A cfitsio error of the fast path: "<what>: <cfitsio text>"; -1. */
static int fp_rice_fail_fits(char *err, size_t errlen, int status, const char *what)
{
    char text[FLEN_STATUS] = "";
    fits_get_errstatus(status, text);
    return fp_fail(err, errlen, "%s: %s (cfitsio status %d)", what, text, status);
}

/* Room for n elements of size sz in *p (capacity *cap). */
static int fp_grow(void **p, size_t *cap, size_t n, size_t sz)
{
    if (n <= *cap)
        return 0;
    void *q = realloc(*p, n * sz);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* Read the bytes of tiles [t0, t0+nt) into b->bytes; b->off[i] becomes
 * the offset of tile t0+i in b->bytes. */
static int fp_rice_read_tiles(fitsfile *f, const fp_rice_hdu *h, fp_rice_buf *b, long t0, long nt, char *err,
                              size_t errlen)
{
    int status = 0;
    size_t nd = b->n_desc;
    if (fp_grow((void **)&b->len, &nd, (size_t)nt, sizeof(LONGLONG)) ||
        fp_grow((void **)&b->off, &b->n_desc, (size_t)nt, sizeof(LONGLONG)))
        return fp_fail(err, errlen, "out of memory");
    if (fits_read_descriptsll(f, h->colnum, t0 + 1, nt, b->len, b->off, &status))
        return fp_rice_fail_fits(err, errlen, status, "reading tile descriptors");
    LONGLONG lo = 0, hi = 0, sum = 0;
    for (long i = 0; i < nt; i++) {
        if (b->len[i] < 1 || b->off[i] < 0 || b->len[i] > h->heap_n || b->off[i] > h->heap_n - b->len[i])
            return fp_fail(err, errlen, "tile %ld: compressed bytes outside the heap (length %lld at %lld)",
                           t0 + i + 1, (long long)b->len[i], (long long)b->off[i]);
        if (i == 0 || b->off[i] < lo)
            lo = b->off[i];
        if (i == 0 || b->off[i] + b->len[i] > hi)
            hi = b->off[i] + b->len[i];
        sum += b->len[i];
    }
    if (hi - lo <= 2 * sum + 4096) { /* tiles stored together (always, as cfitsio writes): one read */
        if (fp_grow((void **)&b->bytes, &b->n_bytes, (size_t)(hi - lo) + FP_RICE_PAD, 1))
            return fp_fail(err, errlen, "out of memory");
        memset(b->bytes + (hi - lo), 0, FP_RICE_PAD);
        if (ffmbyt(f, h->heap + lo, 0 /* report EOF */, &status) || ffgbyt(f, hi - lo, b->bytes, &status))
            return fp_rice_fail_fits(err, errlen, status, "reading compressed tiles");
        for (long i = 0; i < nt; i++)
            b->off[i] -= lo;
        return 0;
    }
    if (fp_grow((void **)&b->bytes, &b->n_bytes, (size_t)sum + FP_RICE_PAD, 1))
        return fp_fail(err, errlen, "out of memory");
    memset(b->bytes + sum, 0, FP_RICE_PAD);
    LONGLONG at = 0;
    for (long i = 0; i < nt; i++) {
        if (ffmbyt(f, h->heap + b->off[i], 0 /* report EOF */, &status) ||
            ffgbyt(f, b->len[i], b->bytes + at, &status))
            return fp_rice_fail_fits(err, errlen, status, "reading compressed tiles");
        b->off[i] = at;
        at += b->len[i];
    }
    return 0;
}

int fp_rice_read_rows(fitsfile *f, int hdu, fp_rice_hdu *h, fp_rice_buf *b, int raw_nx, int row0, int nrows,
                      float *buf, char *err, size_t errlen)
{
    int status = 0;
    if (h->hdu != hdu && fp_rice_probe(f, hdu, raw_nx, h, &status))
        return fp_rice_fail_fits(err, errlen, status, "moving to HDU");
    if (!h->fast || row0 < 0 || nrows < 1 || (long)row0 + nrows > h->ny) {
        if (fp_read_rows(f, hdu, raw_nx, row0, nrows, buf, &status))
            return fp_rice_fail_fits(err, errlen, status, "reading rows");
        return 0;
    }
    if (fits_movabs_hdu(f, hdu, NULL, &status))
        return fp_rice_fail_fits(err, errlen, status, "moving to HDU");
    long tr = h->tile_rows, t0 = row0 / tr, t1 = (row0 + nrows - 1) / tr;
    if (fp_rice_read_tiles(f, h, b, t0, t1 - t0 + 1, err, errlen))
        return -1;
    size_t nx = (size_t)h->nx;
    for (long t = t0; t <= t1;) {
        long first = t * tr, last = first + tr < h->ny ? first + tr : h->ny; /* image rows of tile t */
        size_t npix = (size_t)(last - first) * nx;
        const unsigned char *src = b->bytes + b->off[t - t0];
        size_t len = (size_t)b->len[t - t0];
        int rc;
        if (first >= row0 && t + 3 <= t1 && first + 4 * tr <= row0 + nrows && first + 4 * tr <= h->ny) {
            /* four whole tiles inside the rows */
            const unsigned char *srcs[4];
            size_t lens[4];
            float *outs[4];
            for (int s = 0; s < 4; s++) {
                srcs[s] = b->bytes + b->off[t - t0 + s];
                lens[s] = (size_t)b->len[t - t0 + s];
                outs[s] = buf + (size_t)(first + s * tr - row0) * nx;
            }
            rc = fp_rice_decode4(srcs, lens, h->nblock, outs, npix, h->lzcnt);
            if (rc == 0) {
                t += 4;
                continue;
            }
            /* find which tile failed */
            for (int s = 0; s < 4 && rc == 0; s++)
                rc = fp_rice_decode(srcs[s], lens[s], h->nblock, outs[s], npix);
            if (rc == 0)
                rc = FP_RICE_TRUNCATED;
        } else if (first >= row0 && last <= row0 + nrows) {
            rc = fp_rice_decode(src, len, h->nblock, buf + (size_t)(first - row0) * nx, npix);
        } else {
            if (fp_grow((void **)&b->tile, &b->n_tile, npix, sizeof(float)))
                return fp_fail(err, errlen, "out of memory");
            rc = fp_rice_decode(src, len, h->nblock, b->tile, npix);
            long r0 = first > row0 ? first : row0, r1 = last < row0 + nrows ? last : row0 + nrows;
            if (rc == 0)
                memcpy(buf + (size_t)(r0 - row0) * nx, b->tile + (size_t)(r0 - first) * nx,
                       sizeof(float) * (size_t)(r1 - r0) * nx);
        }
        if (rc != 0)
            return fp_fail(err, errlen, "HDU %d, tile %ld: %s", hdu, t + 1, fp_rice_strerror(rc));
        t++;
    }
    return 0;
}
