/*
 * test_salgen_cli: the generator's command line as other tools use it:
 * the forms it writes for a non-indexed component with telemetry, and
 * clear errors (non-zero exit, a message naming the problem) for bad input.
 *
 *   test_salgen_cli PYTHON SALGEN_PY WIDGET_XML_DIR
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "test_util.h"

static char *python;
static char *salgen;
static char *widget_dir;

static int run_salgen(const char *xml_dir, const char *component, const char *out, char **log)
{
    char *argv[] = {python,          salgen,  "--xml-dir", (char *)xml_dir, "--component", (char *)component,
                    "--xml-version", "9.9.9", "--out",     (char *)out,     "--no-c",      NULL};
    return tu_run(argv, log);
}

static char *read_out(const char *out, const char *rel)
{
    char *p = tu_path_join(out, rel);
    char *text = tu_read_file(p, NULL);
    if (text == NULL) {
        fail_msg("%s was not written", p);
    }
    free(p);
    return text;
}

static void non_indexed_component_forms(void **state)
{
    (void)state;
    char *out = tu_make_temp_dir();
    char *log = NULL;
    assert_int_equal(run_salgen(widget_dir, "Widget", out, &log), 0);
    free(log);

    char *idl = read_out(out, "dds/sal_revCoded_Widget.idl");
    assert_non_null(strstr(idl, "// SAL_VERSION=7.4.1 XML_VERSION=9.9.9\nmodule Widget {\n"));
    assert_null(strstr(idl, "salIndex"));
    /* telemetry: no prefix; a keyless pragma as ts_sal writes it */
    assert_non_null(
        strstr(idl, "\t  double\txyz[3]; // @Metadata=(Units=\"m\",Description=\"Position.\")\n"));
    assert_non_null(strstr(idl, "\t  string<16>\tlabel;"));
    assert_non_null(strstr(idl, "\t  unsigned long\tcounts;"));
    /* a topic without its own description takes its first item's */
    assert_non_null(strstr(idl, "{  // @Metadata=(Description=\"A Widget_shared_ color.\")\n"));
    /* a multi-line description becomes a link to the ts_xml page */
    assert_non_null(strstr(idl, "Widget.html#stop>Widget_Widget_command_stop</A>"));
    /* missing Units stay empty */
    assert_non_null(strstr(idl, "\t  long\tcolor; // @Metadata=(Units=\"\","));
    free(idl);

    char *v = read_out(out, "dds/validated/Widget_position.idl");
    assert_non_null(strstr(v, "struct Widget_position {\n  string<8>\tprivate_revCode; //private\n"));
    assert_non_null(strstr(v, "  long long\tticks;\n  unsigned short\traw;\n  octet\tflags;\n"));
    assert_non_null(strstr(v, "};\n#pragma keylist Widget_position\n"));
    free(v);

    v = read_out(out, "dds/validated/Widget_logevent_color.idl");
    assert_non_null(
        strstr(v, "#pragma keylist Widget_logevent_color\n const long long Widget_shared_Red=1;\n"));
    free(v);

    char *avro = read_out(out, "avro/Widget/position.json");
    /* not indexed: the first field is private_sndStamp, not salIndex */
    const char *head = "{\"type\": \"record\", \"name\": \"position\", \"namespace\": \"lsst.sal.Widget\", "
                       "\"fields\": [{\"name\": \"private_sndStamp\"";
    assert_int_equal(strncmp(avro, head, strlen(head)), 0);
    assert_non_null(
        strstr(avro, "{\"name\": \"xyz\", \"type\": {\"type\": \"array\", \"items\": \"double\"}, "
                     "\"default\": [0.0, 0.0, 0.0], \"description\": \"Position.\", \"units\": \"m\"}"));
    assert_non_null(strstr(avro, "{\"name\": \"counts\", \"type\": \"long\""));
    assert_non_null(strstr(avro, "{\"name\": \"ticks\", \"type\": \"long\""));
    free(avro);

    tu_remove_tree(out);
    free(out);
}

