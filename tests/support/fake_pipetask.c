/*
 * fake-pipetask: stands in for the LSST stack's pipetask in tests. It
 * records exactly what it was given (argv and the job environment) as
 * JSON in $JOB_OUTPUT_DIR/invocation.json, writes two outputs
 * (calexp.fits, summary.txt) there, and behaves as DATA_QUERY asks:
 * "SLEEP=<s>" sleeps, "FAIL=<n>" exits with n, "KILL=<sig>" kills itself,
 * "MEM=<MiB>" touches that much memory first (its resident set).
 * A child "sleep" (SLEEP with CHILD=1) shows that aborts stop the group.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

static double number_after(const char *query, const char *key)
{
    const char *p = query ? strstr(query, key) : NULL;
    return p ? atof(p + strlen(key)) : 0;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

int main(int argc, char **argv)
{
    const char *dir = getenv("JOB_OUTPUT_DIR");
    const char *query = getenv("DATA_QUERY");
    if (dir == NULL) {
        fprintf(stderr, "fake-pipetask: JOB_OUTPUT_DIR not set\n");
        return 90;
    }
    json_t *args = json_array();
    for (int i = 0; i < argc; i++) {
        json_array_append_new(args, json_string(argv[i]));
    }
    static const char *const names[] = {"JOB_ID",      "JOB_OUTPUT_DIR", "PIPELINE_URL", "BUTLER_REPO",
                                        "RUN_OPTIONS", "OUTPUT_GLOB",    "DATA_QUERY",   NULL};
    json_t *env = json_object();
    for (int i = 0; names[i] != NULL; i++) {
        const char *v = getenv(names[i]);
        json_object_set_new(env, names[i], v ? json_string(v) : json_null());
    }
    char cwd[1024] = "";
    if (getcwd(cwd, sizeof cwd) == NULL) {
        cwd[0] = '\0';
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    json_t *doc = json_pack("{s:o, s:o, s:s, s:i, s:f}", "argv", args, "env", env, "cwd", cwd, "pgid",
                            (int)getpgrp(), "started", (double)now.tv_sec + now.tv_nsec / 1e9);
    char *text = json_dumps(doc, JSON_INDENT(1));
    write_file(dir, "invocation.json", text ? text : "{}");
    char runs[2048]; /* one line per run: a job must run once (test_ocps_kill9) */
    snprintf(runs, sizeof runs, "%s/runs.log", dir);
    FILE *rf = fopen(runs, "a");
    if (rf != NULL) {
        fprintf(rf, "run %d\n", (int)getpid());
        fclose(rf);
    }
    free(text);
    json_decref(doc);
    printf("fake-pipetask: %d arguments, query %s\n", argc - 1, query ? query : "");
    fflush(stdout);
    write_file(dir, "calexp.fits", "SIMPLE  =                    T\n");
    write_file(dir, "summary.txt", "ok\n");

    size_t mem = (size_t)number_after(query, "MEM=") * 1024 * 1024;
    char *block = mem > 0 ? malloc(mem) : NULL;
    if (block != NULL) {
        memset(block, 1, mem); /* resident, not just reserved */
        printf("fake-pipetask: %zu bytes touched (%d)\n", mem, block[mem - 1]);
    }
    double secs = number_after(query, "SLEEP=");
    if (secs > 0) {
        if (number_after(query, "CHILD=") > 0 && fork() == 0) {
            char pid[32];
            snprintf(pid, sizeof pid, "%d\n", (int)getpid());
            write_file(dir, "child.pid", pid);
            execlp("sleep", "sleep", "300", (char *)NULL);
            _exit(127);
        }
        struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
        nanosleep(&ts, NULL);
    }
    int sig = (int)number_after(query, "KILL=");
    if (sig > 0) {
        kill(getpid(), sig);
    }
    free(block);
    return (int)number_after(query, "FAIL=");
}
