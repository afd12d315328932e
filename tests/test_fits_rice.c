/*
 * test_fits_rice: the RICE_1 fast path of fitsproc (fp_rice.c) gives
 * exactly the pixels cfitsio's fits_read_subset(TFLOAT) gives: on the raws
 * ocps-fakeraws writes, on images of odd shapes and tiles (several rows a
 * tile, a stripe cutting through tiles, a short last tile and block,
 * constant and directly coded blocks, long zero runs), with the four-lane
 * decoder and without; images it does not cover (other compressions,
 * tiles narrower than a row, BZERO, uncompressed) go to cfitsio and give
 * the same pixels; corrupt tiles and descriptors give an error, never a
 * crash or a read outside the tile.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fitsio.h>

#include "fp__internal.h"
#include "fp__rice.h"
#include "test_fits_util.h"
#include "test_util.h"

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* Rows [row0, row0+nrows) of HDU hdu by the fast path (h probed on first
 * use) equal cfitsio's; returns h->fast. */
static int check_rows(fitsfile *f, int hdu, fp_rice_hdu *h, fp_rice_buf *b, int nx, int row0, int nrows)
{
    float *got = malloc(sizeof(float) * (size_t)nx * nrows),
          *want = malloc(sizeof(float) * (size_t)nx * nrows);
    char err[512] = "";
    int status = 0;
    assert_non_null(got);
    assert_non_null(want);
    int rc = fp_rice_read_rows(f, hdu, h, b, nx, row0, nrows, got, err, sizeof err);
    if (rc != 0)
        fail_msg("fp_rice_read_rows: %s", err);
    assert_int_equal(fp_read_rows(f, hdu, nx, row0, nrows, want, &status), 0);
    assert_memory_equal(got, want, sizeof(float) * (size_t)nx * nrows);
    free(got);
    free(want);
    return h->fast;
}

/* Every HDU of a file read in stripes of `stripe` rows, plus odd ranges;
 * returns how many of its image HDUs took the fast path. */
static int check_file(const char *path, int stripe)
{
    fitsfile *f = NULL;
    int status = 0, nhdu = 0, n_fast = 0;
    assert_int_equal(fits_open_file(&f, path, READONLY, &status), 0);
    fits_get_num_hdus(f, &nhdu, &status);
    fp_rice_buf b = {0};
    for (int hdu = 1; hdu <= nhdu; hdu++) {
        int naxis = 0;
        long naxes[2] = {0, 0};
        fits_movabs_hdu(f, hdu, NULL, &status);
        fits_get_img_dim(f, &naxis, &status);
        if (naxis != 2)
            continue;
        fits_get_img_size(f, 2, naxes, &status);
        assert_int_equal(status, 0);
        int nx = (int)naxes[0], ny = (int)naxes[1], fast = 0;
        fp_rice_hdu h = {0};
        for (int row0 = 0; row0 < ny; row0 += stripe)
            fast = check_rows(f, hdu, &h, &b, nx, row0, ny - row0 < stripe ? ny - row0 : stripe);
        check_rows(f, hdu, &h, &b, nx, 0, ny);
        check_rows(f, hdu, &h, &b, nx, ny - 1, 1);
        check_rows(f, hdu, &h, &b, nx, ny / 3, ny / 2);
        n_fast += fast;
    }
    fp_rice_buf_free(&b);
    fits_close_file(f, &status);
    return n_fast;
}

static void fakeraws_match_cfitsio(void **state)
{
    (void)state;
    char *dir = tu_make_temp_dir();
    char **paths = tf_fake(dir, "raw", FP_FRAME_FLAT, 2, 7, 1);
    assert_non_null(paths);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(check_file(paths[i], 64), 16); /* every amplifier by the fast path */
        assert_int_equal(check_file(paths[i], 5), 16);
    }
    fp_free_paths(paths, 2);
    tu_remove_tree(dir);
    free(dir);
}

/* Pixels with constant runs (blocks of code 0), noise, wild jumps (blocks
 * coded directly) and single outliers (long zero runs in Rice blocks). */
static void fill_pixels(int32_t *v, long n, uint64_t seed)
{
    uint64_t s = seed;
    for (long i = 0; i < n; i++) {
        long phase = (i / 200) % 4;
        uint64_t r = next_random(&s);
        if (phase == 0)
            v[i] = 1000;
        else if (phase == 1)
            v[i] = 12000 + (int32_t)(r % 15) - 7 + (r % 97 == 0 ? 50000 : 0);
        else if (phase == 2)
            v[i] = (int32_t)(uint32_t)(r >> 32);
        else
            v[i] = -5 + (int32_t)(r % 3);
    }
}

/* Write an int32 (or other bitpix) image nx x ny, compressed as asked
 * (comptype 0: not compressed), tiles tx x ty; bzero set when nonzero. */
