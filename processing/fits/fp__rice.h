/*
 * fp__rice.h - rows of RICE_1 tile-compressed 32-bit images read without
 * cfitsio's per-tile decompression: the tiles' bytes are read from the
 * compressed HDU's heap and decoded here (internal).
 *
 * The fast path covers the common case of raws (LATISS and LSSTCam):
 * ZCMPTYPE 'RICE_1', ZBITPIX 32, BYTEPIX 4, tiles of whole rows, no
 * ZSCALE/ZZERO/ZBLANK/BLANK/ZQUANTIZ, BSCALE 1, BZERO 0, only a
 * COMPRESSED_DATA column. Its pixels are exactly those of cfitsio's
 * fits_read_subset(TFLOAT); every other image is read by cfitsio.
 */
#ifndef OCPS_FP_RICE_H
#define OCPS_FP_RICE_H

#include <stddef.h>
#include <stdint.h>

#include <fitsio.h>

/* cfitsio's byte-level read at the current position (which ffmbyt, in
 * fitsio.h, sets): exported by libcfitsio, declared only in its internal
 * header fitsio2.h. */
int ffgbyt(fitsfile *fptr, LONGLONG nbytes, void *buffer, int *status);

/* Decoder results (0 is success). */
#define FP_RICE_TRUNCATED (-1) /* the tile's bytes end before its pixels */
#define FP_RICE_BAD_BLOCK (-2) /* a block code no RICE_1 encoder writes */
#define FP_RICE_BAD_ARG (-3)   /* block size < 1 */

/* Bytes the decoder may read past a tile's end: a tile's bytes must be
 * followed by this many readable bytes (any values: they never change
 * a result). */
#define FP_RICE_PAD 8

/* Decode one RICE_1 tile of n 32-bit pixels (BYTEPIX 4, blocks of nblock
 * pixels) from src[0..len) into out[0..n) as floats (the int32 values,
 * as cfitsio converts them without scaling). Returns 0 or FP_RICE_*;
 * whatever the bytes, reads nothing outside src[0..len + FP_RICE_PAD). */
int fp_rice_decode(const unsigned char *src, size_t len, int nblock, float *out, size_t n);

/* Four tiles of n pixels each at once (tile s from src[s][0..len[s])
 * into out[s]): the same results as four fp_rice_decode calls (0 if all
 * four decode, else an error of one of them), faster. lzcnt: use the
 * code compiled for LZCNT and BMI2 (only where fp_rice_cpu_lzcnt says
 * the processor has them). */
int fp_rice_decode4(const unsigned char *const src[4], const size_t len[4], int nblock, float *const out[4],
                    size_t n, int lzcnt);

/* 1 if the processor has LZCNT and BMI2 (x86; asks CPUID, slow in a
 * virtual machine: call once per HDU, not per tile). */
int fp_rice_cpu_lzcnt(void);

/* A short text for a decoder result. */
const char *fp_rice_strerror(int code);

/* What the fast path knows of one image HDU (probed once, then reused). */
typedef struct fp_rice_hdu {
    int hdu;         /* HDU number probed; 0 before the first probe */
    int fast;        /* 1 if its rows are read by the fast path */
    int colnum;      /* COMPRESSED_DATA */
    int nblock;      /* RICE block size (ZVAL1) */
    int lzcnt;       /* fp_rice_cpu_lzcnt() */
    long nx, ny;     /* image size */
    long tile_rows;  /* ZTILE2 (ZTILE1 is nx) */
    LONGLONG heap;   /* file offset of the heap */
    LONGLONG heap_n; /* bytes in the heap */
} fp_rice_hdu;

/* Buffers of the fast path, grown as needed (zero-initialise; free with
 * fp_rice_buf_free). */
typedef struct fp_rice_buf {
    LONGLONG *len, *off;
    size_t n_desc;
    unsigned char *bytes;
    size_t n_bytes;
    float *tile;
    size_t n_tile;
} fp_rice_buf;

/* Free the buffers of b (and zero it). */
void fp_rice_buf_free(fp_rice_buf *b);

/* Find out whether HDU hdu (1-based) of f, an image of raw_nx columns,
 * qualifies for the fast path; fills h (h->fast 0 when it does not).
 * Moves f to that HDU. Returns a cfitsio status (0 unless moving fails). */
int fp_rice_probe(fitsfile *f, int hdu, int raw_nx, fp_rice_hdu *h, int *status);

/* Read rows [row0, row0+nrows) (0-based) of HDU `hdu` of f into buf
 * (nrows x raw_nx floats): by the fast path when the HDU qualifies (h
 * probed on first use, kept by the caller for that HDU), else by
 * fits_read_subset. Returns 0, or -1 with a message in err. */
int fp_rice_read_rows(fitsfile *f, int hdu, fp_rice_hdu *h, fp_rice_buf *b, int raw_nx, int row0, int nrows,
                      float *buf, char *err, size_t errlen);

#endif