static void indexed_any_component(void **state)
{
    (void)state;
    char *out = tu_make_temp_dir();
    assert_int_equal(run_salgen(widget_dir, "Gizmo", out, NULL), 0);
    char *idl = read_out(out, "dds/sal_revCoded_Gizmo.idl");
    assert_non_null(strstr(idl, "#pragma keylist level_"));
    assert_non_null(strstr(idl, "\t  long\tsalIndex;\t//private"));
    assert_null(strstr(idl, "ackcmd")); /* no commands, no ackcmd */
    assert_null(strstr(idl, "indexEnumeration_"));
    free(idl);
    tu_remove_tree(out);
    free(out);
}

/* Write a one-component ts_xml tree with the given Commands file body. */
static char *make_tree(const char *commands)
{
    char *dir = tu_make_temp_dir();
    char *p = tu_path_join(dir, "SALSubsystems.xml");
    const char *subs = "<SALSubsystemSet><SALSubsystem><Name>Bad</Name><IndexEnumeration>no"
                       "</IndexEnumeration><AddedGenerics></AddedGenerics></SALSubsystem></SALSubsystemSet>";
    tu_write_file(p, subs, strlen(subs));
    free(p);
    p = tu_path_join(dir, "SALGenerics.xml");
    const char *gen = "<SALObjects><SALEventSet><SALEvent><Subsystem>SALGeneric</Subsystem>"
                      "<EFDB_Topic>SALGeneric_logevent_heartbeat</EFDB_Topic><Category>mandatory</Category>"
                      "</SALEvent></SALEventSet></SALObjects>";
    tu_write_file(p, gen, strlen(gen));
    free(p);
    p = tu_path_join(dir, "Bad");
    mkdir(p, 0755);
    char *f = tu_path_join(p, "Bad_Commands.xml");
    tu_write_file(f, commands, strlen(commands));
    free(f);
    free(p);
    return dir;
}

static void assert_fails_with(const char *commands, const char *component, const char *message)
{
    char *dir = make_tree(commands);
    char *out = tu_path_join(dir, "out");
    char *log = NULL;
    int rc = run_salgen(dir, component, out, &log);
    assert_int_equal(rc, 1);
    if (strstr(log, message) == NULL) {
        fail_msg("expected \"%s\" in: %s", message, log);
    }
    assert_null(strstr(log, "Traceback"));
    free(log);
    free(out);
    tu_remove_tree(dir);
    free(dir);
}

#define CMD(items)                                                                                           \
    "<SALCommandSet><SALCommand><Subsystem>Bad</Subsystem><EFDB_Topic>Bad_command_go</EFDB_Topic>" items     \
    "</SALCommand></SALCommandSet>"
#define ITEM(name, type) "<item><EFDB_Name>" name "</EFDB_Name><IDL_Type>" type "</IDL_Type></item>"

static void bad_input_gives_clear_errors(void **state)
{
    (void)state;
    assert_fails_with(CMD(ITEM("x", "long")), "Nope", "component 'Nope' is not in");
    assert_fails_with(CMD(ITEM("speed", "quaternion")), "Bad",
                      "field speed: unsupported IDL_Type 'quaternion'");
    assert_fails_with(CMD(ITEM("a", "long") ITEM("a", "double")), "Bad", "command_go: duplicate field names");
    assert_fails_with(CMD("<Enumeration>A, B=4</Enumeration>" ITEM("x", "long")), "Bad",
                      "mixes implicit and explicit values");
    assert_fails_with("<SALCommandSet><SALCommand>", "Bad", "Bad_Commands.xml");
    assert_fails_with("<SALCommandSet><SALCommand><Subsystem>Bad</Subsystem><EFDB_Topic>Bad_logevent_x"
                      "</EFDB_Topic></SALCommand></SALCommandSet>",
                      "Bad", "lacks the command_ prefix");
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s PYTHON SALGEN_PY WIDGET_XML_DIR\n", argv[0]);
        return 2;
    }
    python = argv[1];
    salgen = argv[2];
    widget_dir = argv[3];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(non_indexed_component_forms),
        cmocka_unit_test(indexed_any_component),
        cmocka_unit_test(bad_input_gives_clear_errors),
    };
    return cmocka_run_group_tests_name("salgen_cli", tests, NULL, NULL);
}
