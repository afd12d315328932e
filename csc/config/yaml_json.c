/*
 * yaml_json.c - YAML to jansson as PyYAML's yaml.safe_load reads it; the
 * rules and the known differences are in yaml_json.h.
 *
 * libyaml's events are read by a recursive descent (at most
 * YAML_JSON_MAX_DEPTH frames deep); each node is resolved and constructed
 * as soon as it is complete. Aliases share the anchored value.
 *
 * The work is split by concern (yaml_json__internal.h declares what the
 * files share):
 *   yaml_json.c            errors, libyaml events, documents, the entry points
 *   yaml_json_resolve.c    PyYAML's YAML 1.1 implicit resolvers and tags
 *   yaml_json_construct.c  SafeConstructor's scalar conversions, repr(float)
 *   yaml_json_build.c      scalars, anchors and aliases, sequences, mappings
 *                          and merge keys into jansson values
 */
#include "yaml_json__internal.h"

#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocps/sal_utf8.h"

/* ---- errors ---------------------------------------------------------- */

static void yj_vfail(yj_ctx *c, const yaml_mark_t *mark, const char *fmt, va_list ap)
{
    char msg[512];
    if (c->failed) {
        return;
    }
    c->failed = 1;
    if (!c->err || c->errlen == 0) {
        return;
    }
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (mark) {
        snprintf(c->err, c->errlen, "%s%sline %zu, column %zu: %s", c->path ? c->path : "",
                 c->path ? ": " : "", mark->line + 1, mark->column + 1, msg);
    } else {
        snprintf(c->err, c->errlen, "%s%s%s", c->path ? c->path : "", c->path ? ": " : "", msg);
    }
}

int yj_fail(yj_ctx *c, yaml_mark_t mark, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    yj_vfail(c, &mark, fmt, ap);
    va_end(ap);
    return -1;
}

int yj_fail_plain(yj_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    yj_vfail(c, NULL, fmt, ap);
    va_end(ap);
    return -1;
}

/* The line and column of a byte offset (libyaml's reader errors have none). */
static yaml_mark_t yj_mark_at(const yj_ctx *c, size_t offset)
{
    yaml_mark_t m = {0, 0, 0};
    size_t i;
    if (offset > c->len) {
        offset = c->len;
    }
    for (i = 0; i < offset; i++) {
        if (c->text[i] == '\n') {
            m.line++;
            m.column = 0;
        } else if (((unsigned char)c->text[i] & 0xC0) != 0x80) {
            m.column++;
        }
    }
    m.index = offset;
    return m;
}

/* Record libyaml's parser error (problem, context, position). */
static int yj_parser_error(yj_ctx *c)
{
    const yaml_parser_t *p = &c->parser;
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_MEMORY_ERROR) {
        return yj_fail_plain(c, "out of memory");
    }
    if (p->error == YAML_READER_ERROR) {
        yaml_mark_t m = yj_mark_at(c, p->problem_offset);
        if (p->problem_value != -1) {
            return yj_fail(c, m, "%s: #%X", problem, (unsigned)p->problem_value);
        }
        return yj_fail(c, m, "%s", problem);
    }
    if (p->context && p->context_mark.line != p->problem_mark.line) {
        return yj_fail(c, p->problem_mark, "%s (from line %zu, column %zu), %s", p->context,
                       p->context_mark.line + 1, p->context_mark.column + 1, problem);
    }
    if (p->context) {
        return yj_fail(c, p->problem_mark, "%s, %s", p->context, problem);
    }
    return yj_fail(c, p->problem_mark, "%s", problem);
}

int yj_next(yj_ctx *c, yaml_event_t *ev)
{
    if (yaml_parser_parse(&c->parser, ev)) {
        return 0;
    }
    return yj_parser_error(c);
}

/* A scalar for messages (see yj_excerpt). */
yj_excerpt yj_show(const char *s, size_t n)
{
    yj_excerpt e;
    size_t len = n, i;
    if (len > 60) {
        len = sal_utf8_cut(s, 60);
    }
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        e.text[i] = ch < 0x20 || ch == 0x7F ? '?' : (char)ch;
    }
    snprintf(e.text + len, sizeof e.text - len, "%s", len < n ? "..." : "");
    return e;
}

yj_excerpt yj_show_tag(const yaml_char_t *tag)
{
    return yj_show((const char *)tag, strlen((const char *)tag));
}

int yj_oom(yj_ctx *c)
{
    return yj_fail_plain(c, "out of memory");
}

/* ---- documents --------------------------------------------------------- */

static int yj_expect(yj_ctx *c, yaml_event_type_t type)
{
    yaml_event_t ev;
    int ok;
    if (yj_next(c, &ev) != 0) {
        return -1;
    }
    ok = ev.type == type;
    if (!ok) {
        yj_fail(c, ev.start_mark, "unexpected YAML event %d", (int)ev.type);
    }
    yaml_event_delete(&ev);
    return ok ? 0 : -1;
}