static void write_image(const char *path, int bitpix, int comptype, long nx, long ny, long tx, long ty,
                        double bzero)
{
    fitsfile *f = NULL;
    int status = 0;
    char name[1100];
    long naxes[2] = {nx, ny}, tile[2] = {tx, ty};
    int32_t *v = malloc(sizeof(int32_t) * (size_t)(nx * ny));
    assert_non_null(v);
    fill_pixels(v, nx * ny, (uint64_t)(nx * 131 + ny * 7 + tx + ty));
    short *sv = malloc(sizeof(short) * (size_t)(nx * ny));
    assert_non_null(sv);
    for (long i = 0; i < nx * ny; i++)
        sv[i] = (short)(v[i] % 30000);
    snprintf(name, sizeof name, "!%s", path);
    fits_create_file(&f, name, &status);
    fits_create_img(f, BYTE_IMG, 0, NULL, &status);
    fits_set_compression_type(f, comptype, &status);
    if (comptype)
        fits_set_tile_dim(f, 2, tile, &status);
    fits_create_img(f, bitpix, 2, naxes, &status);
    if (bitpix == SHORT_IMG)
        fits_write_img(f, TSHORT, 1, nx * ny, sv, &status);
    else
        fits_write_img(f, TINT, 1, nx * ny, v, &status);
    if (bzero != 0.0) /* after the data: the key changes what the stored integers mean */
        fits_update_key_dbl(f, "BZERO", bzero, -15, "", &status);
    fits_close_file(f, &status);
    if (status)
        fail_msg("writing bitpix %d, compression %d, tiles %ldx%ld: cfitsio status %d", bitpix, comptype, tx,
                 ty, status);
    free(v);
    free(sv);
}

static void odd_tiles_match_cfitsio(void **state)
{
    (void)state;
    char *dir = tu_make_temp_dir(), path[1024];
    /* {nx, ny, tile rows}: several rows a tile, short last tile, widths
     * not a multiple of the block size */
    static const long shapes[][3] = {{72, 250, 1}, {72, 250, 3}, {37, 101, 1}, {37, 101, 7},
                                     {1, 300, 1},  {576, 50, 1}, {33, 64, 64}, {100, 40, 200}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        long nx = shapes[i][0], ny = shapes[i][1], ty = shapes[i][2];
        tf_path(path, sizeof path, dir, "odd.fits");
        write_image(path, LONG_IMG, RICE_1, nx, ny, nx, ty, 0.0);
        for (int stripe = 1; stripe <= 64; stripe = stripe * 4 + 1)
            assert_int_equal(check_file(path, stripe), 1);
    }
    tu_remove_tree(dir);
    free(dir);
}

static void other_images_take_cfitsio(void **state)
{
    (void)state;
    char *dir = tu_make_temp_dir(), path[1024];
    tf_path(path, sizeof path, dir, "other.fits");
    write_image(path, LONG_IMG, RICE_1, 72, 60, 36, 1, 0.0); /* tiles half a row wide */
    assert_int_equal(check_file(path, 16), 0);
    write_image(path, LONG_IMG, GZIP_1, 72, 60, 72, 1, 0.0);
    assert_int_equal(check_file(path, 16), 0);
    write_image(path, LONG_IMG, RICE_1, 72, 60, 72, 1, 2147483648.0); /* unsigned 32-bit */
    assert_int_equal(check_file(path, 16), 0);
    write_image(path, SHORT_IMG, RICE_1, 72, 60, 72, 1, 0.0);
    assert_int_equal(check_file(path, 16), 0);
    write_image(path, LONG_IMG, 0, 72, 60, 72, 1, 0.0);
    assert_int_equal(check_file(path, 16), 0);
    tu_remove_tree(dir);
    free(dir);
}

/* The tiles of one compressed image, for the decoder tests: its bytes
 * (padded) and descriptors. */
static unsigned char *tile_bytes(const char *path, long *n_tiles, LONGLONG **len, LONGLONG **off, int *nblock)
{
    fitsfile *f = NULL;
    int status = 0;
    fp_rice_hdu h;
    assert_int_equal(fits_open_file(&f, path, READONLY, &status), 0);
    assert_int_equal(fp_rice_probe(f, 2, 72, &h, &status), 0);
    assert_true(h.fast);
    *n_tiles = (h.ny - 1) / h.tile_rows + 1;
    *nblock = h.nblock;
    *len = malloc(sizeof(LONGLONG) * (size_t)*n_tiles);
    *off = malloc(sizeof(LONGLONG) * (size_t)*n_tiles);
    unsigned char *bytes = malloc((size_t)h.heap_n + FP_RICE_PAD);
    assert_int_equal(fits_read_descriptsll(f, h.colnum, 1, *n_tiles, *len, *off, &status), 0);
    assert_int_equal(ffmbyt(f, h.heap, 0, &status), 0);
    assert_int_equal(ffgbyt(f, h.heap_n, bytes, &status), 0);
    fits_close_file(f, &status);
    return bytes;
}

