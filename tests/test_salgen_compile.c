/*
 * test_salgen_compile: every IDL file the generator writes compiles with
 * Cyclone's idlc, and every Avro schema parses with avro-c as a record
 * named after its topic in namespace lsst.sal.<Component>.
 *
 *   test_salgen_compile GEN_DIR:COMPONENT...
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <cmocka.h>

#include "test_util.h"

static int ntargets;
static char **targets; /* "GEN_DIR:COMPONENT" */

static void split_target(const char *t, char **dir, char **comp)
{
    const char *colon = strrchr(t, ':');
    assert_non_null(colon);
    *dir = strndup(t, (size_t)(colon - t));
    *comp = strdup(colon + 1);
}

/* Compile one IDL file with idlc into a scratch directory. */
static void assert_idlc_compiles(const char *idl)
{
    char *out = tu_make_temp_dir();
    assert_non_null(out);
    char *argv[] = {"idlc", "-Wno-implicit-extensibility", "-o", out, (char *)idl, NULL};
    char *log = NULL;
    int rc = tu_run(argv, &log);
    if (rc != 0) {
        fail_msg("idlc %s exited %d: %s", idl, rc, log ? log : "");
    }
    free(log);
    tu_remove_tree(out);
    free(out);
}

static void every_idl_compiles(void **state)
{
    (void)state;
    for (int t = 0; t < ntargets; t++) {
        char *dir;
        char *comp;
        split_target(targets[t], &dir, &comp);
        char *dds = tu_path_join(dir, "dds");
        char *validated = tu_path_join(dds, "validated");
        char **names;
        int n = tu_list_files(dds, ".idl", &names);
        assert_int_equal(n, 1); /* sal_revCoded_<C>.idl */
        char *p = tu_path_join(dds, names[0]);
        assert_idlc_compiles(p);
        free(p);
        tu_free_names(names, n);
        n = tu_list_files(validated, ".idl", &names);
        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
            p = tu_path_join(validated, names[i]);
            assert_idlc_compiles(p);
            free(p);
        }
        tu_free_names(names, n);
        free(validated);
        free(dds);
        free(dir);
        free(comp);
    }
}

static void assert_schema_parses(const char *path, const char *comp)
{
    size_t len = 0;
    char *json = tu_read_file(path, &len);
    assert_non_null(json);
    avro_schema_t schema;
    if (avro_schema_from_json_length(json, len, &schema) != 0) {
        fail_msg("avro-c rejects %s: %s", path, avro_strerror());
    }
    assert_true(is_avro_record(schema));
    /* the record is named after the file, in namespace lsst.sal.<C> */
    const char *base = strrchr(path, '/') + 1;
    char expect_name[256];
    snprintf(expect_name, sizeof expect_name, "%.*s", (int)(strlen(base) - 5), base);
    assert_string_equal(avro_schema_name(schema), expect_name);
    char expect_ns[256];
    snprintf(expect_ns, sizeof expect_ns, "lsst.sal.%s", comp);
    assert_string_equal(avro_schema_namespace(schema), expect_ns);
    assert_non_null(avro_schema_record_field_get(schema, "private_sndStamp"));
    assert_non_null(avro_schema_record_field_get(schema, "private_efdStamp"));
    avro_schema_decref(schema);
    free(json);
}

static void every_avro_schema_parses(void **state)
{
    (void)state;
    for (int t = 0; t < ntargets; t++) {
        char *dir;
        char *comp;
        split_target(targets[t], &dir, &comp);
        char *avro = tu_path_join(dir, "avro");
        char *cdir = tu_path_join(avro, comp);
        char *indent4 = tu_path_join(cdir, "indent4");
        const char *dirs[] = {cdir, indent4};
        for (int d = 0; d < 2; d++) {
            char **names;
            int n = tu_list_files(dirs[d], ".json", &names);
            assert_true(n > 0);
            for (int i = 0; i < n; i++) {
                char *p = tu_path_join(dirs[d], names[i]);
                assert_schema_parses(p, comp);
                free(p);
            }
            tu_free_names(names, n);
        }
        free(indent4);
        free(cdir);
        free(avro);
        free(dir);
        free(comp);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s GEN_DIR:COMPONENT...\n", argv[0]);
        return 2;
    }
    ntargets = argc - 1;
    targets = argv + 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_idl_compiles),
        cmocka_unit_test(every_avro_schema_parses),
    };
    return cmocka_run_group_tests_name("salgen_compile", tests, NULL, NULL);
}
