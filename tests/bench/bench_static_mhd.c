/*
 * bench-static-mhd: the reference of bench_uws, a minimal static
 * libmicrohttpd responder: one thread polling with epoll (as ocps-engine
 * has one loop thread), every request answered with the same 1 KiB JSON
 * body, on the call after the headers (so keep-alive works, as in
 * ocps-engine). Any method; a body is read and dropped.
 *
 *   bench-static-mhd PORT_FILE    (listens on 127.0.0.1, a free port)
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

static char body[1024];

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    static int marker;
    if (*con_cls == NULL) {
        *con_cls = &marker;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench-static-mhd PORT_FILE\n");
        return 2;
    }
    memset(body, ' ', sizeof body - 2);
    memcpy(body, "{\"jobId\": \"0123456789abcdef0123456789abcdef\", \"phase\": \"completed\", \"pad\": \"",
           75);
    memcpy(body + sizeof body - 4, "\"}\n", 3);
    body[sizeof body - 1] = '\0';
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD, 0, NULL, NULL, on_request, NULL,
                                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    if (d == NULL) {
        return 1;
    }
    FILE *f = fopen(argv[1], "w");
    if (f == NULL) {
        return 1;
    }
    fprintf(f, "%u\n", MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port);
    fclose(f);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
