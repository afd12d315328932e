/* test_util.c - see test_util.h. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>

extern char **environ;

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 4096;
    size_t n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf != NULL && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf == NULL) {
        return NULL;
    }
    buf[n] = '\0';
    if (len != NULL) {
        *len = n;
    }
    return buf;
}

int tu_write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        return -1;
    }
    size_t put = fwrite(data, 1, len, f);
    int rc = fclose(f);
    return (put == len && rc == 0) ? 0 : -1;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int tu_list_files(const char *dir, const char *suffix, char ***names)
{
    DIR *d = opendir(dir);
    *names = NULL;
    if (d == NULL) {
        return -1;
    }
    int n = 0;
    int cap = 0;
    struct dirent *e;
    size_t slen = strlen(suffix);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < slen || strcmp(e->d_name + len - slen, suffix) != 0) {
            continue;
        }
        char *full = tu_path_join(dir, e->d_name);
        struct stat st;
        int regular = stat(full, &st) == 0 && S_ISREG(st.st_mode);
        free(full);
        if (!regular) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **bigger = realloc(*names, (size_t)cap * sizeof **names);
            if (bigger == NULL) {
                break;
            }
            *names = bigger;
        }
        (*names)[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n > 0) {
        qsort(*names, (size_t)n, sizeof **names, compare_names);
    }
    return n;
}

void tu_free_names(char **names, int n)
{
    for (int i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
}

int tu_run(char *const argv[], char **output)
{
    char tmpl[] = "/tmp/ocps-test-out-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        return -1;
    }
    unlink(tmpl);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, fd, STDERR_FILENO);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        close(fd);
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    if (output != NULL) {
        off_t size = lseek(fd, 0, SEEK_END);
        *output = malloc((size_t)size + 1);
        if (*output != NULL) {
            ssize_t got = pread(fd, *output, (size_t)size, 0);
            (*output)[got > 0 ? got : 0] = '\0';
        }
    }
    close(fd);
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    return 128 + WTERMSIG(status);
}

int tu_spawn(char *const argv[], const char *log_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (log_path != NULL) {
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? (int)pid : -1;
}

int tu_spawn_piped(char *const argv[], int *to_child, int *from_child)
{
    int in[2];
    int out[2];
    if (pipe(in) != 0) {
        return -1;
    }
    if (pipe(out) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    fcntl(in[1], F_SETFD, FD_CLOEXEC);
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
        close(in[1]);
        close(out[0]);
        return -1;
    }
    *to_child = in[1];
    *from_child = out[0];
    return (int)pid;
}

int tu_read_line(int fd, char *line, size_t len, double timeout)
{
    double end = tu_now() + timeout;
    size_t n = 0;
    while (n + 1 < len) {
        double left = end - tu_now();
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0) {
            return -1;
        }
        char c;
        if (read(fd, &c, 1) != 1) {
            return -1;
        }
        if (c == '\n') {
            break;
        }
        line[n++] = c;
    }
    line[n] = '\0';
    return 0;
}

double tu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int tu_faketime_start(const char *lib, int monotonic, char *offset_file, size_t len)
{
    const char *tmp = getenv("TMPDIR") != NULL && getenv("TMPDIR")[0] != '\0' ? getenv("TMPDIR") : "/tmp";
    snprintf(offset_file, len, "%s/ocps-clock-step-XXXXXX", tmp);
    int fd = mkstemp(offset_file);
    if (fd < 0) {
        return -1;
    }
    bool written = write(fd, "+0\n", 3) == 3;
    close(fd);
    if (!written) {
        unlink(offset_file);
        return -1;
    }
    const char *asan = getenv("ASAN_OPTIONS");
    char asan_options[512];
    snprintf(asan_options, sizeof asan_options, "%s%sverify_asan_link_order=0", asan ? asan : "",
             asan && asan[0] ? ":" : "");
    setenv("ASAN_OPTIONS", asan_options, 1); /* libfaketime ahead of a sanitizer's runtime */
    setenv("LD_PRELOAD", lib, 1);
    setenv("FAKETIME_TIMESTAMP_FILE", offset_file, 1);
    setenv("FAKETIME_NO_CACHE", "1", 1);
    if (monotonic) {
        unsetenv("DONT_FAKE_MONOTONIC");
    } else {
        setenv("DONT_FAKE_MONOTONIC", "1", 1);
    }
    return 0;
}

