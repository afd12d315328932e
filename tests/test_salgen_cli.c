/*
 * test_salgen_cli: the generator's command line as other tools use it:
 * the forms it writes for a non-indexed component with telemetry, and
 * clear errors (non-zero exit, a message naming the problem) for bad input.
 *
 *   test_salgen_cli PYTHON SALGEN_PY WIDGET_XML_DIR CAMERA_DATA_DIR
 *
 * CAMERA_DATA_DIR is in ts_xml's data/ layout: sal_interfaces/ and
 * interfaces/<NAME>/ with .avsc files (the cameras' hand-written topics).
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
static char *camera_dir;

static int run_salgen_release(const char *xml_dir, const char *component, const char *release,
                              const char *out, char **log)
{
    char *argv[] = {
        python,          salgen,          "--xml-dir", (char *)xml_dir, "--component", (char *)component,
        "--xml-version", (char *)release, "--out",     (char *)out,     "--no-c",      NULL};
    return tu_run(argv, log);
}

static int run_salgen(const char *xml_dir, const char *component, const char *out, char **log)
{
    return run_salgen_release(xml_dir, component, "9.9.9", out, log);
}

static int run_salgen_c(const char *xml_dir, const char *component, const char *out, char **log)
{
    char *argv[] = {python,          salgen,  "--xml-dir", (char *)xml_dir, "--component", (char *)component,
                    "--xml-version", "9.9.9", "--out",     (char *)out,     NULL};
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

/* The Avro types of ts_xml's own table in the release named (field_info.py
 * AVRO_TYPES, which salobj 8 registers): 20.0.0 made a SAL long an Avro
 * long, 20.1.0 and 20.2.0 made float and double nullable unions, 20.3.0
 * on int and plain float/double. The private fields follow the same table
 * (ts_xml gives them SAL types). */
static void assert_release_has(const char *release, const char *avro, const char *expect)
{
    if (strstr(avro, expect) == NULL) {
        fail_msg("ts_xml %s: no %s in %s", release, expect, avro);
    }
}

