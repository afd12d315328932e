/*
 * uws_status_page.c - ocps-engine's job status pages (see uws_status_page.h).
 */
#define _XOPEN_SOURCE 700
#include "ocps/uws_status_page.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ocps/uws_job.h"

/* What a row of the list shows (copied out of the walk). */
typedef struct uws_row {
    char id[ENGINE_JOB_ID_LEN + 1];
    engine_phase phase;
    engine_reason reason;
    int exit_code;
    double created, started, ended;
    char run_id[80];
    char what[512];
    char query[512];
    char message[512];
} uws_row;

/* A growing HTML buffer. */
typedef struct uws_html {
    char *p;
    size_t len;
    size_t cap;
    bool failed;
} uws_html;

static void uws_put(uws_html *h, const char *s, size_t n)
{
    if (h->failed) {
        return;
    }
    if (h->len + n + 1 > h->cap) {
        size_t cap = (h->cap + n + 1) * 2;
        char *q = realloc(h->p, cap);
        if (q == NULL) {
            h->failed = true;
            return;
        }
        h->p = q;
        h->cap = cap;
    }
    memcpy(h->p + h->len, s, n);
    h->len += n;
    h->p[h->len] = '\0';
}

static void uws_puts(uws_html *h, const char *s)
{
    uws_put(h, s, strlen(s));
}

/* Trusted text (format strings of this file, numbers). */
static void uws_putf(uws_html *h, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) {
        uws_put(h, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    }
}

/* User input: escaped. */
static void uws_put_esc(uws_html *h, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *ent = NULL;
        switch (s[i]) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&#39;";
            break;
        default:
            break;
        }
        if (ent != NULL) {
            uws_put(h, s + start, i - start);
            uws_put(h, ent, strlen(ent));
            start = i + 1;
        }
    }
    uws_put(h, s + start, n - start);
}

static void uws_put_str(uws_html *h, const char *s)
{
    uws_put_esc(h, s, strlen(s));
}

void uws_html_escape(const char *s, char *out, size_t outlen)
{
    uws_html h = {0};
    uws_put_str(&h, s);
    snprintf(out, outlen, "%s", h.p != NULL ? h.p : "");
    free(h.p);
}

