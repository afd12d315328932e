/*
 * butler_claim.c - claiming a RUN collection for one writer
 * (butler_claim_run): the claim records its owner (host, boot id, pid
 * namespace, pid and start time), so that a claim left behind by a writer
 * that was killed can be taken over, and one whose owner is alive, or
 * cannot be checked from here, is refused naming it (butler.h).
 */
#include "butler__internal.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ocps/sal_procstat.h"

/* Directories below a run's directory that a takeover looks into. */
#define BL_MAX_LEFTOVER_DEPTH 32

/* What can be said of a claim's owner from this process. */
typedef enum bl_owner_state {
    BL_OWNER_ALIVE,   /* still running */
    BL_OWNER_DEAD,    /* certainly not running any more */
    BL_OWNER_UNKNOWN, /* cannot be checked from here */
} bl_owner_state;

/* Read the first line of a small file into out (without its newline); ""
 * if unreadable. */
static void bl_read_line(const char *path, char *out, size_t outlen)
{
    out[0] = '\0';
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return;
    }
    if (fgets(out, (int)outlen, f) == NULL) {
        out[0] = '\0';
    }
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
}

void butler_run_owner_self(butler_run_owner *o)
{
    memset(o, 0, sizeof *o);
    if (gethostname(o->host, sizeof o->host - 1) != 0) {
        o->host[0] = '\0';
    }
    bl_read_line("/proc/sys/kernel/random/boot_id", o->boot_id, sizeof o->boot_id);
    ssize_t n = readlink("/proc/self/ns/pid", o->pid_ns, sizeof o->pid_ns - 1);
    o->pid_ns[n > 0 ? n : 0] = '\0';
    o->pid = (long long)getpid();
    sal_procstat ps;
    o->start_time = sal_procstat_read(o->pid, &ps) == 0 ? ps.start : 0;
}

/* Whether the process on this host, boot and pid namespace that o names
 * is alive; why[] says what was found. */
static bl_owner_state bl_local_owner_state(const butler_run_owner *o, char *why, size_t whylen)
{
    if (kill((pid_t)o->pid, 0) != 0 && errno == ESRCH) {
        snprintf(why, whylen, "which is no longer running");
        return BL_OWNER_DEAD;
    }
    sal_procstat ps;
    if (sal_procstat_read(o->pid, &ps) != 0) {
        int e = errno;
        if (e == ENOENT || e == ESRCH) {
            snprintf(why, whylen, "which is no longer running");
            return BL_OWNER_DEAD;
        }
        snprintf(why, whylen, "whose /proc entry cannot be read (%s)", strerror(e));
        return BL_OWNER_UNKNOWN;
    }
    if (ps.start != o->start_time) {
        snprintf(why, whylen, "which is no longer running (pid %lld is now another process)", o->pid);
        return BL_OWNER_DEAD;
    }
    if (ps.state == 'Z' || ps.state == 'X') {
        snprintf(why, whylen, "which has exited");
        return BL_OWNER_DEAD;
    }
    snprintf(why, whylen, "which is still running");
    return BL_OWNER_ALIVE;
}

/* Whether the claim's owner o is alive, judged by this process (self). */
static bl_owner_state bl_owner_state_of(const butler_run_owner *o, const butler_run_owner *self, char *why,
                                        size_t whylen)
{
    if (o->host[0] == '\0' || strcmp(o->host, self->host) != 0) {
        snprintf(why, whylen, "another host: whether it is still running cannot be checked from here");
        return BL_OWNER_UNKNOWN;
    }
    if (o->boot_id[0] == '\0' || self->boot_id[0] == '\0') {
        snprintf(why, whylen, "whose boot id is unknown: whether it is still running cannot be checked");
        return BL_OWNER_UNKNOWN;
    }
    if (strcmp(o->boot_id, self->boot_id) != 0) {
        /* this host restarted since, or another machine of the same name
         * (cloned VMs, containers given one hostname): not certain */
        snprintf(why, whylen,
                 "on another boot of a host of this name (this host restarted since, or another machine of "
                 "the same name): whether it is still running cannot be checked from here");
        return BL_OWNER_UNKNOWN;
    }
    if (o->pid_ns[0] == '\0' || strcmp(o->pid_ns, self->pid_ns) != 0) {
        snprintf(why, whylen,
                 "in another pid namespace (container) of this host: whether it is still running cannot be "
                 "checked from here");
        return BL_OWNER_UNKNOWN;
    }
    if (o->pid <= 0 || o->start_time == 0) {
        snprintf(why, whylen, "whose start time is unknown: whether it is still running cannot be checked");
        return BL_OWNER_UNKNOWN;
    }
    return bl_local_owner_state(o, why, whylen);
}

