/*
 * sal-info: print the SAL interface this build was generated from:
 * topics with their DDS and Kafka names and revCodes, and (with a topic
 * name) that topic's fields.
 *
 *   sal-info                 summary of every topic
 *   sal-info <sal_name>...   fields of the named topics
 */
#include <stdio.h>
#include <string.h>

#include "OCPS_sal.h"

static void print_summary(const sal_component_info *c)
{
    printf("%s: %s", c->name, c->indexed ? "indexed" : "not indexed");
    if (c->nindex_enum > 0) {
        printf(" (indices");
        for (size_t i = 0; i < c->nindex_enum; i++) {
            printf(" %s=%lld", c->index_enum[i].name, (long long)c->index_enum[i].value);
        }
        printf(")");
    }
    printf("\ninterface %s, DDS IDL in ts_sal %s form, %zu topics\n\n", c->xml_version, c->sal_version,
           c->ntopics);
    printf("%-7s %-9s %-36s %-9s %-9s %s\n", "cmdtype", "kind", "SAL name", "DDS rev", "Avro rev",
           "user fields");
    for (size_t i = 0; i < c->ntopics; i++) {
        const sal_topic_info *t = &c->topics[i];
        printf("%-7zu %-9s %-36s %-9s %-9s %zu\n", i, sal_topic_kind_name(t->kind), t->sal_name,
               t->dds_revcode, t->avro_revcode, sal_topic_user_field_count(t));
    }
    printf("\nDDS topic names are <Name>_<SAL name>_<DDS rev> (e.g. %s_%s_%s);\n", c->name,
           c->topics[0].sal_name, c->topics[0].dds_revcode);
    printf("Kafka topics are lsst.<LSST_TOPIC_SUBNAME>.%s.<SAL name>.\n", c->name);
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

int main(int argc, char **argv)
{
    const sal_component_info *c = &OCPS_sal_component;
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("usage: sal-info [topic...]\n");
        return 0;
    }
    if (argc == 1) {
        print_summary(c);
        return 0;
    }
    int rc = 0;
    for (int a = 1; a < argc; a++) {
        rc |= print_topic(c, argv[a]);
    }
    return rc;
}
