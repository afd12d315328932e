/* sal_interface.c - lookups over a generated sal_component_info. */
#include "ocps/sal_interface.h"

#include <stdio.h>
#include <string.h>

const char *sal_interface_default_version(const sal_interface_set *set, const char *transport)
{
    for (size_t i = 0; i < set->ndefaults; i++) {
        if (transport != NULL && strcmp(set->defaults[i].transport, transport) == 0) {
            return set->defaults[i].xml_version;
        }
    }
    return NULL;
}

/* "12.0.0, 20.3.0, 28.0.1" into buf. */
static void list_releases(const sal_interface_set *set, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < set->nreleases && at < len; i++) {
        int n = snprintf(buf + at, len - at, "%s%s", i ? ", " : "", set->releases[i]->xml_version);
        if (n < 0) {
            break;
        }
        at += (size_t)n;
    }
}

const sal_component_info *sal_interface_select(const sal_interface_set *set, const char *transport,
                                               const char *xml_version, char *err, size_t errlen)
{
    const char *want = xml_version;
    if (want == NULL || want[0] == '\0') {
        want = sal_interface_default_version(set, transport);
        if (want == NULL) {
            want = set->nreleases > 0 ? set->releases[set->nreleases - 1]->xml_version : "";
        }
    }
    for (size_t i = 0; i < set->nreleases; i++) {
        if (strcmp(set->releases[i]->xml_version, want) == 0) {
            return set->releases[i];
        }
    }
    char have[256];
    list_releases(set, have, sizeof have);
    snprintf(err, errlen, "%s interface of ts_xml %s is not built in (built in: %s)", set->name, want, have);
    return NULL;
}

int sal_component_find_topic(const sal_component_info *comp, const char *sal_name)
{
    size_t lo = 0;
    size_t hi = comp->ntopics;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(comp->topics[mid].sal_name, sal_name);
        if (c == 0) {
            return (int)mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}

bool sal_component_index_allowed(const sal_component_info *comp, int32_t index)
{
    if (!comp->indexed) {
        return index == 0;
    }
    if (comp->nindex_enum == 0) {
        return index > 0;
    }
    return sal_component_index_name(comp, index) != NULL;
}

const char *sal_component_index_name(const sal_component_info *comp, int32_t index)
{
    for (size_t i = 0; i < comp->nindex_enum; i++) {
        if (comp->index_enum[i].value == index) {
            return comp->index_enum[i].name;
        }
    }
    return NULL;
}

size_t sal_topic_user_field_count(const sal_topic_info *topic)
{
    size_t n = 0;
    for (size_t i = 0; i < topic->nfields; i++) {
        if (!(topic->fields[i].flags & SAL_FIELD_PRIVATE)) {
            n++;
        }
    }
    return n;
}

const char *sal_topic_kind_name(sal_topic_kind kind)
{
    switch (kind) {
    case SAL_TOPIC_COMMAND:
        return "command";
    case SAL_TOPIC_EVENT:
        return "event";
    case SAL_TOPIC_TELEMETRY:
        return "telemetry";
    case SAL_TOPIC_ACKCMD:
        return "ackcmd";
    }
    return "?";
}

const char *sal_field_type_name(sal_field_type type)
{
    static const char *const names[] = {
        "boolean", "octet",         "short",     "unsigned short",
        "long",    "unsigned long", "long long", "unsigned long long",
        "float",   "double",        "string",
    };
    if ((unsigned)type < sizeof(names) / sizeof(names[0])) {
        return names[type];
    }
    return "?";
}
