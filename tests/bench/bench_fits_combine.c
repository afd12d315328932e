/*
 * bench_fits_combine: combine N (10) full-size LATISS raws into a master
 * bias and compare, in the same run, with
 *   - the floor: just reading every amplifier image with cfitsio
 *     (fits_read_img, decompressing the RICE tiles), on 1 thread and on 2;
 *   - numpy: median(axis=0) of the same stack of raw amplifier images,
 *     already in memory (read with astropy first; that read is timed
 *     apart and not in the median's time);
 * and ISR (overscan, trim, assembly, the master bias, uncompressed
 * outputs) of every raw, as throughput of raw pixel data (int32, 75.5 MB
 * a raw) against the floor's, on 1 and 2 threads.
 *
 * Each round measures every case once, ours next to its reference, in
 * this order (reversed every other round, so drift on a loaded machine
 * falls on both sides alike): floor -j1, combine -j1, floor -j2,
 * combine -j2, numpy, ISR -j1, ISR -j2. Our combine's time is end to end
 * (opening and reading the raws, writing the master). Wall seconds are
 * the measure; the process CPU seconds of the -j1 cases (and numpy's) are
 * printed too, a check less sensitive to other load. Prints per round a
 * line "json {...}" with every figure (tests/bench/plot_fits_combine.py
 * draws them) and at the end min / median / max of every ratio over the
 * rounds. Never fails on timing.
 *
 *   bench_fits_combine [N_RAWS [ROUNDS]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fitsio.h>
#include <jansson.h>

#include "ocps/fitsproc.h"
#include "test_util.h"

#define PYTHON "/usr/bin/python3"

/* Read every amplifier image of raw i (one data unit of the floor). */
static int read_unit(void *ctx, size_t i, char *err, size_t errlen)
{
    char **paths = ctx;
    fitsfile *f = NULL;
    int status = 0, nhdu = 0, anynul = 0;
    float *buf = malloc(sizeof(float) * 576 * 2048);
    if (!buf || fits_open_file(&f, paths[i], READONLY, &status) || fits_get_num_hdus(f, &nhdu, &status)) {
        free(buf);
        snprintf(err, errlen, "cannot read %s", paths[i]);
        return -1;
    }
    for (int h = 2; h <= nhdu && status == 0; h++) {
        fits_movabs_hdu(f, h, NULL, &status);
        fits_read_img(f, TFLOAT, 1, 576 * 2048, NULL, buf, &anynul, &status);
    }
    fits_close_file(f, &status);
    free(buf);
    if (status)
        snprintf(err, errlen, "cfitsio status %d reading %s", status, paths[i]);
    return status ? -1 : 0;
}

/* Process CPU seconds (all threads). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Wall and process CPU seconds of one measured case. */
typedef struct timing {
    double wall, cpu;
} timing;

static timing timing_start(void)
{
    return (timing){tu_now(), cpu_now()};
}

static timing timing_end(timing t0)
{
    return (timing){tu_now() - t0.wall, cpu_now() - t0.cpu};
}

static timing time_floor(char **paths, int n, int threads)
{
    char err[256];
    timing t0 = timing_start();
    if (fp_parallel_run((size_t)n, threads, read_unit, paths, err, sizeof err) != 0) {
        fprintf(stderr, "floor: %s\n", err);
        exit(1);
    }
    return timing_end(t0);
}

static timing time_combine(char **paths, int n, int threads, const char *out)
{
    fp_combine_config cfg;
    char err[512];
    fp_combine_config_default(&cfg, FP_CALIB_BIAS);
    cfg.threads = threads;
    timing t0 = timing_start();
    if (fp_combine_run((const char *const *)paths, (size_t)n, out, &cfg, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "combine: %s\n", err);
        exit(1);
    }
    return timing_end(t0);
}

typedef struct isr_ctx {
    char **paths;
    const char *dir, *bias;
} isr_ctx;

static int isr_unit(void *ctx, size_t i, char *err, size_t errlen)
{
    isr_ctx *c = ctx;
    fp_isr_config cfg;
    char out[1024];
    fp_isr_config_default(&cfg);
    cfg.bias_path = c->bias;
    snprintf(out, sizeof out, "%s/isr_%zu.fits", c->dir, i);
    return fp_isr_run(c->paths[i], out, &cfg, NULL, NULL, err, errlen);
}

static timing time_isr(isr_ctx *c, int n, int threads)
{
    char err[512];
    timing t0 = timing_start();
    if (fp_parallel_run((size_t)n, threads, isr_unit, c, err, sizeof err) != 0) {
        fprintf(stderr, "isr: %s\n", err);
        exit(1);
    }
    return timing_end(t0);
}

