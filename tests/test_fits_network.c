/*
 * test_fits_network: the comparator networks of fitsproc (fp_network.c)
 * give exactly what sorting gives: the pruned median network the same
 * median as fp_median_inplace for every stack depth up to 64, the full
 * network sorted wires, and the overscan levels of a block the same values
 * as the row-by-row code, ties and SSE tails included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fp__internal.h"

/* A deterministic generator (xorshift64*). */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* Integer-valued floats from a narrow range (many ties), or half-integers. */
static float random_value(uint64_t *s)
{
    return (float)(next_random(s) % 41) * ((next_random(s) & 1) ? 1.0f : 0.5f) - 7.0f;
}

enum { LEN = 13 }; /* pixels per wire: three SSE groups and a scalar tail */

static void median_network_matches_sorting(void **state)
{
    (void)state;
    uint64_t seed = 12345;
    float wires[FP_NETWORK_MAX_WIRES * LEN], got[LEN], column[FP_NETWORK_MAX_WIRES];
    for (int n = 1; n <= FP_NETWORK_MAX_WIRES; n++) {
        fp_network net;
        assert_int_equal(fp_network_median(&net, n), 0);
        for (int trial = 0; trial < 20; trial++) {
            for (int k = 0; k < n * LEN; k++)
                wires[k] = random_value(&seed);
            float expect[LEN];
            for (int i = 0; i < LEN; i++) {
                for (int k = 0; k < n; k++)
                    column[k] = wires[k * LEN + i];
                expect[i] = fp_median_inplace(column, (size_t)n);
            }
            fp_network_apply(&net, wires, LEN, LEN);
            fp_network_median_of(&net, wires, LEN, LEN, got);
            assert_memory_equal(got, expect, sizeof expect);
        }
    }
}

static void sorting_network_sorts(void **state)
{
    (void)state;
    uint64_t seed = 99;
    float wires[FP_NETWORK_MAX_WIRES * LEN];
    for (int n = 1; n <= FP_NETWORK_MAX_WIRES; n++) {
        fp_network net;
        assert_int_equal(fp_network_sort(&net, n), 0);
        for (int k = 0; k < n * LEN; k++)
            wires[k] = random_value(&seed);
        fp_network_apply(&net, wires, LEN, LEN);
        for (int k = 1; k < n; k++)
            for (int i = 0; i < LEN; i++)
                assert_true(wires[(k - 1) * LEN + i] <= wires[k * LEN + i]);
    }
    fp_network net;
    assert_int_equal(fp_network_sort(&net, 0), -1);
    assert_int_equal(fp_network_sort(&net, FP_NETWORK_MAX_WIRES + 1), -1);
}

/* Overscan levels of a block by the network equal the row-by-row ones. */
static void overscan_levels_match_rows(void **state)
{
    (void)state;
    uint64_t seed = 7;
    const int raw_nx = 80;
    for (int width = 1; width <= 64; width += 7) {
        fp_amp amp = {.datasec = {2, raw_nx - width, 1, 100},
                      .biassec = {raw_nx - width + 1, raw_nx, 1, 100}};
        fp_network net;
        assert_int_equal(fp_network_median(&net, width), 0);
        for (int nrows = 1; nrows <= 70; nrows += 23) {
            float *rows = malloc(sizeof(float) * (size_t)(nrows * raw_nx));
            float *scratch = malloc(sizeof(float) * (size_t)((width + 1) * nrows + raw_nx));
            double *level = malloc(sizeof(double) * (size_t)nrows);
            float *out = malloc(sizeof(float) * (size_t)raw_nx),
                  *expect = malloc(sizeof(float) * (size_t)raw_nx);
            for (int k = 0; k < nrows * raw_nx; k++)
                rows[k] = 12000.0f + (float)(next_random(&seed) % 9);
            fp_overscan_levels(rows, nrows, raw_nx, &amp, FP_OVERSCAN_MEDIAN, &net, scratch, level);
            for (int r = 0; r < nrows; r++) {
                fp_overscan_row(rows + r * raw_nx, &amp, FP_OVERSCAN_MEDIAN, scratch, expect);
                fp_trim_row(rows + r * raw_nx, &amp, level[r], out);
                assert_memory_equal(out, expect, sizeof(float) * (size_t)fp_section_nx(&amp.datasec));
            }
            free(rows);
            free(scratch);
            free(level);
            free(out);
            free(expect);
        }
    }
}

/* The sigma-clipped mean stays a mean for deep stacks (above 64 inputs):
 * 60 ones, 40 twos and an outlier give 1.4 (the median would be 1). */
static void sigclip_mean_of_a_deep_stack(void **state)
{
    (void)state;
    for (int n = 101; n <= 1001; n += 900) {
        float *v = calloc((size_t)n, sizeof *v);
        assert_non_null(v);
        int ones = (n - 1) * 6 / 10;
        for (int i = 0; i < n - 1; i++)
            v[(i * 37) % (n - 1)] = i < ones ? 1.0f : 2.0f; /* not in order */
        v[n - 1] = 1000.0f;
        float mean = fp_combine_values(v, n, FP_COMBINE_SIGCLIP_MEAN, 3.0, 3);
        assert_float_equal(mean, 1.4f, 1e-4);
        free(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(median_network_matches_sorting),
        cmocka_unit_test(sorting_network_sorts),
        cmocka_unit_test(overscan_levels_match_rows),
        cmocka_unit_test(sigclip_mean_of_a_deep_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
