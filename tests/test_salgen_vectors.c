/*
 * test_salgen_vectors: the generator's output equals, byte for byte, what
 * Rubin's own generators produced for the same ts_xml release.
 *
 *   test_salgen_vectors dds  GEN_DIR VECTOR_DIR COMPONENT
 *       GEN_DIR/dds vs VECTOR_DIR (ts_sal 7: validated/<COMPONENT>_*.idl,
 *       sal_revCoded, revCodes; VECTOR_DIR may hold several components)
 *   test_salgen_vectors avro GEN_DIR VECTOR_DIR COMPONENT
 *       GEN_DIR/avro vs VECTOR_DIR (ts_xml: <C>/ and <C>/indent4/ JSON, revCodes)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

static const char *gen_dir;
static const char *vec_dir;
static const char *component;

/* Keep the names that start with prefix; return how many. */
static int keep_prefixed(char **names, int n, const char *prefix)
{
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (strncmp(names[i], prefix, strlen(prefix)) == 0) {
            names[kept++] = names[i];
        } else {
            free(names[i]);
        }
    }
    return kept;
}

/* Assert that every `prefix`*`suffix` file in expected_dir exists in
 * actual_dir with identical bytes, and that actual_dir has no extra ones. */
static void assert_same_files(const char *expected_dir, const char *actual_dir, const char *prefix,
                              const char *suffix)
{
    char **want;
    char **have;
    int nwant = tu_list_files(expected_dir, suffix, &want);
    int nhave = tu_list_files(actual_dir, suffix, &have);
    nwant = keep_prefixed(want, nwant, prefix);
    nhave = keep_prefixed(have, nhave, prefix);
    assert_true(nwant > 0);
    for (int i = 0; i < nwant; i++) {
        char *ep = tu_path_join(expected_dir, want[i]);
        char *ap = tu_path_join(actual_dir, want[i]);
        size_t elen = 0;
        size_t alen = 0;
        char *e = tu_read_file(ep, &elen);
        char *a = tu_read_file(ap, &alen);
        if (a == NULL) {
            fail_msg("%s was not generated", ap);
        }
        if (elen != alen || memcmp(e, a, elen) != 0) {
            size_t at = 0;
            while (at < elen && at < alen && e[at] == a[at]) {
                at++;
            }
            fail_msg("%s differs from %s at byte %zu", ap, ep, at);
        }
        free(e);
        free(a);
        free(ep);
        free(ap);
    }
    assert_int_equal(nhave, nwant);
    tu_free_names(want, nwant);
    tu_free_names(have, nhave);
}

static void assert_same_file(const char *expected, const char *actual)
{
    size_t elen = 0;
    size_t alen = 0;
    char *e = tu_read_file(expected, &elen);
    char *a = tu_read_file(actual, &alen);
    assert_non_null(e);
    if (a == NULL) {
        fail_msg("%s was not generated", actual);
    }
    assert_int_equal(alen, elen);
    assert_memory_equal(a, e, elen);
    free(e);
    free(a);
}

static char *fmt(const char *f, const char *a, const char *b)
{
    char *out = malloc(4096);
    snprintf(out, 4096, f, a, b);
    return out;
}

static void dds_validated_files_identical(void **state)
{
    (void)state;
    char *e = tu_path_join(vec_dir, "validated");
    char *a = fmt("%s/dds/validated", gen_dir, "");
    char *prefix = fmt("%s_", component, "");
    assert_same_files(e, a, prefix, ".idl");
    free(prefix);
    free(e);
    free(a);
}

static void dds_revcoded_idl_identical(void **state)
{
    (void)state;
    char *e = fmt("%s/sal_revCoded_%s.idl", vec_dir, component);
    char *a = fmt("%s/dds/sal_revCoded_%s.idl", gen_dir, component);
    assert_same_file(e, a);
    free(e);
    free(a);
}

static void dds_revcodes_identical(void **state)
{
    (void)state;
    char *e = fmt("%s/%s_revCodes.txt", vec_dir, component);
    char *a = fmt("%s/dds/%s_revCodes.txt", gen_dir, component);
    assert_same_file(e, a);
    free(e);
    free(a);
}

static void avro_schemas_identical(void **state)
{
    (void)state;
    char *e = tu_path_join(vec_dir, component);
    char *a = fmt("%s/avro/%s", gen_dir, component);
    assert_same_files(e, a, "", ".json");
    free(e);
    free(a);
}

static void avro_indent4_identical(void **state)
{
    (void)state;
    char *e = fmt("%s/%s/indent4", vec_dir, component);
    char *a = fmt("%s/avro/%s/indent4", gen_dir, component);
    assert_same_files(e, a, "", ".json");
    free(e);
    free(a);
}

static void avro_revcodes_identical(void **state)
{
    (void)state;
    char *e = fmt("%s/%s_revCodes.txt", vec_dir, component);
    char *a = fmt("%s/avro/%s_revCodes.txt", gen_dir, component);
    assert_same_file(e, a);
    free(e);
    free(a);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s dds|avro GEN_DIR VECTOR_DIR COMPONENT\n", argv[0]);
        return 2;
    }
    gen_dir = argv[2];
    vec_dir = argv[3];
    component = argv[4];
    const struct CMUnitTest dds[] = {
        cmocka_unit_test(dds_validated_files_identical),
        cmocka_unit_test(dds_revcoded_idl_identical),
        cmocka_unit_test(dds_revcodes_identical),
    };
    const struct CMUnitTest avro[] = {
        cmocka_unit_test(avro_schemas_identical),
        cmocka_unit_test(avro_indent4_identical),
        cmocka_unit_test(avro_revcodes_identical),
    };
    if (strcmp(argv[1], "dds") == 0) {
        return cmocka_run_group_tests_name("salgen_vectors_dds", dds, NULL, NULL);
    }
    return cmocka_run_group_tests_name("salgen_vectors_avro", avro, NULL, NULL);
}
