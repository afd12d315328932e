/* sal_sample.c - see sal_sample.h. */
#include "ocps/sal_sample.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocps/sal_utf8.h"

static char **string_slot(const sal_field_info *f, void *sample)
{
    return (char **)((char *)sample + f->offset);
}

static size_t scalar_size(sal_field_type t)
{
    switch (t) {
    case SAL_FIELD_BOOLEAN:
    case SAL_FIELD_OCTET:
        return 1;
    case SAL_FIELD_SHORT:
    case SAL_FIELD_USHORT:
        return 2;
    case SAL_FIELD_LONG:
    case SAL_FIELD_ULONG:
    case SAL_FIELD_FLOAT:
        return 4;
    case SAL_FIELD_LONGLONG:
    case SAL_FIELD_ULONGLONG:
    case SAL_FIELD_DOUBLE:
        return 8;
    case SAL_FIELD_STRING:
        break;
    }
    return 0;
}

static const char empty_string[] = ""; /* only read: lent to samples */

/* What a sample carries after its struct (see sal_sample.h). */
typedef struct sample_tail {
    size_t identity_len;                 /* as set or read; > SAL_IDENTITY_MAX: cut */
    char identity[SAL_IDENTITY_MAX + 1]; /* the whole private_identity */
} sample_tail;

static size_t tail_offset(const sal_topic_info *topic)
{
    size_t align = _Alignof(sample_tail);
    return (topic->sample_size + align - 1) / align * align;
}

size_t sal_sample_size(const sal_topic_info *topic)
{
    return tail_offset(topic) + sizeof(sample_tail);
}

static sample_tail *tail_of(const sal_topic_info *topic, void *sample)
{
    return (sample_tail *)((char *)sample + tail_offset(topic));
}

static const sample_tail *const_tail_of(const sal_topic_info *topic, const void *sample)
{
    return (const sample_tail *)((const char *)sample + tail_offset(topic));
}

bool sal_field_is_identity(const sal_topic_info *topic, const sal_field_info *f)
{
    return (f->flags & SAL_FIELD_PRIVATE) && f->type == SAL_FIELD_STRING && f->offset == topic->priv.identity;
}

/* A zeroed sample whose unbounded strings are "": copies of their own, or
 * when `lent` the one shared constant. */
static void *sample_alloc(const sal_topic_info *topic, bool lent)
{
    void *s = calloc(1, sal_sample_size(topic));
    if (s == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < topic->nfields; i++) {
        const sal_field_info *f = &topic->fields[i];
        if (f->type == SAL_FIELD_STRING && f->bound == 0) {
            char *empty = lent ? (char *)empty_string : strdup("");
            if (empty == NULL) {
                sal_sample_free(topic, s); /* only copies so far (a strdup failed) */
                return NULL;
            }
            *string_slot(f, s) = empty;
        }
    }
    return s;
}

void *sal_sample_new(const sal_topic_info *topic)
{
    return sample_alloc(topic, false);
}

void sal_sample_clear(const sal_topic_info *topic, void *sample)
{
    for (size_t i = 0; i < topic->nfields; i++) {
        const sal_field_info *f = &topic->fields[i];
        if (f->type == SAL_FIELD_STRING && f->bound == 0) {
            free(*string_slot(f, sample));
        }
    }
    memset(sample, 0, sal_sample_size(topic));
}

void sal_sample_free(const sal_topic_info *topic, void *sample)
{
    if (sample == NULL) {
        return;
    }
    sal_sample_clear(topic, sample);
    free(sample);
}

void *sal_sample_dup(const sal_topic_info *topic, const void *sample)
{
    void *d = malloc(sal_sample_size(topic));
    if (d == NULL) {
        return NULL;
    }
    memcpy(d, sample, sal_sample_size(topic));
    bool ok = true;
    for (size_t i = 0; i < topic->nfields; i++) {
        const sal_field_info *f = &topic->fields[i];
        if (f->type == SAL_FIELD_STRING && f->bound == 0) {
            const char *src = *(char *const *)((const char *)sample + f->offset);
            char *copy = ok ? strdup(src ? src : "") : NULL;
            ok = ok && copy != NULL;
            *string_slot(f, d) = copy;
        }
    }
    if (!ok) {
        sal_sample_free(topic, d);
        return NULL;
    }
    return d;
}