static double uws_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void uws_put_time(uws_html *h, double t)
{
    if (t <= 0) {
        uws_puts(h, "-");
        return;
    }
    time_t s = (time_t)t;
    struct tm tm;
    char buf[32];
    gmtime_r(&s, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
    uws_put(h, buf, strlen(buf));
}

static void uws_put_duration(uws_html *h, double from, double to)
{
    if (from <= 0) {
        uws_puts(h, "-");
        return;
    }
    double d = (to > 0 ? to : uws_wall()) - from;
    long s = d > 0 ? (long)(d + 0.5) : 0;
    if (s >= 3600) {
        uws_putf(h, "%ldh%02ldm%02lds", s / 3600, s / 60 % 60, s % 60);
    } else if (s >= 60) {
        uws_putf(h, "%ldm%02lds", s / 60, s % 60);
    } else {
        uws_putf(h, "%ld s", s);
    }
}

/* The value of NAME in the job's environment list, or NULL. */
static const char *uws_env_value(json_t *env, const char *name)
{
    size_t i;
    json_t *item;
    const char *found = NULL;
    json_array_foreach(env, i, item)
    {
        if (json_is_string(json_object_get(item, "name")) &&
            strcmp(json_string_value(json_object_get(item, "name")), name) == 0) {
            found = json_string_value(json_object_get(item, "value"));
        }
    }
    return found;
}

/* argv words joined by spaces (truncated). */
static void uws_join(json_t *argv, char *out, size_t outlen)
{
    size_t i;
    json_t *w;
    size_t n = 0;
    out[0] = '\0';
    json_array_foreach(argv, i, w)
    {
        const char *s = json_string_value(w);
        if (s != NULL && n < outlen) {
            int k = snprintf(out + n, outlen - n, "%s%s", n > 0 ? " " : "", s);
            n += k > 0 ? (size_t)k : 0;
        }
    }
}

/* The argument after one of two options in argv, or NULL. */
static const char *uws_arg_after(json_t *argv, const char *opt1, const char *opt2)
{
    for (size_t i = 0; i + 1 < json_array_size(argv); i++) {
        const char *s = json_string_value(json_array_get(argv, i));
        if (s != NULL && (strcmp(s, opt1) == 0 || strcmp(s, opt2) == 0)) {
            return json_string_value(json_array_get(argv, i + 1));
        }
    }
    return NULL;
}

static void uws_row_of(const engine_job *job, uws_row *r)
{
    memset(r, 0, sizeof *r);
    memcpy(r->id, job->id, sizeof r->id);
    r->phase = job->phase;
    r->reason = job->reason;
    r->exit_code = job->exit_code;
    r->created = job->created;
    r->started = job->started;
    r->ended = job->ended;
    snprintf(r->message, sizeof r->message, "%s", job->message);
    json_t *uws = json_object_get(job->meta, "uws");
    json_t *env = json_object_get(uws, "environment");
    json_t *argv =
        json_is_array(json_object_get(uws, "command")) ? json_object_get(uws, "command") : job->argv;
    const char *run_id = json_string_value(json_object_get(uws, "run_id"));
    snprintf(r->run_id, sizeof r->run_id, "%s", run_id != NULL ? run_id : "");
    const char *pipeline = uws_env_value(env, "PIPELINE_URL");
    if (pipeline == NULL) {
        pipeline = uws_arg_after(argv, "-p", "--pipeline");
    }
    if (pipeline != NULL) {
        snprintf(r->what, sizeof r->what, "%s", pipeline);
    } else {
        uws_join(argv, r->what, sizeof r->what);
    }
    const char *query = uws_env_value(env, "DATA_QUERY");
    if (query == NULL) {
        query = uws_arg_after(argv, "-d", "--data-query");
    }
    snprintf(r->query, sizeof r->query, "%s", query != NULL ? query : "");
}

static void uws_head(uws_html *h, const char *title)
{
    uws_puts(h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    uws_putf(h, "<meta http-equiv=\"refresh\" content=\"5\"><title>");
    uws_put_str(h, title);
    uws_putf(
        h, "</title>\n<style>\n"
           "body{font-family:sans-serif;margin:1em;color:#222;background:#fff}\n"
           "table{border-collapse:collapse;width:100%%}\n"
           "th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top;font-size:13px}\n"
           "th{background:#eee}\n"
           ".badge{display:inline-block;padding:4px 10px;border-radius:4px;color:#fff;font-weight:bold}\n");
    uws_putf(h, ".phase-pending,.phase-queued{background:#777777}\n"
                ".phase-executing{background:#0055dd}\n"
                ".phase-completed{background:#008822}\n"
                ".phase-error{background:#cc0000}\n"
                ".phase-aborted{background:#dd8800}\n"
                ".phase-unknown{background:#7722aa}\n"
                "pre{background:#f6f6f6;border:1px solid #ccc;padding:6px;overflow:auto;max-height:40em}\n"
                "img.preview{max-width:100%%;border:1px solid #ccc}\n"
                "h1 .badge{font-size:60%%;vertical-align:middle}\n"
                ".wide{overflow-x:auto}\n"
                "</style></head><body>\n");
}

static void uws_badge(uws_html *h, engine_phase p)
{
    const char *name = engine_phase_name(p);
    uws_putf(h, "<span class=\"badge phase-%s\">%s</span>", name, name);
}

/* One job's row, its link to its page under `prefix` ("" or the base path). */
static void uws_row_html(uws_html *h, const uws_row *r, const char *prefix)
{
    uws_putf(h, "<tr id=\"job-%s\" data-phase=\"%s\"><td><a href=\"", r->id, engine_phase_name(r->phase));
    uws_put_str(h, prefix);
    uws_putf(h, "/status/job/%s\">%.8s</a></td><td>", r->id, r->id);
    uws_badge(h, r->phase);
    uws_puts(h, "</td><td>");
    uws_put_str(h, r->run_id);
    uws_puts(h, "</td><td>");
    uws_put_str(h, r->what);
    uws_puts(h, "</td><td>");
    uws_put_str(h, r->query);
    uws_puts(h, "</td><td>");
    uws_put_time(h, r->created);
    uws_puts(h, "</td><td>");
    uws_put_time(h, r->started);
    uws_puts(h, "</td><td>");
    uws_put_time(h, r->ended);
    uws_puts(h, "</td><td>");
    uws_put_duration(h, r->started, r->ended);
    uws_puts(h, "</td><td class=\"exit\">");
    if (engine_phase_final(r->phase)) {
        uws_putf(h, "%d", r->exit_code);
    } else {
        uws_puts(h, "-");
    }
    uws_puts(h, "</td><td class=\"reason\">");
    uws_put_str(h, engine_phase_final(r->phase) ? engine_reason_name(r->reason) : "");
    if (r->message[0] != '\0' && strcmp(r->message, engine_reason_name(r->reason)) != 0) {
        uws_puts(h, ": ");
        uws_put_str(h, r->message);
    }
    uws_puts(h, "</td></tr>\n");
}

static const char uws_table_head[] =
    "<div class=\"wide\"><table><tr><th>job</th><th>phase</th><th>run id</th><th>pipeline or "
    "command</th><th>query</th><th>created</th><th>started</th><th>ended</"
    "th><th>duration</th><th>exit code</th><th>reason</th></tr>\n";

/* The list walk: the rows of one section. */
typedef struct uws_page_walk {
    uws_page_hidden_cb hidden;
    void *arg;
    uws_row *rows;
    size_t n;
    size_t max;
} uws_page_walk;

static int uws_page_one(void *arg, const engine_job *job)
{
    uws_page_walk *w = arg;
    if ((w->hidden != NULL && w->hidden(w->arg, job->id)) || w->n == w->max) {
        return 0;
    }
    uws_row_of(job, &w->rows[w->n++]);
    return 0;
}

char *uws_page_jobs(engine *e, int64_t before, const char *page_prefix, uws_page_hidden_cb hidden, void *arg,
                    size_t *len, char *err, size_t errlen)
{
    uws_page_walk live = {hidden, arg, NULL, 0, UWS_PAGE_MAX_LIVE};
    uws_page_walk ended = {hidden, arg, calloc(UWS_PAGE_MAX_ENDED, sizeof(uws_row)), 0, UWS_PAGE_MAX_ENDED};
    if (before == 0) {
        live.rows = calloc(UWS_PAGE_MAX_LIVE, sizeof(uws_row));
    }
    if (ended.rows == NULL || (before == 0 && live.rows == NULL)) {
        free(live.rows);
        free(ended.rows);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t nlive = 0;
    if (before == 0) {
        engine_job_list_live(e, UWS_PAGE_MAX_LIVE, uws_page_one, &live);
        for (int p = ENGINE_PENDING; p <= ENGINE_UNKNOWN; p++) {
            nlive += engine_count(e, (engine_phase)p);
        }
    }
    int64_t next = 0;
    if (engine_job_list_history(e, before, UWS_PAGE_MAX_ENDED, uws_page_one, &ended, &next, err, errlen) !=
        0) {
        free(live.rows);
        free(ended.rows);
        return NULL;
    }
    uws_html h = {0};
    uws_head(&h, "ocps-engine jobs");
    uws_puts(&h, "<h1>ocps-engine jobs</h1>\n");
    if (before == 0) {
        uws_putf(&h, "<h2>Live (%zu of %zu)</h2>\n", live.n, nlive > live.n ? nlive : live.n);
        uws_put(&h, uws_table_head, sizeof uws_table_head - 1);
        for (size_t i = 0; i < live.n; i++) {
            uws_row_html(&h, &live.rows[i], page_prefix);
        }
        uws_puts(&h, "</table></div>\n<h2>Ended (newest first)</h2>\n");
    } else {
        uws_puts(&h, "<h2>Ended (older)</h2>\n<p class=\"pages\"><a class=\"newest\" href=\"");
        uws_put_str(&h, page_prefix);
        uws_puts(&h, "/status\">newest jobs</a></p>\n");
    }
    uws_put(&h, uws_table_head, sizeof uws_table_head - 1);
    for (size_t i = 0; i < ended.n; i++) {
        uws_row_html(&h, &ended.rows[i], page_prefix);
    }
    uws_puts(&h, "</table></div>\n");
    if (next > 0) {
        uws_puts(&h, "<p class=\"pages\"><a class=\"older\" href=\"");
        uws_put_str(&h, page_prefix);
        uws_putf(&h, "/status?before=%lld\">older jobs</a></p>\n", (long long)next);
    }
    uws_puts(&h, "</body></html>\n");
    free(live.rows);
    free(ended.rows);
    if (h.failed) {
        free(h.p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *len = h.len;
    return h.p;
}

/* The last UWS_PAGE_LOG_TAIL bytes of the log, escaped, into h. */
static void uws_put_log_tail(uws_html *h, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) {
            close(fd);
        }
        uws_puts(h, "(no log yet)");
        return;
    }
    char *buf = malloc(UWS_PAGE_LOG_TAIL);
    off_t from = st.st_size > UWS_PAGE_LOG_TAIL ? st.st_size - UWS_PAGE_LOG_TAIL : 0;
    ssize_t n = buf != NULL ? pread(fd, buf, UWS_PAGE_LOG_TAIL, from) : -1;
    close(fd);
    if (n > 0) {
        if (from > 0) {
            uws_putf(h, "[... %lld bytes before ...]\n", (long long)from);
        }
        uws_put_esc(h, buf, (size_t)n);
    }
    free(buf);
}

struct uws_job_page {
    uws_row row;
    char base_path[256];
    char page_prefix[256]; /* where the page was asked for: "" or the base path */
    char workdir[1024];
    char log_path[1100];
    bool has_files; /* uws_job_has_files: else neither is touched */
};

uws_job_page *uws_job_page_new(const engine_job *job, const char *base_path, const char *page_prefix)
{
    uws_job_page *p = calloc(1, sizeof *p);
    if (p != NULL) {
        uws_row_of(job, &p->row);
        snprintf(p->base_path, sizeof p->base_path, "%s", base_path);
        snprintf(p->page_prefix, sizeof p->page_prefix, "%s", page_prefix);
        snprintf(p->workdir, sizeof p->workdir, "%s", job->workdir);
        snprintf(p->log_path, sizeof p->log_path, "%s", job->log_path);
        p->has_files = uws_job_has_files(job);
    }
    return p;
}

void uws_job_page_free(uws_job_page *p)
{
    free(p);
}

char *uws_job_page_render(const uws_job_page *p, size_t *len)
{
    const uws_row *r = &p->row;
    uws_html h = {0};
    char title[64];
    snprintf(title, sizeof title, "job %.32s", r->id);
    uws_head(&h, title);
    uws_puts(&h, "<p><a href=\"");
    uws_put_str(&h, p->page_prefix);
    uws_putf(&h, "/status\">all jobs</a></p>\n<h1>Job %s ", r->id);
    uws_badge(&h, r->phase);
    uws_puts(&h, "</h1>\n");
    uws_put(&h, uws_table_head, sizeof uws_table_head - 1);
    uws_row_html(&h, r, p->page_prefix);
    uws_puts(&h, "</table></div>\n<h2>Outputs</h2>\n<ul>\n");
    json_t *results = p->has_files ? uws_job_results(p->workdir) : json_array();
    size_t i;
    json_t *item;
    json_array_foreach(results, i, item)
    {
        const char *path = json_string_value(item);
        const char *name = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
        uws_putf(&h, "<li><a href=\"");
        uws_put_str(&h, p->base_path);
        uws_putf(&h, "/job/result/%s/%zu\">", r->id, i);
        uws_put_str(&h, name);
        uws_puts(&h, "</a></li>\n");
    }
    uws_puts(&h, "</ul>\n");
    json_array_foreach(results, i, item)
    {
        const char *path = json_string_value(item);
        size_t n = strlen(path);
        if (n > 4 && strcasecmp(path + n - 4, ".png") == 0) {
            uws_puts(&h, "<h2>Preview</h2>\n<img class=\"preview\" alt=\"preview\" src=\"");
            uws_put_str(&h, p->base_path);
            uws_putf(&h, "/job/result/%s/%zu\">\n", r->id, i);
        }
    }
    json_decref(results);
    uws_putf(&h, "<h2>Log (last %d KiB)</h2>\n<pre class=\"log\">", UWS_PAGE_LOG_TAIL / 1024);
    if (p->has_files) {
        uws_put_log_tail(&h, p->log_path);
    }
    uws_puts(&h, "</pre>\n</body></html>\n");
    if (h.failed) {
        free(h.p);
        return NULL;
    }
    *len = h.len;
    return h.p;
}
