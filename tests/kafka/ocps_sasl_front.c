/*
 * ocps-sasl-front - a SASL/SCRAM-SHA-512 front for a one-broker test
 * cluster (ocps-mock-broker): librdkafka's mock cluster has no SASL, and the
 * summit's brokers require it (LSST_KAFKA_SECURITY_*, salobj's defaults
 * SASL_PLAINTEXT + SCRAM-SHA-512). A client connects here; the front
 * speaks the Kafka protocol's SASL part itself (SaslHandshake v0-1,
 * SaslAuthenticate v0-1, RFC 5802 / RFC 7677 on the server side) and
 * passes every other request to the broker on a connection of its own,
 * after authentication only (ApiVersions before it too). Answers are
 * passed back, with edits: ApiVersions lists the two SASL requests, and
 * Metadata and FindCoordinator give the front's address for the broker's,
 * so that the client comes back here.
 *
 *   ocps-sasl-front --upstream IPV4:PORT --user NAME --password WORD [--port N]
 *
 * Prints "BOOTSTRAP 127.0.0.1:PORT" when it listens; stops on SIGTERM, or
 * when its standard input, if a pipe, ends. Tests only: one upstream
 * broker (an IPv4 address), one user, loopback.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

enum {
    KEY_METADATA = 3,
    KEY_FIND_COORDINATOR = 10,
    KEY_SASL_HANDSHAKE = 17,
    KEY_API_VERSIONS = 18,
    KEY_SASL_AUTHENTICATE = 36,
    ERR_UNSUPPORTED_SASL_MECHANISM = 33,
    ERR_ILLEGAL_SASL_STATE = 34,
    ERR_SASL_AUTHENTICATION_FAILED = 58,
    MAX_FRAME = 64 << 20,
    INFLIGHT = 4096, /* requests passed on and not answered yet */
    SCRAM_ITERATIONS = 4096,
};

typedef struct front {
    char up_host[64];
    int up_port;
    const char *user;
    const char *password;
    int port; /* the front's own */
} front;

/* growable byte buffer */
typedef struct buf {
    unsigned char *p;
    size_t len, cap;
} buf;

static void buf_put(buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) {
            cap *= 2;
        }
        unsigned char *p = realloc(b->p, cap);
        if (p == NULL) {
            abort();
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_i16(buf *b, int v)
{
    uint16_t x = htons((uint16_t)v);
    buf_put(b, &x, 2);
}

static void put_i32(buf *b, int32_t v)
{
    uint32_t x = htonl((uint32_t)v);
    buf_put(b, &x, 4);
}

static void put_str(buf *b, const char *s) /* int16 length */
{
    put_i16(b, (int)strlen(s));
    buf_put(b, s, strlen(s));
}

static void put_uvarint(buf *b, uint32_t v)
{
    while (v >= 0x80) {
        unsigned char c = (unsigned char)(v | 0x80);
        buf_put(b, &c, 1);
        v >>= 7;
    }
    unsigned char c = (unsigned char)v;
    buf_put(b, &c, 1);
}

/* a reader over a frame: every get fails (ok = false) past its end */
typedef struct rd {
    const unsigned char *p;
    size_t len, pos;
    bool ok;
} rd;

static bool rd_need(rd *r, size_t n)
{
    if (!r->ok || r->len - r->pos < n) {
        r->ok = false;
        return false;
    }
    return true;
}

static int get_i16(rd *r)
{
    if (!rd_need(r, 2)) {
        return 0;
    }
    int v = (int16_t)((r->p[r->pos] << 8) | r->p[r->pos + 1]);
    r->pos += 2;
    return v;
}

static int32_t get_i32(rd *r)
{
    if (!rd_need(r, 4)) {
        return 0;
    }
    uint32_t v = ((uint32_t)r->p[r->pos] << 24) | ((uint32_t)r->p[r->pos + 1] << 16) |
                 ((uint32_t)r->p[r->pos + 2] << 8) | r->p[r->pos + 3];
    r->pos += 4;
    return (int32_t)v;
}

static uint32_t get_uvarint(rd *r)
{
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (!rd_need(r, 1)) {
            return 0;
        }
        unsigned char c = r->p[r->pos++];
        v |= (uint32_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            return v;
        }
    }
    r->ok = false;
    return 0;
}

