/* stallfs_fixture.c - see stallfs_fixture.h. */
#include "stallfs_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

/* How long the mount may take to appear. */
#define SFX_MOUNT_TIMEOUT 10.0

static void sfx_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* Undo /proc/self/mounts' octal escapes (\040 for a space) in place. */
static void unescape_octal(char *s)
{
    char *out = s;
    for (const char *in = s; *in != '\0'; out++) {
        if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' && in[3] >= '0' &&
            in[3] <= '7') {
            *out = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
            in += 4;
        } else {
            *out = *in++;
        }
    }
    *out = '\0';
}

/* Is a file system mounted on `path` (exactly) in /proc/self/mounts? */
static bool is_mounted(const char *path)
{
    FILE *f = fopen("/proc/self/mounts", "r");
    if (f == NULL) {
        return false;
    }
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        char *save = NULL;
        strtok_r(line, " ", &save);
        char *target = strtok_r(NULL, " ", &save);
        if (target != NULL) {
            unescape_octal(target);
            found = strcmp(target, path) == 0;
        }
    }
    fclose(f);
    return found;
}

/* The last part of stallfs's log, for a message. */
static void log_tail(const stallfs_fx *s, char *out, size_t len)
{
    char path[700];
    snprintf(path, sizeof path, "%s/stallfs.log", s->dir);
    size_t n = 0;
    char *text = tu_read_file(path, &n);
    const char *tail = text != NULL ? text : "";
    if (n > 300) {
        tail = text + n - 300;
    }
    snprintf(out, len, "%s", tail);
    size_t m = strlen(out);
    while (m > 0 && (out[m - 1] == '\n' || out[m - 1] == '\r')) {
        out[--m] = '\0';
    }
    free(text);
}

/* Fork and exec stallfs, its output into dir/stallfs.log; SIGTERM to it
 * when this thread ends. The pid, or -1. */
static int spawn_stallfs(const stallfs_fx *s, const char *stallfs)
{
    char log[700];
    snprintf(log, sizeof log, "%s/stallfs.log", s->dir);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) {
        return pid > 0 ? (int)pid : -1;
    }
    /* the child: async-signal-safe calls only until exec */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) {
        _exit(127);
    }
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
    char *argv[] = {(char *)stallfs, (char *)s->backing, (char *)s->mount, (char *)s->control, NULL};
    execv(stallfs, argv);
    _exit(127);
}

/* Make the temporary directory and its paths; 0 or -1. */
static int make_dirs(stallfs_fx *s, char *err, size_t errlen)
{
    s->dir = tu_make_temp_dir();
    if (s->dir == NULL) {
        snprintf(err, errlen, "cannot make a temporary directory: %s", strerror(errno));
        return -1;
    }
    char resolved[PATH_MAX];
    if (realpath(s->dir, resolved) == NULL) {
        snprintf(err, errlen, "%s: %s", s->dir, strerror(errno));
        return -1;
    }
    int n1 = snprintf(s->backing, sizeof s->backing, "%s/backing", resolved);
    int n2 = snprintf(s->mount, sizeof s->mount, "%s/mnt", resolved);
    int n3 = snprintf(s->control, sizeof s->control, "%s/stall", resolved);
    if (n1 < 0 || n2 < 0 || n3 < 0 || (size_t)n1 >= sizeof s->backing || (size_t)n2 >= sizeof s->mount ||
        (size_t)n3 >= sizeof s->control) {
        snprintf(err, errlen, "temporary directory path too long");
        return -1;
    }
    if (mkdir(s->backing, 0755) != 0 || mkdir(s->mount, 0755) != 0) {
        snprintf(err, errlen, "mkdir in %s: %s", s->dir, strerror(errno));
        return -1;
    }
    return 0;
}