/* The owner recorded for run id: 1 if there is one, 0 if none, -1 on error. */
static int bl_load_owner(butler_repo *repo, long long id, butler_run_owner *o, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (bl_prepare(repo, "SELECT host, boot_id, pid_ns, pid, start_time FROM run_claim WHERE run = ?", &st,
                   err, errlen) != 0) {
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return bl_step_error(repo, st, err, errlen);
    }
    if (rc == SQLITE_ROW) {
        memset(o, 0, sizeof *o);
        snprintf(o->host, sizeof o->host, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(o->boot_id, sizeof o->boot_id, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(o->pid_ns, sizeof o->pid_ns, "%s", (const char *)sqlite3_column_text(st, 2));
        o->pid = sqlite3_column_int64(st, 3);
        o->start_time = (unsigned long long)sqlite3_column_int64(st, 4);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW;
}

/* Record o as the owner of run id (replacing an earlier owner). */
static int bl_store_owner(butler_repo *repo, long long id, const butler_run_owner *o, char *err,
                          size_t errlen)
{
    sqlite3_stmt *st;
    if (bl_prepare(repo,
                   "INSERT OR REPLACE INTO run_claim (run, host, boot_id, pid_ns, pid, start_time)"
                   " VALUES (?, ?, ?, ?, ?, ?)",
                   &st, err, errlen) != 0) {
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, o->host, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, o->boot_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, o->pid_ns, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, o->pid);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)o->start_time);
    if (sqlite3_step(st) != SQLITE_DONE) {
        return bl_step_error(repo, st, err, errlen);
    }
    sqlite3_finalize(st);
    return 0;
}

/* How many datasets run id holds, or -1 on error. */
static long long bl_count_datasets(butler_repo *repo, long long id, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (bl_prepare(repo, "SELECT count(*) FROM dataset WHERE run = ?", &st, err, errlen) != 0) {
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        return bl_step_error(repo, st, err, errlen);
    }
    long long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* The existing collection id (of type) named name: taken over (0) when it
 * is an empty RUN whose recorded owner is certainly dead, else refused (1)
 * with info->reason; -1 on error. Inside the claim's transaction. */
static int bl_take_over_in_txn(butler_repo *repo, long long id, const char *type,
                               const butler_run_owner *self, butler_claim_info *info, char *err,
                               size_t errlen)
{
    if (strcmp(type, "RUN") != 0) {
        snprintf(info->reason, sizeof info->reason, "it is a %s collection", type);
        return 1;
    }
    long long n = bl_count_datasets(repo, id, err, errlen);
    if (n != 0) {
        snprintf(info->reason, sizeof info->reason, "it holds %lld dataset%s", n, n == 1 ? "" : "s");
        return n < 0 ? -1 : 1;
    }
    int has = bl_load_owner(repo, id, &info->owner, err, errlen);
    if (has <= 0) {
        snprintf(info->reason, sizeof info->reason,
                 "it is empty and has no owner recorded (claimed by a writer that did not record one)");
        return has < 0 ? -1 : 1;
    }
    info->has_owner = true;
    char why[200];
    bl_owner_state state = bl_owner_state_of(&info->owner, self, why, sizeof why);
    snprintf(info->reason, sizeof info->reason, "it is claimed by pid %lld on host %s, %s", info->owner.pid,
             info->owner.host, why);
    if (state != BL_OWNER_DEAD) {
        return 1;
    }
    info->taken_over = true;
    return bl_store_owner(repo, id, self, err, errlen);
}

/* The claim's transaction: 0 claimed, 1 refused, -1 on error. */
static int bl_claim_in_txn(butler_repo *repo, const char *name, const butler_run_owner *self,
                           butler_claim_info *info, char *err, size_t errlen)
{
    /* a repository made before claims had owners gets the table here */
    if (bl_exec(repo,
                BL_RUN_CLAIM_SCHEMA
                "UPDATE butler_meta SET value = '2' WHERE key = 'schema_version' AND value = '1';",
                err, errlen) != 0) {
        return -1;
    }
    long long id;
    char type[8];
    int found = bl_find_collection(repo, name, &id, type, err, errlen);
    if (found < 0) {
        return -1;
    }
    if (found > 0) {
        return bl_take_over_in_txn(repo, id, type, self, info, err, errlen);
    }
    if (bl_insert_collection(repo, name, "RUN", &id, err, errlen) != 0) {
        return -1;
    }
    return bl_store_owner(repo, id, self, err, errlen);
}

/* The registry's questions of one sweep of leftovers, prepared once. */
typedef struct bl_sweep {
    butler_repo *repo;
    sqlite3_stmt *collection_dir; /* ?1 is a collection's directory, or above one */
    sqlite3_stmt *registered;     /* ?1 is a registered dataset's path */
} bl_sweep;

/* Ask st (one text parameter) about rel: true if it has a row, or on
 * error (a sweep removes nothing it is not sure of). */
static bool bl_sweep_asks(sqlite3_stmt *st, const char *rel)
{
    sqlite3_bind_text(st, 1, rel, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc != SQLITE_DONE;
}

/* Remove what the registry does not know under path[0..len) (a directory
 * inside the root; path has PATH_MAX bytes): files not registered, and
 * directories that become empty. The directory of another collection
 * below it (its name, or a prefix of one up to a '/') is left alone, as
 * are symbolic links (neither followed nor removed). */
static void bl_remove_unregistered(bl_sweep *sw, char *path, size_t len, int depth)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        return;
    }
    const char *rel = path + strlen(sw->repo->root) + 1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || len + 1 + n >= PATH_MAX) {
            continue;
        }
        path[len] = '/';
        memcpy(path + len + 1, de->d_name, n + 1);
        struct stat st;
        if (lstat(path, &st) != 0 || S_ISLNK(st.st_mode)) {
            /* gone meanwhile; or a link, left alone */
        } else if (S_ISDIR(st.st_mode)) {
            if (depth < BL_MAX_LEFTOVER_DEPTH && !bl_sweep_asks(sw->collection_dir, rel)) {
                bl_remove_unregistered(sw, path, len + 1 + n, depth + 1);
                rmdir(path);
            }
        } else if (!bl_sweep_asks(sw->registered, rel)) {
            unlink(path);
        }
        path[len] = '\0';
    }
    closedir(d);
}