/* numpy's median of the in-memory stack (wall and CPU) and astropy's read
 * before it (wall); -1 if unavailable. */
static timing time_numpy(char **paths, int n, double *read_s)
{
    char **argv = calloc((size_t)n + 3, sizeof *argv), *output = NULL;
    argv[0] = PYTHON;
    argv[1] = BENCH_NUMPY_SCRIPT;
    for (int i = 0; i < n; i++)
        argv[2 + i] = paths[i];
    int rc = tu_run(argv, &output);
    free(argv);
    timing t = {-1, -1};
    json_t *j =
        rc == 0 && output ? json_loads(strchr(output, '{') ? strchr(output, '{') : output, 0, NULL) : NULL;
    if (j) {
        t.wall = json_real_value(json_object_get(j, "median_s"));
        t.cpu = json_real_value(json_object_get(j, "median_cpu_s"));
        *read_s = json_real_value(json_object_get(j, "read_s"));
        json_decref(j);
    } else {
        fprintf(stderr, "numpy reference unavailable (%d): %s\n", rc, output ? output : "");
    }
    free(output);
    return t;
}

/* The 1-minute load average (-1 if unknown). */
static double load_average(void)
{
    double avg[1] = {-1};
    return getloadavg(avg, 1) == 1 ? avg[0] : -1;
}

/* Every figure of one round. */
typedef struct round_times {
    timing floor1, floor2, comb1, comb2, numpy, isr1, isr2;
    double numpy_read;
} round_times;

typedef struct bench {
    char **paths;
    int n;
    const char *dir, *bias;
} bench;

static void run_case(const bench *b, round_times *t, int which)
{
    isr_ctx ic = {b->paths, b->dir, b->bias};
    switch (which) {
    case 0:
        t->floor1 = time_floor(b->paths, b->n, 1);
        break;
    case 1:
        t->comb1 = time_combine(b->paths, b->n, 1, b->bias);
        break;
    case 2:
        t->floor2 = time_floor(b->paths, b->n, 2);
        break;
    case 3:
        t->comb2 = time_combine(b->paths, b->n, 2, b->bias);
        break;
    case 4:
        t->numpy = time_numpy(b->paths, b->n, &t->numpy_read);
        break;
    case 5:
        t->isr1 = time_isr(&ic, b->n, 1);
        break;
    default:
        t->isr2 = time_isr(&ic, b->n, 2);
        break;
    }
}

#define N_CASES 7

/* The ratios reported, per round. */
enum {
    R_COMB_FLOOR1,
    R_COMB_FLOOR2,
    R_NUMPY_COMB1,
    R_NUMPY_COMB2,
    R_CPU_COMB_FLOOR1,
    R_CPU_NUMPY_COMB1,
    R_ISR_FLOOR1,
    R_ISR_FLOOR2,
    R_SPEEDUP_FLOOR,
    R_SPEEDUP_COMB,
    R_SPEEDUP_ISR,
    N_RATIOS
};

static const char *const ratio_names[N_RATIOS] = {
    "combine/floor -j1",         "combine/floor -j2",         "numpy/combine -j1",
    "numpy/combine -j2",         "cpu combine/floor -j1",     "cpu numpy/combine -j1",
    "ISR MB/s / floor MB/s -j1", "ISR MB/s / floor MB/s -j2", "floor -j1/-j2 speed-up",
    "combine -j1/-j2 speed-up",  "ISR -j1/-j2 speed-up"};

static void round_ratios(const round_times *t, double *r)
{
    r[R_COMB_FLOOR1] = t->comb1.wall / t->floor1.wall;
    r[R_COMB_FLOOR2] = t->comb2.wall / t->floor2.wall;
    r[R_NUMPY_COMB1] = t->numpy.wall / t->comb1.wall;
    r[R_NUMPY_COMB2] = t->numpy.wall / t->comb2.wall;
    r[R_CPU_COMB_FLOOR1] = t->comb1.cpu / t->floor1.cpu;
    r[R_CPU_NUMPY_COMB1] = t->numpy.cpu / t->comb1.cpu;
    r[R_ISR_FLOOR1] = t->floor1.wall / t->isr1.wall;
    r[R_ISR_FLOOR2] = t->floor2.wall / t->isr2.wall;
    r[R_SPEEDUP_FLOOR] = t->floor1.wall / t->floor2.wall;
    r[R_SPEEDUP_COMB] = t->comb1.wall / t->comb2.wall;
    r[R_SPEEDUP_ISR] = t->isr1.wall / t->isr2.wall;
}