static const char *string_value(const sal_field_info *f, const void *sample)
{
    const char *p = (const char *)sample + f->offset;
    if (f->bound == 0) {
        const char *s = *(const char *const *)p;
        return s ? s : "";
    }
    return p;
}

bool sal_sample_user_equal(const sal_topic_info *topic, const void *a, const void *b)
{
    for (size_t i = 0; i < topic->nfields; i++) {
        const sal_field_info *f = &topic->fields[i];
        if (f->flags & SAL_FIELD_PRIVATE) {
            continue;
        }
        if (f->type == SAL_FIELD_STRING) {
            if (strcmp(string_value(f, a), string_value(f, b)) != 0) {
                return false;
            }
        } else if (memcmp((const char *)a + f->offset, (const char *)b + f->offset,
                          scalar_size(f->type) * f->count) != 0) {
            return false;
        }
    }
    return true;
}

const sal_field_info *sal_topic_field(const sal_topic_info *topic, const char *name)
{
    for (size_t i = 0; i < topic->nfields; i++) {
        if (strcmp(topic->fields[i].name, name) == 0) {
            return &topic->fields[i];
        }
    }
    return NULL;
}

bool sal_text_check(const char *s, size_t max, const char *allowed, char *why, size_t whylen)
{
    size_t i = 0;
    const unsigned char *u = (const unsigned char *)s;
    while (u[i] != '\0') {
        if (i >= max) {
            if (why != NULL) {
                snprintf(why, whylen, "is longer than %zu bytes", max);
            }
            return false;
        }
        if (u[i] < 0x20 || u[i] == 0x7F) {
            if (allowed == NULL || strchr(allowed, u[i]) == NULL) {
                if (why != NULL) {
                    snprintf(why, whylen, "contains control character 0x%02x at byte %zu", u[i], i);
                }
                return false;
            }
            i++;
            continue;
        }
        size_t n = sal_utf8_char_len(u + i);
        if (n == 0) {
            if (why != NULL) {
                snprintf(why, whylen, "is not valid UTF-8 at byte %zu", i);
            }
            return false;
        }
        i += n;
    }
    return true;
}

bool sal_text_valid(const char *s, size_t max, const char *allowed)
{
    return sal_text_check(s, max, allowed, NULL, 0);
}

int sal_sample_set_string(const sal_topic_info *topic, void *sample, const char *field, const char *value,
                          char *err, size_t errlen)
{
    const sal_field_info *f = sal_topic_field(topic, field);
    if (f == NULL || f->type != SAL_FIELD_STRING) {
        snprintf(err, errlen, "%s has no string field %s", topic->sal_name, field);
        return -EINVAL;
    }
    return sal_field_set_string(topic, f, sample, value, err, errlen);
}

void *sal_sample_new_lent(const sal_topic_info *topic)
{
    return sample_alloc(topic, true);
}

static int set_string(const sal_topic_info *topic, const sal_field_info *f, void *sample, const char *value,
                      bool lend, char *err, size_t errlen);

int sal_field_lend_string(const sal_topic_info *topic, const sal_field_info *f, void *sample,
                          const char *value, char *err, size_t errlen)
{
    return set_string(topic, f, sample, value, true, err, errlen);
}

int sal_field_set_string(const sal_topic_info *topic, const sal_field_info *f, void *sample,
                         const char *value, char *err, size_t errlen)
{
    return set_string(topic, f, sample, value, false, err, errlen);
}