static void skip(rd *r, size_t n)
{
    if (rd_need(r, n)) {
        r->pos += n;
    }
}

static void skip_tags(rd *r)
{
    uint32_t n = get_uvarint(r);
    for (uint32_t i = 0; i < n && r->ok; i++) {
        get_uvarint(r);
        skip(r, get_uvarint(r));
    }
}

/* a string (flex: compact) or a nullable one: skipped */
static void skip_str(rd *r, bool flex)
{
    if (flex) {
        uint32_t len = get_uvarint(r);
        skip(r, len > 0 ? len - 1 : 0);
    } else {
        int len = get_i16(r);
        skip(r, len > 0 ? (size_t)len : 0);
    }
}

/* ---- sockets ---- */

/* all n bytes read (writing false) or sent; -1 on an error or the end */
static int io_full(int fd, void *p, size_t n, bool writing)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = writing ? send(fd, (char *)p + done, n - done, MSG_NOSIGNAL)
                            : read(fd, (char *)p + done, n - done);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return -1;
        }
        done += (size_t)k;
    }
    return 0;
}

/* one frame (the 4-byte size, then at least `min` bytes) into *out */
static int read_frame(int fd, buf *out, uint32_t min)
{
    uint32_t size;
    if (io_full(fd, &size, 4, false) != 0) {
        return -1;
    }
    size = ntohl(size);
    if (size < min || size > MAX_FRAME) {
        return -1;
    }
    out->len = 0;
    if (out->cap < size) {
        unsigned char *p = realloc(out->p, size);
        if (p == NULL) {
            return -1;
        }
        out->p = p;
        out->cap = size;
    }
    if (io_full(fd, out->p, size, false) != 0) {
        return -1;
    }
    out->len = size;
    return 0;
}

static int write_frame(int fd, const buf *b)
{
    uint32_t size = htonl((uint32_t)b->len);
    return io_full(fd, &size, 4, true) == 0 && io_full(fd, b->p, b->len, true) == 0 ? 0 : -1;
}

/* ---- a client's connection ---- */

typedef struct pending {
    int32_t corr;
    int key, version;
} pending;

typedef struct conn {
    const front *fr;
    int client, upstream;
    pthread_mutex_t lock; /* the client's socket's writes and the queue */
    pthread_cond_t room;  /* the queue has room, or the broker's side closed */
    bool closed;          /* the broker's side ended */
    pending queue[INFLIGHT];
    int head, count;
    bool authenticated;
    int scram_step; /* 0: handshake awaited, 1: client-first awaited, 2: client-final awaited */
    char client_first_bare[512];
    char server_first[512];
    unsigned char salted[64];
} conn;

