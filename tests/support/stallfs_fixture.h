/*
 * stallfs_fixture.h - a directory that hangs like an NFS mount whose server
 * stopped answering: the stallfs pass-through file system (stallfs.c) over
 * a temporary backing directory, mounted for one test, stalled and
 * released at will. While stalled, every call on a path under the mount
 * (or on one containing a given name) blocks in the kernel until
 * sfx_unstall.
 *
 * The stallfs process gets SIGTERM when the thread that started it ends
 * (PR_SET_PDEATHSIG), and unmounts then: a test that crashes or is killed
 * leaves no mount behind. Call sfx_start and sfx_stop from the same thread.
 */
#ifndef STALLFS_FIXTURE_H
#define STALLFS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

/* sfx_start's answer when this host cannot mount FUSE (the test skips). */
#define SFX_UNAVAILABLE 77

typedef struct stallfs_fx {
    int pid;           /* the stallfs process, -1 when not running */
    int releaser;      /* sfx_stall_for's process, -1 when none */
    char *dir;         /* temporary: backing/, mnt/, stall (the control file) */
    char backing[600]; /* where the files really are */
    char mount[600];   /* the mount point: use paths under it */
    char control[600]; /* exists while the mount is stalled */
} stallfs_fx;

/* Mount stallfs (the binary at `stallfs`) on a fresh temporary directory
 * and wait until the mount is in /proc/self/mounts. 0 on success;
 * SFX_UNAVAILABLE, with the reason in err, when /dev/fuse cannot be
 * opened or mounting fails; -1 on any other error. s is initialised
 * here; call sfx_stop whatever the answer. */
int sfx_start(stallfs_fx *s, const char *stallfs, char *err, size_t errlen);

/* Whether this host cannot mount stallfs (a test's main then exits
 * SFX_UNAVAILABLE, the skip): tried once, the reason printed as
 * "# skipped: ..." when it cannot. */
bool sfx_unavailable(const char *stallfs);

/* Stall the mount: calls under it block from now until sfx_unstall. */
int sfx_stall(stallfs_fx *s);

/* Stall only the calls on paths under the mount that contain `name`
 * (1 to NAME_MAX bytes), e.g. a file a later step of the code under test
 * looks at, until sfx_unstall; others are answered. 0 or -1. */
int sfx_stall_paths(stallfs_fx *s, const char *name);

/* sfx_stall, released by a helper process after `seconds` even if the
 * test's own thread is then blocked on the mount (no deadlock when the
 * code under test blocks). sfx_unstall may still release it earlier. */
int sfx_stall_for(stallfs_fx *s, double seconds);

/* Release the stall: blocked calls go on. */
void sfx_unstall(stallfs_fx *s);

/* Is the mount stalled now? */
bool sfx_stalled(const stallfs_fx *s);

/* Unstall, unmount (lazily: processes still inside get ENOTCONN), stop
 * stallfs and remove the temporary directory. Safe on a fixture whose
 * sfx_start failed, and twice. */
void sfx_stop(stallfs_fx *s);

/* SIGTERM process pid (a child of this one), which may be waiting for the
 * stalled mount, and wait up to `within` s for it to exit; says how it
 * went on stdout. Its exit status, or -1 if it did not exit in time (then
 * the stall is ended and it is reaped). *stalled: whether the mount was
 * still stalled when it had exited. */
int sfx_sigterm_wait(stallfs_fx *s, int pid, double within, bool *stalled);

#endif