static int set_string(const sal_topic_info *topic, const sal_field_info *f, void *sample, const char *value,
                      bool lend, char *err, size_t errlen)
{
    const char *field = f->name;
    if (f->type != SAL_FIELD_STRING) {
        snprintf(err, errlen, "%s.%s is not a string", topic->sal_name, field);
        return -EINVAL;
    }
    size_t len = strlen(value);
    char why[96];
    if (!sal_text_check(value, SIZE_MAX, "\n\t\r", why, sizeof why)) {
        snprintf(err, errlen, "%s.%s: %s", topic->sal_name, field, why);
        return -EINVAL;
    }
    if (sal_field_is_identity(topic, f)) { /* whole, beside the struct's string<128> */
        if (len > SAL_IDENTITY_MAX) {
            snprintf(err, errlen, "%s.%s: %zu bytes exceed the bound of %d", topic->sal_name, field, len,
                     SAL_IDENTITY_MAX);
            return -E2BIG;
        }
        sal_sample_set_identity(topic, sample, value, len);
        return 0;
    }
    if (f->bound > 0) {
        if (len > f->bound) {
            snprintf(err, errlen, "%s.%s: %zu bytes exceed the bound of %u", topic->sal_name, field, len,
                     f->bound);
            return -E2BIG;
        }
        memcpy((char *)sample + f->offset, value, len + 1);
        return 0;
    }
    if (lend) { /* the sample's strings are borrowed (sal_sample_new_lent) */
        *string_slot(f, sample) = (char *)value;
        return 0;
    }
    char *copy = strdup(value);
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    char **slot = string_slot(f, sample);
    free(*slot);
    *slot = copy;
    return 0;
}

const char *sal_sample_get_string(const sal_topic_info *topic, const void *sample, const char *field)
{
    const sal_field_info *f = sal_topic_field(topic, field);
    if (f != NULL && sal_field_is_identity(topic, f)) {
        return sal_sample_identity(topic, sample);
    }
    return f == NULL ? NULL : sal_field_get_string(f, sample);
}

const char *sal_field_get_string(const sal_field_info *f, const void *sample)
{
    return f->type == SAL_FIELD_STRING ? string_value(f, sample) : NULL;
}

/* The values of an integer type as doubles: lo <= v < hi_excl. Every
 * bound is exact as a double; INT64_MAX and UINT64_MAX are not (they round
 * up to 2^63 and 2^64, whose conversion is undefined), hence the exclusive
 * upper bound. false for the other types. */
static bool int_range(sal_field_type t, double *lo, double *hi_excl)
{
    switch (t) {
    case SAL_FIELD_OCTET:
        return *lo = 0, *hi_excl = 0x1p8, true;
    case SAL_FIELD_SHORT:
        return *lo = -0x1p15, *hi_excl = 0x1p15, true;
    case SAL_FIELD_USHORT:
        return *lo = 0, *hi_excl = 0x1p16, true;
    case SAL_FIELD_LONG:
        return *lo = -0x1p31, *hi_excl = 0x1p31, true;
    case SAL_FIELD_ULONG:
        return *lo = 0, *hi_excl = 0x1p32, true;
    case SAL_FIELD_LONGLONG:
        return *lo = -0x1p63, *hi_excl = 0x1p63, true;
    case SAL_FIELD_ULONGLONG:
        return *lo = 0, *hi_excl = 0x1p64, true;
    default:
        return false;
    }
}

int64_t sal_double_to_i64(double v)
{
    if (isnan(v)) {
        return 0;
    }
    if (v >= 0x1p63) {
        return INT64_MAX;
    }
    if (v < -0x1p63) {
        return INT64_MIN;
    }
    return (int64_t)v;
}

/* Store an integer already known to be in the range of f's type. */
static void store_integer(const sal_field_info *f, void *at, int64_t s, uint64_t u)
{
    switch (f->type) {
    case SAL_FIELD_OCTET:
        *(uint8_t *)at = (uint8_t)u;
        break;
    case SAL_FIELD_SHORT:
        *(int16_t *)at = (int16_t)s;
        break;
    case SAL_FIELD_USHORT:
        *(uint16_t *)at = (uint16_t)u;
        break;
    case SAL_FIELD_LONG:
        *(int32_t *)at = (int32_t)s;
        break;
    case SAL_FIELD_ULONG:
        *(uint32_t *)at = (uint32_t)u;
        break;
    case SAL_FIELD_LONGLONG:
        *(int64_t *)at = s;
        break;
    case SAL_FIELD_ULONGLONG:
        *(uint64_t *)at = u;
        break;
    default:
        break;
    }
}