static int send_to_client(conn *c, const buf *b)
{
    pthread_mutex_lock(&c->lock);
    int rc = write_frame(c->client, b);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void b64(const unsigned char *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* decoded length, or -1 */
static int unb64(const char *in, size_t n, unsigned char *out, size_t cap)
{
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap) {
        return -1;
    }
    int k = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (k < 0) {
        return -1;
    }
    k -= (in[n - 1] == '=') + (in[n - 2] == '=');
    return k;
}

static void hmac512(const unsigned char *key, size_t klen, const void *data, size_t n, unsigned char out[64])
{
    unsigned int len = 64;
    HMAC(EVP_sha512(), key, (int)klen, data, n, out, &len);
}

/* the value of "k=" in a SCRAM attribute list, copied to out; -1 if absent */
static int scram_attr(const char *msg, char k, char *out, size_t cap)
{
    for (const char *p = msg; *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= 2 && p[0] == k && p[1] == '=') {
            if (len - 2 >= cap) {
                return -1;
            }
            memcpy(out, p + 2, len - 2);
            out[len - 2] = '\0';
            return 0;
        }
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    return -1;
}

/* One SCRAM step: the client's message in, the server's out (or an error
 * message); 0, or a Kafka error code. */
static int scram_step(conn *c, const char *in, char *out, size_t cap)
{
    if (c->scram_step == 1) { /* client-first: gs2 header "n,," then n=user,r=nonce */
        const char *bare = in;
        if (strncmp(in, "n,", 2) != 0 || (bare = strchr(in + 2, ',')) == NULL) {
            snprintf(out, cap, "a malformed SCRAM client-first message");
            return ERR_SASL_AUTHENTICATION_FAILED;
        }
        bare++;
        char user[128], nonce[128];
        snprintf(c->client_first_bare, sizeof c->client_first_bare, "%s", bare);
        if (scram_attr(bare, 'n', user, sizeof user) != 0 ||
            scram_attr(bare, 'r', nonce, sizeof nonce) != 0) {
            snprintf(out, cap, "a malformed SCRAM client-first message");
            return ERR_SASL_AUTHENTICATION_FAILED;
        }
        unsigned char salt[16], snonce[18];
        RAND_bytes(salt, sizeof salt);
        RAND_bytes(snonce, sizeof snonce);
        char salt64[32], snonce64[32];
        b64(salt, sizeof salt, salt64);
        b64(snonce, sizeof snonce, snonce64);
        snprintf(c->server_first, sizeof c->server_first, "r=%s%s,s=%s,i=%d", nonce, snonce64, salt64,
                 SCRAM_ITERATIONS);
        /* an unknown user is told only at the end, as Kafka does */
        const char *password = strcmp(user, c->fr->user) == 0 ? c->fr->password : "";
        PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, sizeof salt, SCRAM_ITERATIONS, EVP_sha512(),
                          sizeof c->salted, c->salted);
        if (strcmp(user, c->fr->user) != 0) {
            RAND_bytes(c->salted, sizeof c->salted);
        }
        snprintf(out, cap, "%s", c->server_first);
        c->scram_step = 2;
        return 0;
    }
    /* client-final: c=...,r=...,p=proof */
    const char *proof_at = strstr(in, ",p=");
    char nonce[256] = "", proof64[256] = "", expected_nonce[256] = "";
    unsigned char proof[128];
    if (proof_at == NULL || scram_attr(in, 'r', nonce, sizeof nonce) != 0 ||
        scram_attr(proof_at + 1, 'p', proof64, sizeof proof64) != 0 ||
        scram_attr(c->server_first, 'r', expected_nonce, sizeof expected_nonce) != 0) {
        snprintf(out, cap, "a malformed SCRAM client-final message");
        return ERR_SASL_AUTHENTICATION_FAILED;
    }
    int n = unb64(proof64, strlen(proof64), proof, sizeof proof);
    char auth[1600];
    snprintf(auth, sizeof auth, "%s,%s,%.*s", c->client_first_bare, c->server_first, (int)(proof_at - in),
             in);
    unsigned char client_key[64], stored[64], signature[64], server_key[64], server_sig[64];
    /* the client's nonce must end with the server's, as Kafka's SCRAM server
     * checks it (librdkafka sends its own nonce before the server's) */
    size_t nl = strlen(nonce), el = strlen(expected_nonce);
    bool good = n == 64 && nl >= el && strcmp(nonce + nl - el, expected_nonce) == 0;
    if (good) {
        hmac512(c->salted, 64, "Client Key", 10, client_key);
        SHA512(client_key, 64, stored);
        hmac512(stored, 64, auth, strlen(auth), signature);
        for (int i = 0; i < 64; i++) {
            good &= (proof[i] ^ signature[i]) == client_key[i];
        }
    }
    if (!good) {
        snprintf(out, cap,
                 "Authentication failed during authentication due to invalid credentials with SASL mechanism "
                 "SCRAM-SHA-512");
        return ERR_SASL_AUTHENTICATION_FAILED;
    }
    hmac512(c->salted, 64, "Server Key", 10, server_key);
    hmac512(server_key, 64, auth, strlen(auth), server_sig);
    char sig64[100];
    b64(server_sig, 64, sig64);
    snprintf(out, cap, "v=%s", sig64);
    c->scram_step = 3;
    c->authenticated = true;
    return 0;
}