void tu_faketime_stop(void)
{
    unsetenv("LD_PRELOAD");
    unsetenv("FAKETIME_TIMESTAMP_FILE");
    unsetenv("FAKETIME_NO_CACHE");
    unsetenv("DONT_FAKE_MONOTONIC");
}

double tu_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

int tu_wait_exit(int pid, double timeout)
{
    double end = tu_now() + timeout;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (r < 0 || tu_now() > end) {
            return -1;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void tu_kill(int pid)
{
    if (pid > 0 && kill(pid, SIGKILL) == 0) {
        waitpid(pid, NULL, 0);
    }
}

char *tu_make_temp_dir(void)
{
    char tmpl[] = "/tmp/ocps-test-XXXXXX";
    if (mkdtemp(tmpl) == NULL) {
        return NULL;
    }
    return strdup(tmpl);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

char *tu_make_ocps_config(void)
{
    char *root = tu_make_temp_dir();
    if (root == NULL) {
        return NULL;
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/OCPS", root);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/OCPS/v4", root);
    mkdir(dir, 0755);
    static const char init[] = "instances:\n  - sal_index: 1\n    instance: LATISS\n"
                               "    url: http://uws-server/api/v1\n    poll_interval: 0.5\n"
                               "    butler: LATISS\n    input_collection: LATISS/raw/all\n"
                               "    output_glob: '*.fits'\n";
    char *p = tu_path_join(dir, "_init.yaml");
    int rc = tu_write_file(p, init, strlen(init));
    free(p);
    if (rc != 0) {
        tu_remove_tree(root);
        free(root);
        return NULL;
    }
    return root;
}

int tu_write_ocps_site(const char *root, const char *site_yaml)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/OCPS/v4/_test.yaml", root);
    return tu_write_file(path, site_yaml, strlen(site_yaml));
}

long tu_registry_subjects(const char *url)
{
    char u[512];
    snprintf(u, sizeof u, "%s/subjects", url);
    char *argv[] = {"curl", "-sf", u, NULL};
    char *out = NULL;
    long n = -1;
    if (tu_run(argv, &out) == 0) {
        json_t *list = json_loads(out, 0, NULL);
        n = json_is_array(list) ? (long)json_array_size(list) : -1;
        json_decref(list);
    }
    free(out);
    return n;
}

/* Bind 127.0.0.1:port (0: one the kernel picks) and release it: the
 * port bound, or 0 if it could not be. */
static unsigned bind_release(unsigned port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    unsigned bound = 0;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0) {
        bound = ntohs(a.sin_port);
    }
    if (s >= 0) {
        close(s);
    }
    return bound;
}

/* The kernel's range of ephemeral ports (those connect() picks), or
 * false. */
static bool ephemeral_range(unsigned *lo, unsigned *hi)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    bool ok = f != NULL && fscanf(f, "%u %u", lo, hi) == 2 && *lo <= *hi && *hi <= 65535;
    if (f != NULL) {
        fclose(f);
    }
    return ok;
}

unsigned tu_free_port(void)
{
    /* Below the ephemeral range (outside it, if it starts low): a port
     * connect() never picks, so that no other test's outgoing connection
     * takes it between now and the server's bind; random, so that tests
     * running side by side pick different ones. */
    unsigned lo = 0, hi = 0;
    unsigned from = 0, to = 0;
    if (ephemeral_range(&lo, &hi) && lo > 12000) {
        from = 10000;
        to = lo - 1;
    } else if (hi > 0 && hi < 63000) {
        from = hi + 1;
        to = 65000;
    }
    unsigned seed = (unsigned)getpid() ^ (unsigned)(tu_now() * 1e6);
    for (int i = 0; from > 0 && i < 100; i++) {
        unsigned port = from + (unsigned)rand_r(&seed) % (to - from + 1);
        if (bind_release(port) == port) {
            return port;
        }
    }
    return bind_release(0); /* else any the kernel gives */
}