static void print_round(int r, const round_times *t, const double *ratio, double mb)
{
    printf(
        "round %d: read floor -j1 %.3f s (cpu %.3f), -j2 %.3f s; combine -j1 %.3f s (cpu %.3f), -j2 %.3f s; "
        "numpy median %.3f s (cpu %.3f; astropy read before it %.3f s)\n",
        r, t->floor1.wall, t->floor1.cpu, t->floor2.wall, t->comb1.wall, t->comb1.cpu, t->comb2.wall,
        t->numpy.wall, t->numpy.cpu, t->numpy_read);
    printf("round %d: ISR -j1 %.3f s (%.0f MB/s), -j2 %.3f s (%.0f MB/s); read floor %.0f MB/s (-j2 %.0f "
           "MB/s)\n",
           r, t->isr1.wall, mb / t->isr1.wall, t->isr2.wall, mb / t->isr2.wall, mb / t->floor1.wall,
           mb / t->floor2.wall);
    printf("round %d:", r);
    for (int i = 0; i < N_RATIOS; i++)
        printf("%s %s %.2f", i ? ";" : "", ratio_names[i], ratio[i]);
    printf("\n");
    json_t *j =
        json_pack("{s:i,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f}", "round", r, "mb", mb,
                  "floor1", t->floor1.wall, "floor2", t->floor2.wall, "combine1", t->comb1.wall, "combine2",
                  t->comb2.wall, "numpy", t->numpy.wall, "numpy_read", t->numpy_read, "isr1", t->isr1.wall,
                  "isr2", t->isr2.wall, "floor1_cpu", t->floor1.cpu, "combine1_cpu", t->comb1.cpu,
                  "numpy_cpu", t->numpy.cpu, "isr1_cpu", t->isr1.cpu, "load1", load_average());
    char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
    printf("json %s\n", text);
    free(text);
    json_decref(j);
    fflush(stdout);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* min / median / max of every ratio over the rounds. */
static void print_summary(double (*ratios)[N_RATIOS], int rounds)
{
    double *v = malloc(sizeof(double) * (size_t)rounds);
    printf("summary over %d rounds (min / median / max):\n", rounds);
    for (int i = 0; v && i < N_RATIOS; i++) {
        for (int r = 0; r < rounds; r++)
            v[r] = ratios[r][i];
        qsort(v, (size_t)rounds, sizeof *v, cmp_double);
        double med = rounds % 2 ? v[rounds / 2] : 0.5 * (v[rounds / 2 - 1] + v[rounds / 2]);
        printf("  %-28s %.2f / %.2f / %.2f\n", ratio_names[i], v[0], med, v[rounds - 1]);
    }
    free(v);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10, rounds = argc > 2 ? atoi(argv[2]) : 1;
    char *dir = tu_make_temp_dir(), err[512], out[1024], **paths = NULL;
    fp_fake_config cfg;
    fp_fake_config_default(&cfg);
    cfg.count = n;
    cfg.threads = 2;
    double t0 = tu_now();
    if (fp_fake_write(&cfg, dir, &paths, err, sizeof err) != 0) {
        fprintf(stderr, "ocps-fakeraws: %s\n", err);
        return 1;
    }
    printf("bench_fits_combine: %d full-size LATISS raws (16 x 576 x 2048 int32, RICE) written in %.2f s\n",
           n, tu_now() - t0);
    snprintf(out, sizeof out, "%s/bias.fits", dir);
    bench b = {paths, n, dir, out};
    double mb = n * 16.0 * 576 * 2048 * 4 / 1e6, (*ratios)[N_RATIOS] = calloc((size_t)rounds, sizeof *ratios);
    time_floor(paths, n, 1);        /* warm the page cache */
    time_combine(paths, n, 1, out); /* and write the master bias ISR uses */
    for (int r = 0; ratios && r < rounds; r++) {
        round_times t = {0};
        for (int c = 0; c < N_CASES; c++)
            run_case(&b, &t, r % 2 ? N_CASES - 1 - c : c);
        round_ratios(&t, ratios[r]);
        print_round(r + 1, &t, ratios[r], mb);
    }
    if (ratios && rounds > 0)
        print_summary(ratios, rounds);
    free(ratios);
    fp_free_paths(paths, n);
    tu_remove_tree(dir);
    free(dir);
    return 0;
}