/* SaslHandshake and SaslAuthenticate, answered here; -1 closes */
static int answer_sasl(conn *c, rd *r, int key, int version, int32_t corr)
{
    buf out = {0};
    put_i32(&out, corr);
    int rc = 0;
    if (key == KEY_SASL_HANDSHAKE) {
        char mech[64] = "";
        int n = get_i16(r);
        if (n > 0 && n < (int)sizeof mech && rd_need(r, (size_t)n)) {
            memcpy(mech, r->p + r->pos, (size_t)n);
        }
        bool ok = strcmp(mech, "SCRAM-SHA-512") == 0 && c->scram_step == 0;
        put_i16(&out, ok ? 0 : ERR_UNSUPPORTED_SASL_MECHANISM);
        put_i32(&out, 1);
        put_str(&out, "SCRAM-SHA-512");
        if (ok) {
            c->scram_step = 1;
        } else {
            fprintf(stderr, "ocps-sasl-front: mechanism %s refused\n", mech);
        }
    } else {
        int32_t n = get_i32(r);
        char in[1024] = "", reply[512];
        int err = ERR_ILLEGAL_SASL_STATE;
        snprintf(reply, sizeof reply, "no SASL handshake before the authentication");
        if (n >= 0 && (size_t)n < sizeof in && rd_need(r, (size_t)n) &&
            (c->scram_step == 1 || c->scram_step == 2)) {
            memcpy(in, r->p + r->pos, (size_t)n);
            in[n] = '\0';
            err = scram_step(c, in, reply, sizeof reply);
        }
        put_i16(&out, err);
        if (err != 0) {
            put_str(&out, reply);
            put_i32(&out, 0); /* no auth bytes */
            fprintf(stderr, "ocps-sasl-front: %s\n", reply);
            rc = -1;
        } else {
            put_i16(&out, -1); /* error message: null */
            put_i32(&out, (int32_t)strlen(reply));
            buf_put(&out, reply, strlen(reply));
        }
        if (version >= 1) {
            int64_t lifetime = 0;
            buf_put(&out, &lifetime, 8);
        }
    }
    if (send_to_client(c, &out) != 0) {
        rc = -1;
    }
    free(out.p);
    return rc;
}

/* ApiVersions: the broker's list, the two SASL requests added */
static void edit_api_versions(const buf *in, int version, buf *out)
{
    rd r = {in->p, in->len, 4, true};
    int error = get_i16(&r);
    bool flex = version >= 3;
    uint32_t n = flex ? get_uvarint(&r) - 1 : (uint32_t)get_i32(&r);
    if (!r.ok || error != 0 || n > 1000) {
        buf_put(out, in->p, in->len);
        return;
    }
    buf keys = {0};
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n && r.ok; i++) {
        int key = get_i16(&r), min = get_i16(&r), max = get_i16(&r);
        if (flex) {
            skip_tags(&r);
        }
        if (key == KEY_SASL_HANDSHAKE || key == KEY_SASL_AUTHENTICATE) {
            continue;
        }
        put_i16(&keys, key);
        put_i16(&keys, min);
        put_i16(&keys, max);
        if (flex) {
            put_uvarint(&keys, 0);
        }
        kept++;
    }
    const int added[2][3] = {{KEY_SASL_HANDSHAKE, 0, 1}, {KEY_SASL_AUTHENTICATE, 0, 1}};
    for (int i = 0; i < 2; i++) {
        put_i16(&keys, added[i][0]);
        put_i16(&keys, added[i][1]);
        put_i16(&keys, added[i][2]);
        if (flex) {
            put_uvarint(&keys, 0);
        }
    }
    if (!r.ok) {
        free(keys.p);
        buf_put(out, in->p, in->len);
        return;
    }
    buf_put(out, in->p, 4); /* correlation id */
    put_i16(out, 0);
    if (flex) {
        put_uvarint(out, kept + 3);
    } else {
        put_i32(out, (int32_t)(kept + 2));
    }
    buf_put(out, keys.p, keys.len);
    buf_put(out, in->p + r.pos, in->len - r.pos); /* throttle time, tags */
    free(keys.p);
}