static bool type_is_unsigned(sal_field_type t)
{
    return t == SAL_FIELD_OCTET || t == SAL_FIELD_USHORT || t == SAL_FIELD_ULONG || t == SAL_FIELD_ULONGLONG;
}

static int store_number(const sal_field_info *f, void *at, double v, char *err, size_t errlen)
{
    double lo;
    double hi_excl;
    switch (f->type) {
    case SAL_FIELD_BOOLEAN:
        *(uint8_t *)at = v != 0;
        return 0;
    case SAL_FIELD_FLOAT:
        *(float *)at = (float)v;
        return 0;
    case SAL_FIELD_DOUBLE:
        *(double *)at = v;
        return 0;
    case SAL_FIELD_STRING:
        snprintf(err, errlen, "%s is a string field", f->name);
        return -EINVAL;
    default:
        break;
    }
    if (!int_range(f->type, &lo, &hi_excl)) {
        snprintf(err, errlen, "%s: a %s field takes no number", f->name, sal_field_type_name(f->type));
        return -EINVAL;
    }
    /* written so that NaN fails too */
    if (!(v >= lo && v < hi_excl) || v != floor(v)) {
        snprintf(err, errlen, "%s: %g is not a valid %s", f->name, v, sal_field_type_name(f->type));
        return -ERANGE;
    }
    if (type_is_unsigned(f->type)) {
        store_integer(f, at, 0, (uint64_t)v);
    } else {
        store_integer(f, at, (int64_t)v, 0);
    }
    return 0;
}

int sal_sample_set_number(const sal_topic_info *topic, void *sample, const char *field, size_t i,
                          double value, char *err, size_t errlen)
{
    const sal_field_info *f = sal_topic_field(topic, field);
    if (f == NULL) {
        snprintf(err, errlen, "%s has no field %s", topic->sal_name, field);
        return -EINVAL;
    }
    return sal_field_set_number(topic, f, sample, i, value, err, errlen);
}

int sal_field_set_number(const sal_topic_info *topic, const sal_field_info *f, void *sample, size_t i,
                         double value, char *err, size_t errlen)
{
    if (f->type == SAL_FIELD_STRING) {
        snprintf(err, errlen, "%s.%s is a string", topic->sal_name, f->name);
        return -EINVAL;
    }
    if (i >= f->count) {
        snprintf(err, errlen, "%s.%s has %u elements", topic->sal_name, f->name, f->count);
        return -EINVAL;
    }
    return store_number(f, (char *)sample + f->offset + i * scalar_size(f->type), value, err, errlen);
}

double sal_sample_get_number(const sal_topic_info *topic, const void *sample, const char *field, size_t i)
{
    const sal_field_info *f = sal_topic_field(topic, field);
    return f == NULL ? 0 : sal_field_get_number(f, sample, i);
}

double sal_field_get_number(const sal_field_info *f, const void *sample, size_t i)
{
    if (f->type == SAL_FIELD_STRING || i >= f->count) {
        return 0;
    }
    const char *at = (const char *)sample + f->offset + i * scalar_size(f->type);
    switch (f->type) {
    case SAL_FIELD_BOOLEAN:
    case SAL_FIELD_OCTET:
        return *(const uint8_t *)at;
    case SAL_FIELD_SHORT:
        return *(const int16_t *)at;
    case SAL_FIELD_USHORT:
        return *(const uint16_t *)at;
    case SAL_FIELD_LONG:
        return *(const int32_t *)at;
    case SAL_FIELD_ULONG:
        return *(const uint32_t *)at;
    case SAL_FIELD_LONGLONG:
        return (double)*(const int64_t *)at;
    case SAL_FIELD_ULONGLONG:
        return (double)*(const uint64_t *)at;
    case SAL_FIELD_FLOAT:
        return *(const float *)at;
    case SAL_FIELD_DOUBLE:
        return *(const double *)at;
    case SAL_FIELD_STRING:
        break;
    }
    return 0;
}

int32_t sal_sample_get_i32(const sal_topic_info *topic, const void *sample, const char *field)
{
    const sal_field_info *f = sal_topic_field(topic, field);
    if (f == NULL || f->type != SAL_FIELD_LONG) {
        return 0;
    }
    int32_t v;
    memcpy(&v, (const char *)sample + f->offset, sizeof v);
    return v;
}