int sfx_start(stallfs_fx *s, const char *stallfs, char *err, size_t errlen)
{
    *s = (stallfs_fx){.pid = -1, .releaser = -1};
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "FUSE unavailable: /dev/fuse: %s", strerror(errno));
        return SFX_UNAVAILABLE;
    }
    close(fd);
    if (make_dirs(s, err, errlen) != 0) {
        return -1;
    }
    s->pid = spawn_stallfs(s, stallfs);
    if (s->pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    double end = tu_now() + SFX_MOUNT_TIMEOUT;
    while (!is_mounted(s->mount)) {
        int status = tu_wait_exit(s->pid, 0);
        if (status >= 0) {
            char tail[400];
            log_tail(s, tail, sizeof tail);
            s->pid = -1;
            snprintf(err, errlen, "FUSE mount unavailable: stallfs exited (status %d): %s", status, tail);
            return status == 127 ? -1 : SFX_UNAVAILABLE;
        }
        if (tu_now() > end) {
            snprintf(err, errlen, "stallfs did not mount %s within %.0f s", s->mount, SFX_MOUNT_TIMEOUT);
            return -1;
        }
        sfx_sleep_ms(10);
    }
    return 0;
}

int sfx_stall(stallfs_fx *s)
{
    int fd = open(s->control, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -1;
    }
    close(fd);
    return 0;
}

int sfx_stall_paths(stallfs_fx *s, const char *name)
{
    size_t len = strlen(name);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp", s->control);
    if (len == 0 || len > NAME_MAX || tu_write_file(tmp, name, len) != 0) {
        return -1;
    }
    return rename(tmp, s->control); /* whole: stallfs never reads it half written */
}

int sfx_stall_for(stallfs_fx *s, double seconds)
{
    if (s->releaser > 0 || sfx_stall(s) != 0) {
        return -1;
    }
    struct timespec delay = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    pid_t pid = fork();
    if (pid == 0) {
        nanosleep(&delay, NULL);
        unlink(s->control);
        _exit(0);
    }
    if (pid < 0) {
        sfx_unstall(s);
        return -1;
    }
    s->releaser = (int)pid;
    return 0;
}

void sfx_unstall(stallfs_fx *s)
{
    if (s->dir == NULL) {
        return;
    }
    unlink(s->control);
    if (s->releaser > 0) {
        tu_kill(s->releaser);
        s->releaser = -1;
    }
}

bool sfx_stalled(const stallfs_fx *s)
{
    return s->dir != NULL && access(s->control, F_OK) == 0;
}

/* Detach the mount: umount2 (lazy) as root, else fusermount3 -u -z. */
static void unmount_lazily(const stallfs_fx *s)
{
    if (!is_mounted(s->mount)) {
        return;
    }
    if (umount2(s->mount, MNT_DETACH) == 0) {
        return;
    }
    char *argv[] = {"fusermount3", "-u", "-z", (char *)s->mount, NULL};
    int pid = tu_spawn(argv, NULL);
    if (pid > 0 && tu_wait_exit(pid, 10) < 0) {
        tu_kill(pid);
    }
}

void sfx_stop(stallfs_fx *s)
{
    if (s->dir == NULL) {
        return;
    }
    sfx_unstall(s);
    unmount_lazily(s);
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        if (tu_wait_exit(s->pid, 5) < 0) {
            tu_kill(s->pid);
        }
        s->pid = -1;
    }
    if (is_mounted(s->mount)) {
        /* never remove files through a mount still there */
        fprintf(stderr, "stallfs_fixture: %s still mounted; left in place\n", s->mount);
    } else {
        tu_remove_tree(s->dir);
    }
    free(s->dir);
    s->dir = NULL;
}

bool sfx_unavailable(const char *stallfs)
{
    stallfs_fx probe;
    char err[512];
    int rc = sfx_start(&probe, stallfs, err, sizeof err);
    sfx_stop(&probe);
    if (rc == SFX_UNAVAILABLE) {
        printf("# skipped: %s\n", err);
    }
    return rc == SFX_UNAVAILABLE;
}

int sfx_sigterm_wait(stallfs_fx *s, int pid, double within, bool *stalled)
{
    double t0 = tu_now();
    if (kill(pid, SIGTERM) != 0) {
        *stalled = false;
        return -1;
    }
    int status = tu_wait_exit(pid, within);
    double took = tu_now() - t0;
    *stalled = sfx_stalled(s);
    printf("# SIGTERM while the mount hung: exit status %d after %.2f s%s\n", status, took,
           *stalled ? "" : " (the stall had ended by itself)");
    if (status < 0) {
        sfx_unstall(s);
        tu_wait_exit(pid, 30);
    }
    return status;
}