/* Metadata: every broker is this front (one upstream broker) */
static void edit_metadata(const buf *in, int version, int port, buf *out)
{
    rd r = {in->p, in->len, 4, true};
    bool flex = version >= 9;
    if (flex) {
        skip_tags(&r); /* the response header's */
    }
    if (version >= 3) {
        skip(&r, 4); /* throttle time */
    }
    size_t brokers_at = r.pos;
    uint32_t n = flex ? get_uvarint(&r) - 1 : (uint32_t)get_i32(&r);
    if (!r.ok || n > 1000) {
        buf_put(out, in->p, in->len);
        return;
    }
    buf b = {0};
    buf_put(&b, in->p, brokers_at);
    if (flex) {
        put_uvarint(&b, n + 1);
    } else {
        put_i32(&b, (int32_t)n);
    }
    for (uint32_t i = 0; i < n && r.ok; i++) {
        int32_t id = get_i32(&r);
        skip(&r, flex ? get_uvarint(&r) - 1 : (size_t)get_i16(&r)); /* host */
        get_i32(&r);                                                /* port */
        put_i32(&b, id);
        if (flex) {
            put_uvarint(&b, 10);
            buf_put(&b, "127.0.0.1", 9);
        } else {
            put_str(&b, "127.0.0.1");
        }
        put_i32(&b, port);
        size_t rest = r.pos;
        if (version >= 1) {
            skip_str(&r, flex); /* rack, nullable */
        }
        if (flex) {
            skip_tags(&r);
        }
        if (r.ok) {
            buf_put(&b, in->p + rest, r.pos - rest);
        }
    }
    if (!r.ok) {
        free(b.p);
        buf_put(out, in->p, in->len);
        return;
    }
    buf_put(&b, in->p + r.pos, in->len - r.pos);
    buf_put(out, b.p, b.len);
    free(b.p);
}

/* FindCoordinator (v0-3): the coordinator is this front too (librdkafka
 * takes a broker's address from it) */
static void edit_find_coordinator(const buf *in, int version, int port, buf *out)
{
    rd r = {in->p, in->len, 4, true};
    bool flex = version >= 3;
    if (flex) {
        skip_tags(&r);
    }
    if (version >= 1) {
        skip(&r, 4); /* throttle time */
    }
    get_i16(&r); /* error code */
    if (version >= 1) {
        skip_str(&r, flex); /* error message, nullable */
    }
    get_i32(&r); /* node id */
    size_t host_at = r.pos;
    skip_str(&r, flex);
    get_i32(&r); /* port */
    if (!r.ok || version > 3) {
        buf_put(out, in->p, in->len);
        return;
    }
    buf_put(out, in->p, host_at);
    if (flex) {
        put_uvarint(out, 10);
        buf_put(out, "127.0.0.1", 9);
    } else {
        put_str(out, "127.0.0.1");
    }
    put_i32(out, port);
    buf_put(out, in->p + r.pos, in->len - r.pos);
}

/* the broker's answers back to the client, edited where needed */
static void *upstream_to_client(void *arg)
{
    conn *c = arg;
    buf in = {0}, out = {0};
    while (read_frame(c->upstream, &in, 4) == 0) { /* a response: its correlation id at least */
        int32_t corr = (int32_t)ntohl(*(uint32_t *)in.p);
        pthread_mutex_lock(&c->lock);
        pending p = {-1, -1, -1};
        if (c->count > 0 && c->queue[c->head].corr == corr) {
            p = c->queue[c->head];
            c->head = (c->head + 1) % INFLIGHT;
            c->count--;
            pthread_cond_signal(&c->room);
        } else {
            fprintf(stderr, "ocps-sasl-front: an answer to no request (%d)\n", (int)corr);
        }
        pthread_mutex_unlock(&c->lock);
        out.len = 0;
        if (p.key == KEY_API_VERSIONS) {
            edit_api_versions(&in, p.version, &out);
        } else if (p.key == KEY_METADATA) {
            edit_metadata(&in, p.version, c->fr->port, &out);
        } else if (p.key == KEY_FIND_COORDINATOR) {
            edit_find_coordinator(&in, p.version, c->fr->port, &out);
        } else {
            buf_put(&out, in.p, in.len);
        }
        if (send_to_client(c, &out) != 0) {
            break;
        }
    }
    shutdown(c->client, SHUT_RDWR);
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    pthread_cond_broadcast(&c->room);
    pthread_mutex_unlock(&c->lock);
    free(in.p);
    free(out.p);
    return NULL;
}