void sal_sample_set_i32(const sal_topic_info *topic, void *sample, const char *field, int32_t value)
{
    const sal_field_info *f = sal_topic_field(topic, field);
    if (f != NULL && f->type == SAL_FIELD_LONG) {
        memcpy((char *)sample + f->offset, &value, sizeof value);
    }
}

static int parse_number(const sal_field_info *f, const char *text, double *out, char *err, size_t errlen)
{
    if (f->type == SAL_FIELD_BOOLEAN) {
        if (strcmp(text, "true") == 0 || strcmp(text, "True") == 0 || strcmp(text, "1") == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(text, "false") == 0 || strcmp(text, "False") == 0 || strcmp(text, "0") == 0) {
            *out = 0;
            return 0;
        }
        snprintf(err, errlen, "%s: '%s' is not a boolean", f->name, text);
        return -EINVAL;
    }
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    while (*end == ' ') {
        end++;
    }
    if (end == text || *end != '\0' || errno == ERANGE) {
        snprintf(err, errlen, "%s: '%s' is not a number", f->name, text);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* A decimal integer literal for an integer field, parsed exactly (a
 * double holds only 53 bits: 9223372036854775807 would become 2^63). 1 if
 * `text` is not one (or f is not an integer field), 0 when set, < 0 with
 * why when out of range. */
static int set_integer_text(const sal_topic_info *topic, const sal_field_info *f, void *sample, size_t i,
                            const char *text, char *err, size_t errlen)
{
    double lo;
    double hi_excl;
    if (!int_range(f->type, &lo, &hi_excl) || i >= f->count) {
        return 1;
    }
    const char *p = text + (text[0] == '-' || text[0] == '+');
    if (*p < '0' || *p > '9') {
        return 1;
    }
    char *end;
    errno = 0;
    int64_t s = 0;
    uint64_t u = 0;
    bool negative = text[0] == '-';
    if (negative) {
        s = strtoll(text, &end, 10);
    } else {
        u = strtoull(text, &end, 10);
    }
    while (*end == ' ') {
        end++;
    }
    if (*end != '\0') {
        return 1;
    }
    bool ok = errno != ERANGE;
    if (ok && negative) {
        ok = type_is_unsigned(f->type) ? s == 0 : (double)s >= lo;
        u = 0;
    } else if (ok) {
        /* hi_excl - 1 is exact below 2^53; above, compare as integers */
        ok = f->type == SAL_FIELD_ULONGLONG  ? true
             : f->type == SAL_FIELD_LONGLONG ? u <= (uint64_t)INT64_MAX
                                             : (double)u < hi_excl;
        s = ok ? (int64_t)u : 0;
    }
    if (!ok) {
        snprintf(err, errlen, "%s.%s: %s is not a valid %s", topic->sal_name, f->name, text,
                 sal_field_type_name(f->type));
        return -ERANGE;
    }
    store_integer(f, (char *)sample + f->offset + i * scalar_size(f->type), s, u);
    return 0;
}

int sal_sample_set_from_text(const sal_topic_info *topic, void *sample, const char *field, const char *text,
                             char *err, size_t errlen)
{
    const sal_field_info *f = sal_topic_field(topic, field);
    if (f == NULL) {
        snprintf(err, errlen, "%s has no field %s", topic->sal_name, field);
        return -EINVAL;
    }
    if (f->type == SAL_FIELD_STRING) {
        return sal_sample_set_string(topic, sample, field, text, err, errlen);
    }
    char buf[1024];
    if (strlen(text) >= sizeof buf) {
        snprintf(err, errlen, "%s: value too long", field);
        return -E2BIG;
    }
    strcpy(buf, text);
    size_t i = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save), i++) {
        while (*tok == ' ') {
            tok++;
        }
        int rc = set_integer_text(topic, f, sample, i, tok, err, errlen);
        if (rc == 1) { /* not an integer literal: as a number */
            double v;
            rc = parse_number(f, tok, &v, err, errlen);
            if (rc == 0) {
                rc = sal_sample_set_number(topic, sample, field, i, v, err, errlen);
            }
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (i == 0) {
        snprintf(err, errlen, "%s: empty value", field);
        return -EINVAL;
    }
    return 0;
}

/* --- private fields, by the generated offsets --- */

static int32_t get_i32_at(const void *sample, size_t offset)
{
    int32_t v;
    memcpy(&v, (const char *)sample + offset, sizeof v);
    return v;
}

int32_t sal_sample_index(const sal_topic_info *topic, const void *sample)
{
    return topic->priv.salIndex < 0 ? 0 : get_i32_at(sample, (size_t)topic->priv.salIndex);
}

int32_t sal_sample_seqnum(const sal_topic_info *topic, const void *sample)
{
    return get_i32_at(sample, topic->priv.seqNum);
}

void sal_sample_set_seqnum(const sal_topic_info *topic, void *sample, int32_t seqnum)
{
    memcpy((char *)sample + topic->priv.seqNum, &seqnum, sizeof seqnum);
}

int32_t sal_sample_origin(const sal_topic_info *topic, const void *sample)
{
    return get_i32_at(sample, topic->priv.origin);
}

const char *sal_sample_identity(const sal_topic_info *topic, const void *sample)
{
    return const_tail_of(topic, sample)->identity;
}

size_t sal_sample_identity_length(const sal_topic_info *topic, const void *sample)
{
    return const_tail_of(topic, sample)->identity_len;
}

/* The first `len` bytes of value, cut at a character boundary to at most
 * `max`, into dst (max + 1 bytes). */
static void copy_cut(char *dst, const char *value, size_t len, size_t max)
{
    size_t n = len > max ? sal_utf8_cut(value, max) : len;
    memcpy(dst, value, n);
    dst[n] = '\0';
}

void sal_sample_set_identity(const sal_topic_info *topic, void *sample, const char *value, size_t len)
{
    sample_tail *tail = tail_of(topic, sample);
    copy_cut(tail->identity, value, len, SAL_IDENTITY_MAX);
    tail->identity_len = len;
    copy_cut((char *)sample + topic->priv.identity, value, len, SAL_IDENTITY_SIZE - 1);
}

void sal_sample_identity_from_struct(const sal_topic_info *topic, void *sample)
{
    const char *field = (const char *)sample + topic->priv.identity;
    size_t n = strnlen(field, SAL_IDENTITY_SIZE - 1);
    sample_tail *tail = tail_of(topic, sample);
    memcpy(tail->identity, field, n);
    tail->identity[n] = '\0';
    tail->identity_len = n;
}

double sal_sample_snd_stamp(const sal_topic_info *topic, const void *sample)
{
    double v;
    memcpy(&v, (const char *)sample + topic->priv.sndStamp, sizeof v);
    return v;
}

void sal_sample_set_rcv_stamp(const sal_topic_info *topic, void *sample, double tai)
{
    memcpy((char *)sample + topic->priv.rcvStamp, &tai, sizeof tai);
}

/* snprintf(dst, size, "%s", src) without the format machinery (every
 * write stamps two strings) */
static void copy_bounded(char *dst, const char *src, size_t size)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void sal_sample_stamp(const sal_topic_info *topic, void *sample, const sal_stamp *st)
{
    char *s = sample;
    copy_bounded(s + topic->priv.revCode, st->rev_code, SAL_REVCODE_SIZE);
    sal_sample_set_identity(topic, sample, st->identity, strlen(st->identity));
    memcpy(s + topic->priv.sndStamp, &st->snd_stamp, sizeof st->snd_stamp);
    double zero = 0.0;
    memcpy(s + topic->priv.rcvStamp, &zero, sizeof zero);
    memcpy(s + topic->priv.origin, &st->origin, sizeof st->origin);
    if (topic->priv.salIndex >= 0) {
        memcpy(s + topic->priv.salIndex, &st->index, sizeof st->index);
    }
    if (st->seqnum != 0) {
        memcpy(s + topic->priv.seqNum, &st->seqnum, sizeof st->seqnum);
    }
}
