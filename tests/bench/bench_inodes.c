/*
 * bench_inodes: the cost of a job directory's inodes on this machine's
 * file system (docs/performance.md, "Jobs on the local engine"). In a
 * temporary directory under /tmp (or argv[3]) it makes two parents, one
 * plain and one marked FS_TOPDIR_FL as the engine marks work_root, then,
 * alternating between them (the order swapped every pair), makes DIRS
 * directories with 7 empty files each (8 inodes, as a trivial job) and
 * prints the CPU time (getrusage) per directory and the ratio of the two.
 * The tree is removed at the end.
 *
 *   build/tests/bench/bench_inodes [PAIRS [DIRS [PARENT]]]   # 6 300 /tmp
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

/* DIRS directories of 7 files each, directly in parent (as job
 * directories in work_root), named after the pair; CPU µs per directory. */
static double make_dirs(const char *parent, int pair, int dirs)
{
    char path[4096];
    double c0 = tu_cpu_seconds();
    for (int i = 0; i < dirs; i++) {
        snprintf(path, sizeof path, "%s/%d-%d", parent, pair, i);
        mkdir(path, 0755);
        for (int f = 0; f < 7; f++) {
            snprintf(path, sizeof path, "%s/%d-%d/f%d", parent, pair, i, f);
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (fd >= 0) {
                close(fd);
            }
        }
    }
    return (tu_cpu_seconds() - c0) / dirs * 1e6;
}

int main(int argc, char **argv)
{
    int pairs = argc > 1 && atoi(argv[1]) > 0 ? atoi(argv[1]) : 6;
    int dirs = argc > 2 && atoi(argv[2]) > 0 ? atoi(argv[2]) : 300;
    char root[4096];
    snprintf(root, sizeof root, "%s/bench-inodes-XXXXXX", argc > 3 ? argv[3] : "/tmp");
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char plain[4200];
    char top[4200];
    snprintf(plain, sizeof plain, "%s/plain", root);
    snprintf(top, sizeof top, "%s/top", root);
    mkdir(plain, 0755);
    mkdir(top, 0755);
    int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int flags = 0;
    if (fd < 0 || ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0 ||
        ioctl(fd, FS_IOC_SETFLAGS, &(int){flags | FS_TOPDIR_FL}) != 0) {
        printf("cannot set FS_TOPDIR_FL on %s: this file system has no such flag\n", top);
    }
    if (fd >= 0) {
        close(fd);
    }
    printf("%d directories of 8 inodes each, CPU us per directory (plain parent, FS_TOPDIR_FL parent):\n",
           dirs);
    for (int i = 0; i < pairs; i++) {
        double p;
        double t;
        if (i % 2 == 0) {
            p = make_dirs(plain, i, dirs);
            t = make_dirs(top, i, dirs);
        } else {
            t = make_dirs(top, i, dirs);
            p = make_dirs(plain, i, dirs);
        }
        printf("  pair %d: plain %.1f us, topdir %.1f us, ratio topdir/plain %.2f\n", i + 1, p, t, t / p);
    }
    tu_remove_tree(root);
    return 0;
}