static int connect_upstream(const front *fr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fr->up_port)};
    if (fd < 0 || inet_pton(AF_INET, fr->up_host, &a.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* the client's requests: SASL answered here, the rest to the broker */
static void *serve_client(void *arg)
{
    conn *c = arg;
    c->upstream = connect_upstream(c->fr);
    pthread_t back;
    bool back_started = c->upstream >= 0 && pthread_create(&back, NULL, upstream_to_client, c) == 0;
    buf in = {0};
    while (back_started && read_frame(c->client, &in, 8) == 0) { /* a request: key, version, id */
        rd r = {in.p, in.len, 0, true};
        int key = get_i16(&r), version = get_i16(&r);
        int32_t corr = get_i32(&r);
        if (key == KEY_SASL_HANDSHAKE || key == KEY_SASL_AUTHENTICATE) {
            int n = get_i16(&r); /* client id */
            skip(&r, n > 0 ? (size_t)n : 0);
            if (!r.ok || answer_sasl(c, &r, key, version, corr) != 0) {
                break;
            }
            continue;
        }
        if (!c->authenticated && key != KEY_API_VERSIONS) {
            fprintf(stderr, "ocps-sasl-front: request %d before authentication: closed\n", key);
            break;
        }
        pthread_mutex_lock(&c->lock);
        while (c->count == INFLIGHT && !c->closed) {
            pthread_cond_wait(&c->room, &c->lock);
        }
        bool closed = c->closed;
        if (!closed) {
            c->queue[(c->head + c->count) % INFLIGHT] = (pending){corr, key, version};
            c->count++;
        }
        pthread_mutex_unlock(&c->lock);
        if (closed || write_frame(c->upstream, &in) != 0) {
            break;
        }
    }
    free(in.p);
    shutdown(c->client, SHUT_RDWR);
    if (c->upstream >= 0) {
        shutdown(c->upstream, SHUT_RDWR);
    }
    if (back_started) {
        pthread_join(back, NULL);
    }
    close(c->client);
    if (c->upstream >= 0) {
        close(c->upstream);
    }
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->room);
    free(c);
    return NULL;
}

static int parse_args(int argc, char **argv, front *fr)
{
    const char *up = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--upstream") == 0) {
            up = argv[i + 1];
        } else if (strcmp(argv[i], "--user") == 0) {
            fr->user = argv[i + 1];
        } else if (strcmp(argv[i], "--password") == 0) {
            fr->password = argv[i + 1];
        } else if (strcmp(argv[i], "--port") == 0) {
            fr->port = atoi(argv[i + 1]);
        } else {
            return -1;
        }
    }
    const char *colon = up ? strrchr(up, ':') : NULL;
    if (argc % 2 == 0 || colon == NULL || (size_t)(colon - up) >= sizeof fr->up_host || fr->user == NULL ||
        fr->password == NULL) {
        return -1;
    }
    memcpy(fr->up_host, up, (size_t)(colon - up));
    fr->up_host[colon - up] = '\0';
    fr->up_port = atoi(colon + 1);
    struct in_addr ip;
    return fr->up_port > 0 && inet_pton(AF_INET, fr->up_host, &ip) == 1 ? 0 : -1; /* an IPv4 address */
}

/* A front whose standard input is a pipe ends when the pipe does (the
 * test that started it is gone), as ocps-mock-broker. */
static void *watch_stdin(void *arg)
{
    (void)arg;
    char ch;
    while (read(STDIN_FILENO, &ch, 1) > 0) {
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    front fr = {0};
    if (parse_args(argc, argv, &fr) != 0) {
        fprintf(stderr,
                "usage: ocps-sasl-front --upstream IPV4:PORT --user NAME --password WORD [--port N]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fr.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 64) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
        perror("ocps-sasl-front");
        return 1;
    }
    fr.port = ntohs(a.sin_port);
    printf("BOOTSTRAP 127.0.0.1:%d\n", fr.port);
    fflush(stdout);
    struct stat st;
    pthread_t watcher;
    if (fstat(STDIN_FILENO, &st) == 0 && S_ISFIFO(st.st_mode) &&
        pthread_create(&watcher, NULL, watch_stdin, NULL) == 0) {
        pthread_detach(watcher);
    }
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            perror("ocps-sasl-front: accept");
            break;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        pthread_t t;
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fr = &fr;
        c->client = fd;
        c->upstream = -1;
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->room, NULL);
        if (pthread_create(&t, NULL, serve_client, c) != 0) {
            close(fd);
            pthread_mutex_destroy(&c->lock);
            pthread_cond_destroy(&c->room);
            free(c);
            continue;
        }
        pthread_detach(t);
    }
    close(lfd);
    return 0;
}
