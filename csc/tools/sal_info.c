/*
 * sal-info: print the SAL interfaces built into this program: the embedded
 * ts_xml releases, the one each transport speaks, its topics with their
 * DDS and Kafka names and revCodes, and (with a topic name) its fields.
 *
 *   sal-info [--transport T] [--xml-version V]              the interfaces
 *   sal-info [--transport T] [--xml-version V] <sal_name>... fields of topics
 *
 * Without --transport every transport's interface is shown.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ocps/ocps_interface.h"
#include "ocps/sal_transport.h"

static void print_summary(const char *transport, const sal_component_info *c)
{
    printf("== %s: %s ts_xml %s, %s", transport, c->name, c->xml_version,
           c->indexed ? "indexed" : "not indexed");
    size_t n;
    const sal_enum_value *idx = ocps_indices(&n);
    printf("\nSAL indices:");
    for (size_t i = 0; i < n; i++) {
        printf(" %s=%lld", idx[i].name, (long long)idx[i].value);
    }
    printf(" (IndexEnumeration of this release:");
    for (size_t i = 0; i < c->nindex_enum; i++) {
        printf("%s%s", i ? "," : " ", c->index_enum[i].name);
    }
    printf(")");
    printf("\nDDS IDL in ts_sal %s form, %zu topics\n\n", c->sal_version, c->ntopics);
    printf("%-7s %-9s %-36s %-9s %-9s %s\n", "cmdtype", "kind", "SAL name", "DDS rev", "Avro rev",
           "user fields");
    for (size_t i = 0; i < c->ntopics; i++) {
        const sal_topic_info *t = &c->topics[i];
        printf("%-7zu %-9s %-36s %-9s %-9s %zu\n", i, sal_topic_kind_name(t->kind), t->sal_name,
               t->dds_revcode, t->avro_revcode ? t->avro_revcode : "-", sal_topic_user_field_count(t));
    }
    if (strcmp(transport, "kafka") == 0) {
        printf("\nKafka topics are lsst.<LSST_TOPIC_SUBNAME>.%s.<SAL name>.\n\n", c->name);
    } else {
        printf("\nDDS topic names are <Name>_<SAL name>_<DDS rev> (e.g. %s_%s_%s).\n\n", c->name,
               c->topics[0].sal_name, c->topics[0].dds_revcode);
    }
}

/* The embedded releases and which transport speaks which by default. */
static void print_releases(const sal_interface_set *set)
{
    printf("%s interfaces built in (ts_xml releases):\n", set->name);
    for (size_t i = 0; i < set->nreleases; i++) {
        const char *ver = set->releases[i]->xml_version;
        printf("  %-12s", ver);
        const char *sep = " default of ";
        for (size_t d = 0; d < set->ndefaults; d++) {
            if (strcmp(set->defaults[d].xml_version, ver) == 0) {
                printf("%s%s", sep, set->defaults[d].transport);
                sep = ", ";
            }
        }
        printf("\n");
    }
    printf("choose another with --xml-version or %s\n\n", OCPS_XML_VERSION_ENV);
}

static int print_topic(const sal_component_info *c, const char *name)
{
    int i = sal_component_find_topic(c, name);
    if (i < 0) {
        fprintf(stderr, "sal-info: %s has no topic %s\n", c->name, name);
        return 1;
    }
    const sal_topic_info *t = &c->topics[i];
    printf("%s (%s) DDS type %s::%s_%s\n", t->sal_name, sal_topic_kind_name(t->kind), c->name, t->sal_name,
           t->dds_revcode);
    for (size_t f = 0; f < t->nfields; f++) {
        const sal_field_info *fi = &t->fields[f];
        char type[64];
        if (fi->type == SAL_FIELD_STRING && fi->bound > 0) {
            snprintf(type, sizeof type, "string<%u>", fi->bound);
        } else {
            snprintf(type, sizeof type, "%s", sal_field_type_name(fi->type));
        }
        printf("  %-20s %s", type, fi->name);
        if (fi->count > 1) {
            printf("[%u]", fi->count);
        }
        printf("%s\n", (fi->flags & SAL_FIELD_PRIVATE) ? "  (private)" : "");
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sal-info [--transport NAME] [--xml-version VER] [topic...]\n"
            "transports: %s\n",
            sal_transport_names());
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"transport", required_argument, NULL, 't'},
        {"xml-version", required_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *transport = NULL;
    const char *xml_version = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 't':
            transport = optarg;
            break;
        case 'x':
            xml_version = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 64;
        }
    }
    const sal_interface_set *set = ocps_interfaces();
    if (transport != NULL && sal_transport_find(transport) == NULL) {
        fprintf(stderr, "sal-info: unknown transport %s (have: %s)\n", transport, sal_transport_names());
        return 64;
    }
    if (optind == argc && transport == NULL) {
        print_releases(set);
    }
    int rc = 0;
    for (size_t d = 0; d < set->ndefaults; d++) {
        const char *tr = set->defaults[d].transport;
        if (transport != NULL ? strcmp(tr, transport) != 0 : sal_transport_find(tr) == NULL) {
            continue;
        }
        char err[512];
        const sal_component_info *c = ocps_interface_select(tr, xml_version, err, sizeof err);
        if (c == NULL) {
            fprintf(stderr, "sal-info: %s\n", err);
            return 1;
        }
        if (optind == argc) {
            print_summary(tr, c);
        }
        for (int a = optind; a < argc; a++) {
            rc |= print_topic(c, argv[a]);
        }
        if (transport == NULL && optind < argc) {
            break; /* fields once, from the first transport's release */
        }
    }
    return rc;
}