static void corrupt_tiles_fail_cleanly(void **state)
{
    (void)state;
    char *dir = tu_make_temp_dir(), path[1024], err[512];
    tf_path(path, sizeof path, dir, "tiles.fits");
    write_image(path, LONG_IMG, RICE_1, 72, 250, 72, 1, 0.0);
    long n_tiles = 0;
    LONGLONG *len = NULL, *off = NULL;
    int nblock = 0;
    unsigned char *heap = tile_bytes(path, &n_tiles, &len, &off, &nblock);
    float out[4][72], ref[4][72];
    uint64_t s = 99;
    for (long t = 0; t + 4 <= n_tiles; t += 4) {
        /* four lanes, with and without LZCNT, equal four single decodes */
        const unsigned char *src[4];
        size_t l[4];
        float *o[4] = {out[0], out[1], out[2], out[3]};
        for (int k = 0; k < 4; k++) {
            src[k] = heap + off[t + k];
            l[k] = (size_t)len[t + k];
            assert_int_equal(fp_rice_decode(src[k], l[k], nblock, ref[k], 72), 0);
        }
        assert_int_equal(fp_rice_decode4(src, l, nblock, o, 72, 0), 0);
        assert_memory_equal(out, ref, sizeof out);
        if (fp_rice_cpu_lzcnt()) {
            memset(out, 0, sizeof out);
            assert_int_equal(fp_rice_decode4(src, l, nblock, o, 72, 1), 0);
            assert_memory_equal(out, ref, sizeof out);
        }
        /* every truncation fails, in each lane */
        for (size_t cut = 0; cut < l[0]; cut++) {
            size_t l2[4] = {cut, l[1], l[2], l[3]};
            assert_int_not_equal(fp_rice_decode(src[0], cut, nblock, out[0], 72), 0);
            assert_int_not_equal(fp_rice_decode4(src, l2, nblock, o, 72, 0), 0);
        }
        /* random bytes: an error or some pixels, never a crash (ASan) */
        unsigned char junk[200 + FP_RICE_PAD];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (unsigned char)next_random(&s);
        (void)fp_rice_decode(junk, 1 + next_random(&s) % 200, 1 + (int)(next_random(&s) % 40), out[0], 72);
    }
    /* a block code no encoder writes (27..31) */
    unsigned char bad[4 + 1 + FP_RICE_PAD] = {0, 0, 0, 0, 0xF8};
    assert_int_equal(fp_rice_decode(bad, 5, 32, out[0], 72), FP_RICE_BAD_BLOCK);
    assert_int_equal(fp_rice_decode(bad, 3, 32, out[0], 72), FP_RICE_TRUNCATED);
    assert_int_equal(fp_rice_decode(bad, 5, 0, out[0], 72), FP_RICE_BAD_ARG);
    assert_non_null(strstr(fp_rice_strerror(FP_RICE_TRUNCATED), "truncated"));
    free(heap);
    free(len);
    free(off);

    /* a file whose descriptors point past the heap, or cut a tile short */
    for (int kind = 0; kind < 2; kind++) {
        fitsfile *f = NULL;
        int status = 0;
        fp_rice_hdu h;
        write_image(path, LONG_IMG, RICE_1, 72, 250, 72, 1, 0.0);
        assert_int_equal(fits_open_file(&f, path, READWRITE, &status), 0);
        assert_int_equal(fp_rice_probe(f, 2, 72, &h, &status), 0);
        LONGLONG l = 0, o = 0;
        fits_read_descriptll(f, h.colnum, 10, &l, &o, &status);
        if (kind == 0)
            fits_write_descript(f, h.colnum, 10, 40, h.heap_n, &status);
        else
            fits_write_descript(f, h.colnum, 10, l / 2, o, &status);
        fits_close_file(f, &status);
        assert_int_equal(status, 0);
        assert_int_equal(fits_open_file(&f, path, READONLY, &status), 0);
        float rows[16 * 72];
        fp_rice_hdu h2 = {0};
        fp_rice_buf b = {0};
        err[0] = '\0';
        assert_int_equal(fp_rice_read_rows(f, 2, &h2, &b, 72, 0, 16, rows, err, sizeof err), -1);
        assert_true(h2.fast);
        assert_non_null(strstr(err, kind == 0 ? "outside the heap" : "truncated"));
        assert_int_equal(fp_rice_read_rows(f, 2, &h2, &b, 72, 16, 16, rows, err, sizeof err), 0);
        fp_rice_buf_free(&b);
        fits_close_file(f, &status);
    }
    tu_remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fakeraws_match_cfitsio),
        cmocka_unit_test(odd_tiles_match_cfitsio),
        cmocka_unit_test(other_images_take_cfitsio),
        cmocka_unit_test(corrupt_tiles_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
