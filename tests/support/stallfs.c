/*
 * stallfs - a FUSE 3 pass-through file system that hangs like an NFS mount
 * whose server stopped answering, for tests.
 *
 *   stallfs BACKING_DIR MOUNTPOINT CONTROL_FILE
 *
 * Every operation on MOUNTPOINT is done on BACKING_DIR; but while
 * CONTROL_FILE (a path outside the mount) exists, each operation waits,
 * looking again every 20 ms, until it is removed: the caller stays blocked
 * in the kernel, as it does on a hung NFS mount. If CONTROL_FILE holds a
 * name, only operations on paths containing it wait (a part of the mount
 * that hangs: a later step of the code under test, not its first). As on a hard NFS mount,
 * only a fatal signal (SIGKILL, or the process's exit) ends the wait of a
 * caller (the call fails with EINTR); other signals do not. Runs in the foreground,
 * multi-threaded (an operation that waits does not hold up the others'
 * threads); SIGTERM or SIGINT unmounts and ends it. The kernel caches no
 * names or attributes (timeouts 0), so that every call reaches us.
 * tests/support/stallfs_fixture.h starts and stops it for a test.
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <fuse.h>

/* What every operation needs: where the files are, and the control file. */
typedef struct stallfs {
    char backing[PATH_MAX];
    char control[PATH_MAX];
} stallfs;

static stallfs *sfs(void)
{
    return fuse_get_context()->private_data;
}

/* Whether thread `tid` has SIGKILL pending (it is being killed, or its
 * process is exiting: exit_group sends it to every other thread). */
static int sfs_caller_killed(pid_t tid)
{
    char path[64];
    char line[256];
    int killed = 0;
    snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 1; /* gone */
    }
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long long mask;
        if ((sscanf(line, "SigPnd: %llx", &mask) == 1 || sscanf(line, "ShdPnd: %llx", &mask) == 1) &&
            (mask & (1ULL << (SIGKILL - 1))) != 0) {
            killed = 1;
        }
    }
    fclose(f);
    return killed;
}

/* Does the control file stall `path` (NULL: a path not known)? It
 * does while it exists, empty, or holding a name that path contains. */
static int stalls(const char *path)
{
    FILE *f = fopen(sfs()->control, "re");
    if (f == NULL) {
        return 0;
    }
    char name[NAME_MAX + 2] = "";
    size_t n = fread(name, 1, NAME_MAX + 1, f);
    fclose(f);
    name[n] = '\0';
    return n == 0 || (path != NULL && strstr(path, name) != NULL);
}

/* Wait while the control file stalls `path` (the "server" does not
 * answer); 0, or -EINTR once the caller was interrupted by a fatal signal
 * (the kernel sent an interrupt and is waiting for this answer). */
static int wait_while_stalled(const char *path)
{
    const struct timespec step = {0, 20 * 1000 * 1000};
    while (stalls(path)) {
        if (fuse_interrupted() && sfs_caller_killed(fuse_get_context()->pid)) {
            return -EINTR;
        }
        nanosleep(&step, NULL);
    }
    return 0;
}

/* The backing path of `path` (which starts with '/'), after any stall;
 * 0 or -ENAMETOOLONG. */
static int backing_path(const char *path, char out[PATH_MAX])
{
    int rc = wait_while_stalled(path);
    if (rc != 0) {
        return rc;
    }
    int n = snprintf(out, PATH_MAX, "%s%s", sfs()->backing, path);
    return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* 0, or -errno when rc (a system call's result) is -1. */
static int result(int rc)
{
    return rc == -1 ? -errno : 0;
}

static void *sfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    cfg->use_ino = 1;
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->hard_remove = 1; /* unlink open files, no .fuse_hidden renames */
    return sfs();
}

static int sfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    char p[PATH_MAX];
    int rc = backing_path(path, p);
    if (rc != 0) {
        return rc;
    }
    return result(fi != NULL ? fstat((int)fi->fh, st) : lstat(p, st));
}

static int sfs_access(const char *path, int mask)
{
    char p[PATH_MAX];
    int rc = backing_path(path, p);
    return rc != 0 ? rc : result(access(p, mask));
}

static int sfs_readlink(const char *path, char *buf, size_t size)
{
    char p[PATH_MAX];
    int rc = backing_path(path, p);
    if (rc != 0) {
        return rc;
    }
    if (size == 0) {
        return -EINVAL;
    }
    ssize_t n = readlink(p, buf, size - 1);
    if (n == -1) {
        return -errno;
    }
    buf[n] = '\0';
    return 0;
}

static int sfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)off;
    (void)fi;
    (void)flags;
    char p[PATH_MAX];
    int rc = backing_path(path, p);
    if (rc != 0) {
        return rc;
    }
    DIR *d = opendir(p);
    if (d == NULL) {
        return -errno;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st = {.st_ino = de->d_ino, .st_mode = (mode_t)DTTOIF(de->d_type)};
        if (fill(buf, de->d_name, &st, 0, 0) != 0) {
            break;
        }
    }
    closedir(d);
    return 0;
}

static int sfs_mkdir(const char *path, mode_t mode)
{
    char p[PATH_MAX];
    int rc = backing_path(path, p);
    return rc != 0 ? rc : result(mkdir(p, mode));
}

static int sfs_rmdir(const char *path)
{
    char p[PATH_MAX];
    int rc = backing_path(path, p);
    return rc != 0 ? rc : result(rmdir(p));
}

static int sfs_unlink(const char *path)
{
    char p[PATH_MAX];
    int rc = backing_path(path, p);
    return rc != 0 ? rc : result(unlink(p));
}

static int sfs_symlink(const char *target, const char *path)
{
    char p[PATH_MAX];
    int rc = backing_path(path, p);
    return rc != 0 ? rc : result(symlink(target, p));
}