static void avro_types_follow_the_release(void **state)
{
    (void)state;
    static const struct {
        const char *release;
        const char *seqnum, *color, *snd_stamp, *xyz;
    } want[] = {
        {"20.0.0", "\"long\"", "\"long\"", "\"double\"", "\"double\""},
        {"20.1.0", "\"int\"", "\"int\"", "[\"double\", \"null\"]", "[\"double\", \"null\"]"},
        {"20.2.0", "\"int\"", "\"int\"", "[\"double\", \"null\"]", "[\"double\", \"null\"]"},
        {"20.3.0", "\"int\"", "\"int\"", "\"double\"", "\"double\""},
        {"28.0.1", "\"int\"", "\"int\"", "\"double\"", "\"double\""},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char *out = tu_make_temp_dir();
        char *log = NULL;
        assert_int_equal(run_salgen_release(widget_dir, "Widget", want[i].release, out, &log), 0);
        free(log);
        char expect[256];
        char *avro = read_out(out, "avro/Widget/logevent_color.json");
        snprintf(expect, sizeof expect, "{\"name\": \"private_seqNum\", \"type\": %s, \"default\": 0,",
                 want[i].seqnum);
        assert_release_has(want[i].release, avro, expect);
        snprintf(expect, sizeof expect, "{\"name\": \"color\", \"type\": %s,", want[i].color);
        assert_release_has(want[i].release, avro, expect);
        free(avro);
        avro = read_out(out, "avro/Widget/position.json");
        snprintf(expect, sizeof expect, "{\"name\": \"private_sndStamp\", \"type\": %s, \"default\": 0.0,",
                 want[i].snd_stamp);
        assert_release_has(want[i].release, avro, expect);
        snprintf(expect, sizeof expect,
                 "{\"name\": \"xyz\", \"type\": {\"type\": \"array\", \"items\": %s}, "
                 "\"default\": [0.0, 0.0, 0.0],",
                 want[i].xyz);
        assert_release_has(want[i].release, avro, expect);
        free(avro);
        tu_remove_tree(out);
        free(out);
    }
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

/* Write SALSubsystems.xml (one component NAME with the given
 * IndexEnumeration) and a SALGenerics.xml of one heartbeat into DIR. */
static void write_subsystem(const char *dir, const char *name, const char *index)
{
    char *p = tu_path_join(dir, "SALSubsystems.xml");
    char subs[512];
    snprintf(subs, sizeof subs,
             "<SALSubsystemSet>\n<SALSubsystem>\n<Name>%s</Name>\n<IndexEnumeration>%s"
             "</IndexEnumeration>\n<AddedGenerics></AddedGenerics>\n</SALSubsystem>\n"
             "</SALSubsystemSet>\n",
             name, index);
    tu_write_file(p, subs, strlen(subs));
    free(p);
    p = tu_path_join(dir, "SALGenerics.xml");
    const char *gen =
        "<SALObjects>\n<SALEventSet>\n<SALEvent>\n<Subsystem>SALGeneric</Subsystem>\n"
        "<EFDB_Topic>SALGeneric_logevent_heartbeat</EFDB_Topic>\n<Category>mandatory</Category>\n"
        "</SALEvent>\n</SALEventSet>\n</SALObjects>\n";
    tu_write_file(p, gen, strlen(gen));
    free(p);
}

/* Write a one-component ts_xml tree with the given IndexEnumeration and
 * Commands file body (one element per line where it matters: ts_sal reads
 * lines). */
static char *make_tree_indexed(const char *commands, const char *index)
{
    char *dir = tu_make_temp_dir();
    write_subsystem(dir, "Bad", index);
    char *p = tu_path_join(dir, "Bad");
    mkdir(p, 0755);
    char *f = tu_path_join(p, "Bad_Commands.xml");
    tu_write_file(f, commands, strlen(commands));
    free(f);
    free(p);
    return dir;
}

static char *make_tree(const char *commands)
{
    return make_tree_indexed(commands, "no");
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

/* ts_xml refuses an item named as a private field it adds (its record would
 * have two fields of that name): salgen writes no Avro schema for that
 * topic and says which component, topic and field, as it does for a type
 * Avro cannot carry; the DDS output of a salIndex item (ts_sal accepts it)
 * is still written. salIndex is private only in an indexed component. */
static void private_field_names_refused_for_avro(void **state)
{
    (void)state;
    const struct {
        const char *index, *item, *message;
    } cases[] = {
        {"no", "private_sndStamp", "Bad command_go: field private_sndStamp already found"},
        {"1", "salIndex", "Bad command_go: field salIndex already found"},
        {"no", "salIndex", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char commands[1024];
        snprintf(commands, sizeof commands,
                 "<SALCommandSet>\n<SALCommand>\n<Subsystem>Bad</Subsystem>\n"
                 "<EFDB_Topic>Bad_command_go</EFDB_Topic>\n<item>\n<EFDB_Name>%s</EFDB_Name>\n"
                 "<IDL_Type>long</IDL_Type>\n<Count>1</Count>\n</item>\n</SALCommand>\n</SALCommandSet>\n",
                 cases[i].item);
        char *dir = make_tree_indexed(commands, cases[i].index);
        char *out = tu_path_join(dir, "out");
        char *log = NULL;
        int rc = run_salgen(dir, "Bad", out, &log);
        if (cases[i].message == NULL) {
            assert_int_equal(rc, 0);
            char *a = read_out(out, "avro/Bad/command_go.json");
            assert_non_null(strstr(a, "{\"name\": \"salIndex\", \"type\": \"int\", \"default\": 0, "
                                      "\"description\": \"\", \"units\": \"unitless\"}"));
            free(a);
        } else {
            /* the DDS rules (ts_sal drops items named private_*) fail the
             * first case on their own */
            assert_int_equal(rc, strncmp(cases[i].item, "private_", 8) == 0 ? 1 : 0);
            if (strstr(log, cases[i].message) == NULL ||
                strstr(log, "no Avro schema for command_go") == NULL) {
                fail_msg("expected \"%s\" in: %s", cases[i].message, log);
            }
            char *p = tu_path_join(out, "avro/Bad/command_go.json");
            assert_null(tu_read_file(p, NULL));
            free(p);
            char *codes = read_out(out, "avro/Bad_revCodes.txt");
            assert_null(strstr(codes, "command_go"));
            assert_non_null(strstr(codes, "ackcmd "));
            free(codes);
        }
        if (strcmp(cases[i].item, "salIndex") == 0) {
            /* ts_sal drops items named private_*, so only salIndex has DDS output */
            free(read_out(out, "dds/Bad_revCodes.txt"));
        }
        free(log);
        free(out);
        tu_remove_tree(dir);
        free(dir);
    }
}

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

/* ts_xml before 10.1 gives its generics no <Category> (ts_sal 7 cannot
 * build those releases either): the error says so, not only that
 * 'mandatory' names nothing. */
static void generics_without_categories_named(void **state)
{
    (void)state;
    char *dir = make_tree(CMD(ITEM("x", "long")));
    char *p = tu_path_join(dir, "SALGenerics.xml");
    const char *gen = "<SALObjects>\n<SALEventSet>\n<SALEvent>\n<Subsystem>SALGeneric</Subsystem>\n"
                      "<EFDB_Topic>SALGeneric_logevent_heartbeat</EFDB_Topic>\n</SALEvent>\n</SALEventSet>\n"
                      "</SALObjects>\n";
    tu_write_file(p, gen, strlen(gen));
    free(p);
    char *out = tu_path_join(dir, "out");
    char *log = NULL;
    assert_int_equal(run_salgen(dir, "Bad", out, &log), 1);
    if (strstr(log, "gives its topics no <Category>: a ts_xml release before 10.1") == NULL) {
        fail_msg("no reason in: %s", log);
    }
    free(log);
    free(out);
    tu_remove_tree(dir);
    free(dir);
}

/* The eight private fields of a non-indexed component, as ts_xml appends them. */
#define PRIVATE_FIELDS                                                                                       \
    "{\"name\": \"private_sndStamp\", \"type\": \"double\", \"default\": 0.0, \"description\": \"Time of "   \
    "instance publication\", \"units\": \"second\"}, {\"name\": \"private_rcvStamp\", \"type\": "            \
    "\"double\", \"default\": 0.0, \"description\": \"Time of instance reception\", \"units\": "             \
    "\"second\"}, {\"name\": \"private_efdStamp\", \"type\": \"double\", \"default\": 0.0, "                 \
    "\"description\": \"UTC time for EFD timestamp. An integer (the number of leap seconds) different "      \
    "from private_sndStamp.\", \"units\": \"second\"}, {\"name\": \"private_kafkaStamp\", \"type\": "        \
    "\"double\", \"default\": 0.0, \"description\": \"TAI time at which the Kafka message was created.\", "  \
    "\"units\": \"second\"}, {\"name\": \"private_seqNum\", \"type\": \"int\", \"default\": 0, "             \
    "\"description\": \"Sequence number\", \"units\": \"unitless\"}, {\"name\": \"private_revCode\", "       \
    "\"type\": \"string\", \"default\": \"\", \"description\": \"Revision hashcode\", \"units\": "           \
    "\"unitless\"}, {\"name\": \"private_identity\", \"type\": \"string\", \"default\": \"\", "              \
    "\"description\": \"Identity of publisher: SAL component name for a CSC or user@host for a user\", "     \
    "\"units\": \"unitless\"}, {\"name\": \"private_origin\", \"type\": \"int\", \"default\": 0, "           \
    "\"description\": \"Process ID of publisher\", \"units\": \"unitless\"}"

/* From ts_xml 28 the cameras have telemetry topics written as .avsc files
 * (data/interfaces/<NAME>/). ts_xml reads each with fastavro, whose parser
 * puts a dict's other keys first, then type, doc, name, fields (a field:
 * default, name, type last); the record is renamed after its file, its
 * namespace added last, the private fields appended. The topics follow
 * ackcmd (sorted by file name); one named as an XML topic replaces that
 * topic's schema in place. The expected texts and revCodes are what
 * ts_xml 28.0.1's own ComponentInfo gives for this tree. */
static void camera_avsc_topics(void **state)
{
    (void)state;
    char *xml_dir = tu_path_join(camera_dir, "sal_interfaces");
    char *out = tu_make_temp_dir();
    char *log = NULL;
    assert_int_equal(run_salgen_c(xml_dir, "MTCamera", out, &log), 0);
    free(log);

    char *revs = read_out(out, "avro/MTCamera_revCodes.txt");
    assert_string_equal(revs, "logevent_heartbeat 2419c548\nlogevent_errorCode bba6742e\npower 47912d9f\n"
                              "ackcmd d966656c\na_fans 4bfa75ba\nb_temps 2049557e\n");
    free(revs);
    char *temps = read_out(out, "avro/MTCamera/b_temps.json");
    assert_string_equal(temps,
                        "{\"description\": \"Temps.\", \"type\": \"record\", \"doc\": \"Temperatures.\", "
                        "\"name\": \"b_temps\", \"fields\": [{\"units\": \"deg_C\", \"description\": "
                        "\"First \\u00b0.\", \"xtra\": 1, \"default\": null, \"name\": \"t0\", \"type\": "
                        "[\"null\", \"double\", \"string\"]}, {\"description\": \"Text\", \"name\": "
                        "\"label\", \"type\": \"string\"}, " PRIVATE_FIELDS
                        "], \"namespace\": \"lsst.sal.MTCamera\"}");
    free(temps);
    char *fans = read_out(out, "avro/MTCamera/a_fans.json");
    assert_string_equal(fans, "{\"type\": \"record\", \"name\": \"a_fans\", \"fields\": [{\"description\": "
                              "\"Speed.\", \"name\": \"rpm\", \"type\": \"int\"}, " PRIVATE_FIELDS
                              "], \"namespace\": \"\"}");
    free(fans);
    char *power = read_out(out, "avro/MTCamera/power.json");
    assert_non_null(strstr(power,
                           "\"name\": \"power\", \"fields\": [{\"description\": \"Power.\", \"units\": "
                           "\"W\", \"default\": null, \"name\": \"watts\", \"type\": [\"null\", "
                           "\"float\"]}, {\"name\": \"private_sndStamp\""));
    free(power);
    /* DDS (ts_sal) and the C tables keep the XML topic; it has no Kafka form */
    char *v = read_out(out, "dds/validated/MTCamera_power.idl");
    assert_non_null(strstr(v, "  double\tvolts;\n"));
    free(v);
    char *c = read_out(out, "c/MTCamera_sal.c");
    char *row = strstr(c, ".sal_name = \"power\"");
    assert_non_null(row);
    char *end = strstr(row, "\n    }");
    assert_non_null(end);
    *end = '\0';
    assert_non_null(strstr(row, ".avro_revcode = NULL,"));
    assert_non_null(strstr(row, ".avro_schema = NULL,"));
    free(c);
    tu_remove_tree(out);
    free(out);

    /* ts_xml reads .avsc files for the three cameras only */
    out = tu_make_temp_dir();
    assert_int_equal(run_salgen(xml_dir, "Probe", out, NULL), 0);
    revs = read_out(out, "avro/Probe_revCodes.txt");
    assert_null(strstr(revs, "ignored"));
    assert_non_null(strstr(revs, "\npower "));
    free(revs);
    tu_remove_tree(out);
    free(out);
    free(xml_dir);
}

/* A ts_xml data/ tree with an MTCamera of no XML topics and one .avsc file. */
static char *make_camera_tree(const char *avsc)
{
    char *dir = tu_make_temp_dir();
    char *si = tu_path_join(dir, "sal_interfaces");
    mkdir(si, 0755);
    write_subsystem(si, "MTCamera", "no");
    free(si);
    char *ifs = tu_path_join(dir, "interfaces");
    mkdir(ifs, 0755);
    char *cam = tu_path_join(ifs, "MTCamera");
    mkdir(cam, 0755);
    char *p = tu_path_join(cam, "bad.avsc");
    tu_write_file(p, avsc, strlen(avsc));
    free(p);
    free(cam);
    free(ifs);
    return dir;
}

/* An .avsc file ts_xml cannot read, or whose schema has no fixed form or
 * is invalid, gives no topic, with a warning naming it; the other topics'
 * schemas and the DDS output (ts_sal's, which never reads .avsc files)
 * are still written. */
static void assert_avsc_fails_with(const char *fields, const char *message)
{
    char avsc[1024];
    snprintf(avsc, sizeof avsc, "{\"type\": \"record\", \"name\": \"bad\", \"fields\": [%s]}", fields);
    char *dir = make_camera_tree(avsc);
    char *xml_dir = tu_path_join(dir, "sal_interfaces");
    char *out = tu_path_join(dir, "out");
    char *log = NULL;
    assert_int_equal(run_salgen(xml_dir, "MTCamera", out, &log), 0);
    if (strstr(log, message) == NULL ||
        strstr(log, "no Avro schema from bad.avsc: MTCamera bad.avsc") == NULL) {
        fail_msg("expected \"no Avro schema from bad.avsc: MTCamera bad.avsc\" and \"%s\" in: %s", message,
                 log);
    }
    assert_null(strstr(log, "Traceback"));
    free(log);
    char *p = tu_path_join(out, "avro/MTCamera/bad.json");
    assert_null(tu_read_file(p, NULL));
    free(p);
    char *codes = read_out(out, "avro/MTCamera_revCodes.txt"); /* the other topics' */
    assert_null(strstr(codes, "bad "));
    assert_non_null(strstr(codes, "ackcmd "));
    free(codes);
    free(read_out(out, "dds/MTCamera_revCodes.txt"));
    free(out);
    free(xml_dir);
    tu_remove_tree(dir);
    free(dir);
}

static void bad_avsc_gives_clear_errors(void **state)
{
    (void)state;
    assert_avsc_fails_with("{\"name\": \"rpm\", \"type\": \"int\"}", "field rpm has no description");
    assert_avsc_fails_with("{\"name\": \"v\", \"type\": {\"type\": \"array\", \"items\": \"int\"}, "
                           "\"description\": \"\"}",
                           "field v: type {\"type\": \"array\", \"items\": \"int\"} is not a primitive type");
    assert_avsc_fails_with("{\"name\": \"v\", \"type\": \"int\", \"default\": 0, \"doc\": \"d\", "
                           "\"description\": \"\"}",
                           "field v has doc and default: fastavro orders them by Python's per-process");
    assert_avsc_fails_with("{\"name\": \"v\", \"type\": [\"null\", \"int\"], \"default\": 1.5, "
                           "\"description\": \"\"}",
                           "field v: default 1.5 does not match its type");
    assert_avsc_fails_with("{\"name\": \"private_origin\", \"type\": \"int\", \"description\": \"\"}",
                           "field private_origin appears twice");
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s PYTHON SALGEN_PY WIDGET_XML_DIR CAMERA_DATA_DIR\n", argv[0]);
        return 2;
    }
    python = argv[1];
    salgen = argv[2];
    widget_dir = argv[3];
    camera_dir = argv[4];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(non_indexed_component_forms),
        cmocka_unit_test(indexed_any_component),
        cmocka_unit_test(avro_types_follow_the_release),
        cmocka_unit_test(bad_input_gives_clear_errors),
        cmocka_unit_test(generics_without_categories_named),
        cmocka_unit_test(line_rules_without_vectors),
        cmocka_unit_test(camera_avsc_topics),
        cmocka_unit_test(bad_avsc_gives_clear_errors),
        cmocka_unit_test(private_field_names_refused_for_avro),
    };
    return cmocka_run_group_tests_name("salgen_cli", tests, NULL, NULL);
}
