/*
 * test_fits_independent: independent readers of everything the FITS
 * processing writes. astropy opens every file and numpy recomputes the
 * master bias (tests/fits_check.py); Debian's fitsverify passes every file
 * (raws, plain and compressed masters, ISR outputs). Skipped (exit 77)
 * when /usr/bin/python3 lacks astropy/numpy or fitsverify is absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_fits_util.h"
#include "test_util.h"

#define PYTHON "/usr/bin/python3"
#define FITSVERIFY "/usr/bin/fitsverify"
#define SKIP_CODE 77

typedef struct fx {
    char *dir;
    char **raws;
    int n_raws;
    char outputs[6][1024];
    int n_outputs;
} fx;

static const char *add_output(fx *f, const char *name)
{
    return tf_path(f->outputs[f->n_outputs++], sizeof f->outputs[0], f->dir, name);
}

/* Raws, masters (plain, compressed, clipped mean), ISR outputs. */
static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    char err[512] = "";
    f->dir = tu_make_temp_dir();
    f->n_raws = 5;
    f->raws = tf_fake(f->dir, "raw", FP_FRAME_BIAS, f->n_raws, 61, 1);
    fp_provenance prov = {.job_id = "j",
                          .pipeline = "cpBias.yaml",
                          .task_label = "cpBiasCombine",
                          .inputs = (const char *const *)f->raws,
                          .n_inputs = (size_t)f->n_raws};
    fp_combine_config cc;
    fp_combine_config_default(&cc, FP_CALIB_BIAS);
    int rc = fp_combine_run(prov.inputs, prov.n_inputs, add_output(f, "bias.fits"), &cc, &prov, NULL, err,
                            sizeof err);
    cc.output.compress = true;
    rc |= fp_combine_run(prov.inputs, prov.n_inputs, add_output(f, "bias_rice.fits"), &cc, &prov, NULL, err,
                         sizeof err);
    cc.output.compress = false;
    cc.method = FP_COMBINE_SIGCLIP_MEAN;
    rc |= fp_combine_run(prov.inputs, prov.n_inputs, add_output(f, "bias_clip.fits"), &cc, &prov, NULL, err,
                         sizeof err);
    fp_isr_config ic;
    fp_isr_config_default(&ic);
    ic.bias_path = f->outputs[0];
    prov.n_inputs = 1;
    rc |= fp_isr_run(f->raws[0], add_output(f, "isr.fits"), &ic, &prov, NULL, err, sizeof err);
    ic.output.compress = true;
    rc |= fp_isr_run(f->raws[1], add_output(f, "isr_rice.fits"), &ic, &prov, NULL, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    fp_free_paths(f->raws, f->n_raws);
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* astropy reads every file; numpy's median of the same stack is our master. */
static void test_astropy_and_numpy_agree(void **state)
{
    fx *f = *state;
    char *argv[32];
    int n = 0;
    argv[n++] = PYTHON;
    argv[n++] = OCPS_FITS_CHECK;
    argv[n++] = "--master";
    argv[n++] = f->outputs[0];
    argv[n++] = "--raws";
    for (int i = 0; i < f->n_raws; i++)
        argv[n++] = f->raws[i];
    argv[n++] = "--outputs";
    for (int i = 1; i < f->n_outputs; i++)
        argv[n++] = f->outputs[i];
    argv[n] = NULL;
    char *output = NULL;
    int rc = tu_run(argv, &output);
    printf("%s", output ? output : "");
    assert_int_equal(rc, 0);
    free(output);
}

/* fitsverify: 0 errors (and 0 warnings) on every file written. */
static void test_fitsverify_every_file(void **state)
{
    fx *f = *state;
    for (int i = 0; i < f->n_raws + f->n_outputs; i++) {
        char *path = i < f->n_raws ? f->raws[i] : f->outputs[i - f->n_raws];
        char *argv[] = {FITSVERIFY, "-q", path, NULL}, *output = NULL;
        int rc = tu_run(argv, &output);
        if (rc != 0 || !strstr(output, "verification OK"))
            fail_msg("fitsverify %s: %d\n%s", path, rc, output ? output : "");
        free(output);
    }
}

/* Exit 77 (skipped) when the independent readers are not installed. */
static int readers_present(void)
{
    char *argv[] = {PYTHON, "-c", "import astropy.io.fits, numpy", NULL};
    if (access(PYTHON, X_OK) != 0 || tu_run(argv, NULL) != 0) {
        printf("skipped: %s cannot import astropy and numpy (apt-get install python3-astropy)\n", PYTHON);
        return 0;
    }
    if (access(FITSVERIFY, X_OK) != 0) {
        printf("skipped: %s is absent (apt-get install fitsverify)\n", FITSVERIFY);
        return 0;
    }
    return 1;
}

int main(void)
{
    if (!readers_present())
        return SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_astropy_and_numpy_agree),
        cmocka_unit_test(test_fitsverify_every_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