/* Both backing paths of a two-path operation (one stall). */
static int backing_paths(const char *from, const char *to, char pf[PATH_MAX], char pt[PATH_MAX])
{
    int rc = backing_path(from, pf);
    if (rc == 0) {
        int n = snprintf(pt, PATH_MAX, "%s%s", sfs()->backing, to);
        rc = n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
    }
    return rc;
}

static int sfs_rename(const char *from, const char *to, unsigned int flags)
{
    char pf[PATH_MAX];
    char pt[PATH_MAX];
    int rc = backing_paths(from, to, pf, pt);
    if (rc != 0) {
        return rc;
    }
    if (flags != 0) {
        return -EINVAL;
    }
    return result(rename(pf, pt));
}

static int sfs_link(const char *from, const char *to)
{
    char pf[PATH_MAX];
    char pt[PATH_MAX];
    int rc = backing_paths(from, to, pf, pt);
    return rc != 0 ? rc : result(link(pf, pt));
}

static int sfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    char p[PATH_MAX];
    int rc = backing_path(path, p);
    if (rc != 0) {
        return rc;
    }
    return result(fi != NULL ? fchmod((int)fi->fh, mode) : chmod(p, mode));
}

static int sfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    char p[PATH_MAX];
    int rc = backing_path(path, p);
    if (rc != 0) {
        return rc;
    }
    return result(fi != NULL ? fchown((int)fi->fh, uid, gid) : lchown(p, uid, gid));
}

static int sfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    char p[PATH_MAX];
    int rc = backing_path(path, p);
    if (rc != 0) {
        return rc;
    }
    return result(fi != NULL ? ftruncate((int)fi->fh, size) : truncate(p, size));
}

static int sfs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    char p[PATH_MAX];
    int rc = backing_path(path, p);
    if (rc != 0) {
        return rc;
    }
    if (fi != NULL) {
        return result(futimens((int)fi->fh, tv));
    }
    return result(utimensat(AT_FDCWD, p, tv, AT_SYMLINK_NOFOLLOW));
}

static int sfs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    char p[PATH_MAX];
    int rc = backing_path(path, p);
    if (rc != 0) {
        return rc;
    }
    int fd = open(p, fi->flags | O_CLOEXEC, mode);
    if (fd == -1) {
        return -errno;
    }
    fi->fh = (uint64_t)fd;
    return 0;
}

static int sfs_open(const char *path, struct fuse_file_info *fi)
{
    char p[PATH_MAX];
    int rc = backing_path(path, p);
    if (rc != 0) {
        return rc;
    }
    int fd = open(p, fi->flags | O_CLOEXEC);
    if (fd == -1) {
        return -errno;
    }
    fi->fh = (uint64_t)fd;
    return 0;
}

static int sfs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    int rc = wait_while_stalled(path);
    if (rc != 0) {
        return rc;
    }
    ssize_t n = pread((int)fi->fh, buf, size, off);
    return n == -1 ? -errno : (int)n;
}

static int sfs_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    int rc = wait_while_stalled(path);
    if (rc != 0) {
        return rc;
    }
    ssize_t n = pwrite((int)fi->fh, buf, size, off);
    return n == -1 ? -errno : (int)n;
}

static int sfs_statfs(const char *path, struct statvfs *st)
{
    char p[PATH_MAX];
    int rc = backing_path(path, p);
    return rc != 0 ? rc : result(statvfs(p, st));
}

static int sfs_flush(const char *path, struct fuse_file_info *fi)
{
    (void)fi;
    int rc = wait_while_stalled(path);
    if (rc != 0) {
        return rc;
    }
    return 0;
}

static int sfs_release(const char *path, struct fuse_file_info *fi)
{
    (void)wait_while_stalled(path); /* nobody waits for a release */
    close((int)fi->fh);
    return 0;
}

static int sfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    int rc = wait_while_stalled(path);
    if (rc != 0) {
        return rc;
    }
    return result(datasync != 0 ? fdatasync((int)fi->fh) : fsync((int)fi->fh));
}

static const struct fuse_operations sfs_ops = {
    .init = sfs_init,
    .getattr = sfs_getattr,
    .access = sfs_access,
    .readlink = sfs_readlink,
    .readdir = sfs_readdir,
    .mkdir = sfs_mkdir,
    .rmdir = sfs_rmdir,
    .unlink = sfs_unlink,
    .symlink = sfs_symlink,
    .rename = sfs_rename,
    .link = sfs_link,
    .chmod = sfs_chmod,
    .chown = sfs_chown,
    .truncate = sfs_truncate,
    .utimens = sfs_utimens,
    .create = sfs_create,
    .open = sfs_open,
    .read = sfs_read,
    .write = sfs_write,
    .statfs = sfs_statfs,
    .flush = sfs_flush,
    .release = sfs_release,
    .fsync = sfs_fsync,
};

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s BACKING_DIR MOUNTPOINT CONTROL_FILE\n", argv[0]);
        return 2;
    }
    static stallfs fs; /* the file system's state, handed to fuse_main */
    if (realpath(argv[1], fs.backing) == NULL) {
        fprintf(stderr, "stallfs: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    int n = snprintf(fs.control, sizeof fs.control, "%s", argv[3]);
    if (n < 0 || (size_t)n >= sizeof fs.control || argv[3][0] != '/') {
        fprintf(stderr, "stallfs: CONTROL_FILE must be an absolute path shorter than %d\n", PATH_MAX);
        return 1;
    }
    char *fargv[] = {argv[0], "-f", "-o", "fsname=stallfs,subtype=stallfs", argv[2], NULL};
    return fuse_main(5, fargv, &sfs_ops, &fs);
}