/* After the first document: only the end of the stream may follow. */
static int yj_stream_end(yj_ctx *c)
{
    yaml_event_t ev;
    int rc = 0;
    if (yj_expect(c, YAML_DOCUMENT_END_EVENT) != 0 || yj_next(c, &ev) != 0) {
        return -1;
    }
    if (ev.type != YAML_STREAM_END_EVENT) {
        rc =
            yj_fail(c, ev.start_mark, "expected a single document in the stream, but found another document");
    }
    yaml_event_delete(&ev);
    return rc;
}

/* The stream: nothing (null) or exactly one document. */
static json_t *yj_document(yj_ctx *c)
{
    yaml_event_t ev;
    yj_node root;
    if (yj_expect(c, YAML_STREAM_START_EVENT) != 0 || yj_next(c, &ev) != 0) {
        return NULL;
    }
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return json_null();
    }
    yaml_event_delete(&ev);
    if (yj_next(c, &ev) != 0 || yj_parse_node(c, &ev, &root) != 0) {
        return NULL;
    }
    if (yj_require_data(c, &root) != 0 || yj_stream_end(c) != 0) {
        json_decref(root.value);
        return NULL;
    }
    return root.value;
}

static void yj_ctx_free(yj_ctx *c)
{
    size_t i;
    for (i = 0; i < c->nanchors; i++) {
        json_decref(c->anchors[i].value);
    }
    free(c->anchors);
    json_decref(c->anchor_index);
    yaml_parser_delete(&c->parser);
}

/* Parse text[0..len) (from path, for messages) in the C locale; the
 * timestamp values go into stamps too if it is not NULL. */
static json_t *yj_load(const char *text, size_t len, const char *path, json_t *stamps, char *err,
                       size_t errlen)
{
    yj_ctx c;
    json_t *root = NULL;
    locale_t cloc, old = (locale_t)0;
    memset(&c, 0, sizeof c);
    c.text = text ? text : "";
    c.len = len;
    c.path = path;
    c.stamps = stamps;
    c.err = err;
    c.errlen = errlen;
    if (err && errlen > 0) {
        err[0] = '\0';
    }
    if (len > YAML_JSON_MAX_INPUT) {
        yj_fail_plain(&c, "input of %zu bytes is larger than the limit of %u bytes", len,
                      YAML_JSON_MAX_INPUT);
        return NULL;
    }
    if (!text && len > 0) {
        yj_fail_plain(&c, "no input text");
        return NULL;
    }
    if (!yaml_parser_initialize(&c.parser)) {
        yj_oom(&c);
        return NULL;
    }
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)c.text, len);
    /* strtod and snprintf in the C locale whatever the program's is. */
    cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (cloc) {
        old = uselocale(cloc);
    }
    c.anchor_index = json_object();
    if (c.anchor_index) {
        root = yj_document(&c);
    } else {
        yj_oom(&c);
    }
    if (cloc) {
        uselocale(old);
        freelocale(cloc);
    }
    yj_ctx_free(&c);
    return root;
}

json_t *yaml_json_load(const char *text, size_t len, char *err, size_t errlen)
{
    return yj_load(text, len, NULL, NULL, err, errlen);
}

json_t *yaml_json_load_named(const char *text, size_t len, const char *name, json_t *timestamps, char *err,
                             size_t errlen)
{
    return yj_load(text, len, name, timestamps, err, errlen);
}

/* The whole file into a malloc'd buffer; -1 on a read error, -2 if it is
 * larger than YAML_JSON_MAX_INPUT. */
static int yj_read_all(FILE *f, char **buf, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *data = malloc(cap);
    while (data) {
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (n > YAML_JSON_MAX_INPUT || ferror(f) || got == 0) {
            break;
        }
        if (n == cap) {
            char *grown = realloc(data, cap * 2);
            if (!grown) {
                free(data);
                data = NULL;
                break;
            }
            data = grown;
            cap *= 2;
        }
    }
    if (!data) {
        errno = ENOMEM;
        return -1;
    }
    if (ferror(f) || n > YAML_JSON_MAX_INPUT) {
        free(data);
        return ferror(f) ? -1 : -2;
    }
    *buf = data;
    *len = n;
    return 0;
}

json_t *yaml_json_load_file(const char *path, char *err, size_t errlen)
{
    return yaml_json_load_file_timestamps(path, NULL, err, errlen);
}

json_t *yaml_json_load_file_timestamps(const char *path, json_t *timestamps, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rbe"); /* e: close-on-exec, read on worker threads */
    char *buf = NULL;
    size_t len = 0;
    json_t *root;
    int rc;
    if (!f) {
        if (err && errlen > 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        }
        return NULL;
    }
    rc = yj_read_all(f, &buf, &len);
    if (rc != 0) {
        if (err && errlen > 0 && rc == -2) {
            snprintf(err, errlen, "%s: larger than the limit of %u bytes", path, YAML_JSON_MAX_INPUT);
        } else if (err && errlen > 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
        }
        fclose(f);
        return NULL;
    }
    fclose(f);
    root = yj_load(buf, len, path, timestamps, err, errlen);
    free(buf);
    return root;
}
