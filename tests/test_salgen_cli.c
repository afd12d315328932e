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
    /* the non-indexed ackcmd template has one tab fewer before "ack" */
    assert_non_null(strstr(idl, "\t  long\tack; // @Metadata=(Units=\"unitless\",Description=\"unitless\")\n"
                                "\t  long\t\terror;"));
    assert_non_null(strstr(idl, "#pragma keylist ackcmd_"));
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
    /* ts_sal takes "any" as a one-item index enumeration */
    assert_non_null(strstr(idl, "\t const long long indexEnumeration_any=1;\n"));
    free(idl);
    /* ts_xml's Avro generator has ackcmd even without commands */
    char *ack = read_out(out, "avro/Gizmo/ackcmd.json");
    assert_non_null(ack);
    free(ack);
    tu_remove_tree(out);
    free(out);
}

/* Write a one-component ts_xml tree with the given Commands file body
 * (one element per line where it matters: ts_sal reads lines). */
static char *make_tree(const char *commands)
{
    char *dir = tu_make_temp_dir();
    char *p = tu_path_join(dir, "SALSubsystems.xml");
    const char *subs = "<SALSubsystemSet>\n<SALSubsystem>\n<Name>Bad</Name>\n<IndexEnumeration>no"
                       "</IndexEnumeration>\n<AddedGenerics></AddedGenerics>\n</SALSubsystem>\n"
                       "</SALSubsystemSet>\n";
    tu_write_file(p, subs, strlen(subs));
    free(p);
    p = tu_path_join(dir, "SALGenerics.xml");
    const char *gen =
        "<SALObjects>\n<SALEventSet>\n<SALEvent>\n<Subsystem>SALGeneric</Subsystem>\n"
        "<EFDB_Topic>SALGeneric_logevent_heartbeat</EFDB_Topic>\n<Category>mandatory</Category>\n"
        "</SALEvent>\n</SALEventSet>\n</SALObjects>\n";
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

/* Rules ts_sal follows that no Rubin vector shows: a <Description> placed
 * before <EFDB_Topic> belongs to the previous topic if that one has none
 * yet; an enumeration inside an item is the topic's, its values copied as
 * written; description text keeps its XML escapes. ts_xml (Avro) reads
 * the same XML as a tree. */
static void line_rules_without_vectors(void **state)
{
    (void)state;
    const char *commands = "<SALCommandSet>\n"
                           "  <SALCommand>\n"
                           "    <Subsystem>Bad</Subsystem>\n"
                           "    <EFDB_Topic>Bad_command_a</EFDB_Topic>\n"
                           "    <item>\n"
                           "      <EFDB_Name>x</EFDB_Name>\n"
                           "      <IDL_Type>long</IDL_Type>\n"
                           "      <Count>1</Count>\n"
                           "      <Enumeration>X_One=01, X_Two=0x02</Enumeration>\n"
                           "    </item>\n"
                           "  </SALCommand>\n"
                           "  <SALCommand>\n"
                           "    <Description>Placed before EFDB_Topic.</Description>\n"
                           "    <Subsystem>Bad</Subsystem>\n"
                           "    <EFDB_Topic>Bad_command_b</EFDB_Topic>\n"
                           "    <item>\n"
                           "      <EFDB_Name>y</EFDB_Name>\n"
                           "      <Description>At most &lt;y&gt;.</Description>\n"
                           "      <IDL_Type>long</IDL_Type>\n"
                           "    </item>\n"
                           "  </SALCommand>\n"
                           "</SALCommandSet>\n";
    char *dir = make_tree(commands);
    char *out = tu_path_join(dir, "out");
    char *log = NULL;
    assert_int_equal(run_salgen(dir, "Bad", out, &log), 0);
    free(log);
    char *idl = read_out(out, "dds/sal_revCoded_Bad.idl");
    assert_non_null(strstr(idl, "struct command_a_"));
    assert_non_null(
        strstr(idl, "{  // @Metadata=(Description=\"Placed before EFDB_Topic.\")\n\t  string<8>"));
    assert_non_null(strstr(idl, "{  // @Metadata=(Description=\"At most &lt;y&gt;.\")\n"));
    assert_non_null(strstr(idl, "\t const long long a_X_One=01;\n\t const long long a_X_Two=0x02;\n"));
    free(idl);
    char *a = read_out(out, "avro/Bad/command_a.json");
    assert_non_null(strstr(a, "\"description\": \"\"}"));
    free(a);
    char *b = read_out(out, "avro/Bad/command_b.json");
    assert_non_null(strstr(b, "\"description\": \"At most <y>.\""));
    assert_non_null(strstr(b, "\"description\": \"Placed before EFDB_Topic.\"}"));
    free(b);
    tu_remove_tree(dir);
    free(out);
    free(dir);
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
        cmocka_unit_test(line_rules_without_vectors),
    };
    return cmocka_run_group_tests_name("salgen_cli", tests, NULL, NULL);
}
