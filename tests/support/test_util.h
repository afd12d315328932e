/*
 * test_util.h - small helpers shared by the test programs: files,
 * directories and child processes (spawned without a shell).
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stddef.h>

/* Read a whole file; returns a malloc'd NUL-terminated buffer (caller frees)
 * and its length in *len (if len is not NULL), or NULL if unreadable. */
char *tu_read_file(const char *path, size_t *len);

/* Write `len` bytes to path (created or truncated); 0 on success. */
int tu_write_file(const char *path, const char *data, size_t len);

/* Sorted names of the regular files in dir ending with suffix. Returns the
 * count (or -1 if dir is unreadable); *names is a malloc'd array of malloc'd
 * strings, freed with tu_free_names. */
int tu_list_files(const char *dir, const char *suffix, char ***names);
void tu_free_names(char **names, int n);

/* Run argv[0] (looked up in PATH) with stdout and stderr captured into
 * `output` (malloc'd, caller frees; may be NULL to discard). Returns the
 * exit status, 128+signal if killed, or -1 if it could not be started. */
int tu_run(char *const argv[], char **output);

/* Start argv[0] (PATH lookup) in the background with stdout and stderr
 * appended to log_path (NULL: inherited). Returns the pid or -1. */
int tu_spawn(char *const argv[], const char *log_path);

/* Start argv[0] with its stdin and stdout connected to pipes (stderr
 * inherited): *to_child writes its stdin, *from_child reads its stdout.
 * Returns the pid or -1. */
int tu_spawn_piped(char *const argv[], int *to_child, int *from_child);

/* Read one line (without the newline) from fd within timeout seconds;
 * 0 on success, -1 on EOF, error or timeout. */
int tu_read_line(int fd, char *line, size_t len, double timeout);

/* Wait up to timeout seconds for pid to exit; returns its exit status
 * (128+signal if killed) or -1 if it is still running. */
int tu_wait_exit(int pid, double timeout);

/* SIGKILL pid (if still running) and reap it. */
void tu_kill(int pid);

/* Monotonic seconds. */
double tu_now(void);

/* Processes started from now on (and this one, if it execs itself) run
 * under libfaketime (`lib`, the library's path): their wall clock offset
 * by what the new file written into offset_file (in $TMPDIR or /tmp,
 * "+0" at first; write e.g. "-600" to step) holds, read at every call;
 * the monotonic clock too when `monotonic` is true. ASan is told to
 * accept libfaketime ahead of its runtime. 0, or -1 with errno. */
int tu_faketime_start(const char *lib, int monotonic, char *offset_file, size_t len);

/* Processes started from now on run on the real clock again. */
void tu_faketime_stop(void);

/* The CPU time (user + system) this process has used, in seconds. */
double tu_cpu_seconds(void);

/* Create a fresh temporary directory; returns a malloc'd path. */
char *tu_make_temp_dir(void);

/* Remove a directory tree (no shell). */
void tu_remove_tree(const char *path);

/* A TCP port free now on 127.0.0.1, outside the kernel's ephemeral range
 * where it can (so that no outgoing connection takes it before the
 * server binds it), picked at random; or 0. */
unsigned tu_free_port(void);

/* How many subjects the schema registry at url holds (`curl -sf
 * URL/subjects`), or -1 if it did not answer with a JSON array. */
long tu_registry_subjects(const char *url);

/* malloc'd "a/b". */
char *tu_path_join(const char *a, const char *b);

/* A temporary $DM_CONFIG_OCPS_DIR for OCPS:1: <root>/OCPS/v4 with an
 * _init.yaml naming index 1 (LATISS). Returns the root (malloc'd;
 * tu_remove_tree it), or NULL. */
char *tu_make_ocps_config(void);

/* Write `site_yaml` as the site overlay (_test.yaml, for LSST_SITE=test)
 * of such a root; 0 on success. */
int tu_write_ocps_site(const char *root, const char *site_yaml);

#endif