/* Whether run names its own directory under the root: no empty, "." or
 * ".." component and no trailing '/'. */
static bool bl_run_dir_is_its_own(const char *run)
{
    for (const char *c = run; *c != '\0';) {
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) {
            return false;
        }
        c += n + (c[n] == '/');
        if (c[-1] == '/' && *c == '\0') {
            return false;
        }
    }
    return true;
}

/* After a takeover, inside the claim's transaction (so that no other
 * writer can claim a run below this one, or register a file, until the
 * sweep is over): remove the files a dead owner left in the run's
 * directory <root>/<run>/. Nothing is removed for a name with an empty,
 * "." or ".." component (its directory would not be the run's own), nor
 * if the registry cannot be asked. */
static void bl_remove_leftovers(butler_repo *repo, const char *run)
{
    if (!bl_run_dir_is_its_own(run)) {
        return;
    }
    bl_sweep sw = {.repo = repo};
    char err[8];
    char *path = malloc(PATH_MAX);
    if (path != NULL &&
        bl_prepare(repo,
                   "SELECT 1 FROM collection WHERE name = ?1 OR substr(name, 1, length(?1) + 1) = ?1 || '/'"
                   " LIMIT 1",
                   &sw.collection_dir, err, sizeof err) == 0 &&
        bl_prepare(repo, "SELECT 1 FROM dataset WHERE path = ?1", &sw.registered, err, sizeof err) == 0) {
        int len = snprintf(path, PATH_MAX, "%s/%s", repo->root, run);
        if (len > 0 && len < PATH_MAX) {
            bl_remove_unregistered(&sw, path, (size_t)len, 0);
        }
    }
    sqlite3_finalize(sw.collection_dir);
    sqlite3_finalize(sw.registered);
    free(path);
}

int butler_claim_run(butler_repo *repo, const char *name, butler_claim_info *info, char *err, size_t errlen)
{
    butler_claim_info local;
    if (info == NULL) {
        info = &local;
    }
    memset(info, 0, sizeof *info);
    butler_run_owner self;
    butler_run_owner_self(&self);
    if (bl_begin(repo, err, errlen) != 0) {
        return -1;
    }
    int rc = bl_claim_in_txn(repo, name, &self, info, err, errlen);
    if (rc != 0) {
        bl_rollback(repo);
        info->taken_over = false;
        return rc;
    }
    if (info->taken_over) {
        /* before the commit: the write lock keeps other claims out */
        bl_remove_leftovers(repo, name);
    }
    if (bl_commit(repo, err, errlen) != 0) {
        info->taken_over = false;
        return -1;
    }
    return 0;
}
