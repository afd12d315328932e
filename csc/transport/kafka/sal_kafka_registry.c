/* sal_kafka_registry.c - schema-registry client; see sal_kafka_registry.h. */
#include "sal_kafka_registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <jansson.h>

#define REGISTRY_CONTENT_TYPE "application/vnd.schemaregistry.v1+json"
#define REGISTRY_TIMEOUT_MS 10000L
#define REGISTRY_MAX_REPLY (16u * 1024u * 1024u)

struct sal_kafka_registry {
    char *url; /* without a trailing '/' */
    CURL *curl;
    struct curl_slist *headers;
    pthread_mutex_t lock;
    atomic_bool cancelled;
};

typedef struct reply {
    char *data;
    size_t len;
    bool overflow;
} reply;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    reply *r = arg;
    size_t n = size * nmemb;
    if (r->len + n > REGISTRY_MAX_REPLY) {
        r->overflow = true;
        return 0;
    }
    char *p = realloc(r->data, r->len + n + 1);
    if (p == NULL) {
        return 0;
    }
    memcpy(p + r->len, ptr, n);
    r->len += n;
    p[r->len] = '\0';
    r->data = p;
    return n;
}

int sal_kafka_registry_new(sal_kafka_registry **out, const char *url, char *err, size_t errlen)
{
    *out = NULL;
    sal_kafka_registry *r = calloc(1, sizeof *r);
    if (r == NULL || (r->url = strdup(url)) == NULL) {
        free(r);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t n = strlen(r->url);
    while (n > 0 && r->url[n - 1] == '/') {
        r->url[--n] = '\0';
    }
    r->curl = curl_easy_init();
    r->headers = curl_slist_append(NULL, "Content-Type: " REGISTRY_CONTENT_TYPE);
    struct curl_slist *h =
        r->headers ? curl_slist_append(r->headers, "Accept: " REGISTRY_CONTENT_TYPE) : NULL;
    if (r->curl == NULL || h == NULL) {
        snprintf(err, errlen, "cannot set up libcurl for the schema registry");
        sal_kafka_registry_free(r);
        return -ENOMEM;
    }
    r->headers = h;
    pthread_mutex_init(&r->lock, NULL);
    *out = r;
    return 0;
}

void sal_kafka_registry_free(sal_kafka_registry *r)
{
    if (r == NULL) {
        return;
    }
    if (r->curl != NULL) {
        curl_easy_cleanup(r->curl);
        pthread_mutex_destroy(&r->lock);
    }
    curl_slist_free_all(r->headers);
    free(r->url);
    free(r);
}

/* The registry's {"error_code": N, "message": "..."} or the raw body. */
static void http_error(const char *what, long status, const reply *body, char *err, size_t errlen)
{
    json_t *root = body->data ? json_loads(body->data, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(root, "message"));
    const char *hint = status == 409   ? " (incompatible with the registered versions)"
                       : status == 422 ? " (invalid schema)"
                                       : "";
    snprintf(err, errlen, "schema registry: %s: HTTP %ld%s: %s", what, status, hint,
             msg ? msg : (body->data ? body->data : ""));
    json_decref(root);
}

/* curl's sockets, close-on-exec from the start (curl makes them without):
 * requests run on transport threads while the loop spawns children. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)arg;
    (void)purpose;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

void sal_kafka_registry_cancel(sal_kafka_registry *r)
{
    atomic_store(&r->cancelled, true);
}

/* curl's progress callback: non-zero aborts the transfer. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    sal_kafka_registry *r = arg;
    return atomic_load(&r->cancelled) ? 1 : 0;
}

/* One request, waiting at most timeout_ms (0: REGISTRY_TIMEOUT_MS); on
 * 2xx the parsed JSON reply is returned in *out. */
static int request(sal_kafka_registry *r, const char *path, const char *post, const char *what,
                   long timeout_ms, json_t **out, char *err, size_t errlen)
{
    if (atomic_load(&r->cancelled)) {
        snprintf(err, errlen, "schema registry %s: %s: cancelled (closing)", r->url, what);
        return -ECANCELED;
    }
    char *url = malloc(strlen(r->url) + strlen(path) + 1);
    if (url == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    sprintf(url, "%s%s", r->url, path);
    reply body = {0};
    pthread_mutex_lock(&r->lock);
    CURL *c = r->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : REGISTRY_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    if (post != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    }
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    pthread_mutex_unlock(&r->lock);
    free(url);
    int rc = 0;
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "schema registry %s: %s: %s", r->url, what,
                 body.overflow ? "reply too large" : curl_easy_strerror(cc));
        rc = body.overflow ? -EIO : -EHOSTUNREACH; /* not reached (or no answer): may come back */
    } else if (status < 200 || status > 299) {
        http_error(what, status, &body, err, errlen);
        rc = status == 409 || status == 422 ? -EINVAL : status >= 500 ? -EHOSTUNREACH : -EIO;
    } else if ((*out = json_loads(body.data ? body.data : "", 0, NULL)) == NULL) {
        snprintf(err, errlen, "schema registry: %s: the reply is not JSON", what);
        rc = -EPROTO;
    }
    free(body.data);
    return rc;
}

int sal_kafka_registry_register(sal_kafka_registry *r, const char *subject, const char *schema,
                                long timeout_ms, int32_t *id, char *err, size_t errlen)
{
    json_t *req = json_pack("{s:s}", "schema", schema);
    char *post = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    char *esc = curl_easy_escape(NULL, subject, 0);
    char path[1024], what[1100];
    if (post == NULL || esc == NULL) {
        free(post);
        curl_free(esc);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    snprintf(path, sizeof path, "/subjects/%s/versions", esc);
    snprintf(what, sizeof what, "POST %s", path);
    curl_free(esc);
    json_t *reply = NULL;
    int rc = request(r, path, post, what, timeout_ms, &reply, err, errlen);
    free(post);
    if (rc == 0) {
        json_t *jid = json_object_get(reply, "id");
        if (!json_is_integer(jid) || json_integer_value(jid) < 0 || json_integer_value(jid) > INT32_MAX) {
            snprintf(err, errlen, "schema registry: %s: no schema id in the reply", what);
            rc = -EPROTO;
        } else {
            *id = (int32_t)json_integer_value(jid);
        }
    }
    json_decref(reply);
    return rc;
}

int sal_kafka_registry_fetch(sal_kafka_registry *r, int32_t id, char **schema, char *err, size_t errlen)
{
    *schema = NULL;
    char path[64], what[80];
    snprintf(path, sizeof path, "/schemas/ids/%d", (int)id);
    snprintf(what, sizeof what, "GET %s", path);
    json_t *reply = NULL;
    int rc = request(r, path, NULL, what, 0, &reply, err, errlen);
    if (rc == 0) {
        const char *s = json_string_value(json_object_get(reply, "schema"));
        if (s == NULL) {
            snprintf(err, errlen, "schema registry: %s: no schema in the reply", what);
            rc = -EPROTO;
        } else if ((*schema = strdup(s)) == NULL) {
            snprintf(err, errlen, "out of memory");
            rc = -ENOMEM;
        }
    }
    json_decref(reply);
    return rc;
}
