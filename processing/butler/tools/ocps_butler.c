/*
 * ocps-butler - command line of the butler-lite repository, in the spirit
 * of Rubin's `butler`: create, ingest-raws, query-datasets,
 * query-collections, remove-runs, collection-chain, register-dataset-type,
 * retrieve-artifacts.
 * REPO may be a label of $DAF_BUTLER_REPOSITORY_INDEX. Exit status 0 on
 * success, 1 on failure (message on stderr), 64 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "ocps/butler.h"

#define OB_EXIT_FAILURE 1
#define OB_EXIT_USAGE 64
#define OB_MAX_ARGS 4096

static const char ob_usage[] =
    "usage: ocps-butler COMMAND REPO [ARGS...]\n"
    "  create REPO                                   make a new repository\n"
    "  ingest-raws REPO FILE... [--run RUN]          ingest LATISS raws (default run " BUTLER_DEFAULT_RAW_RUN
    ")\n"
    "  query-datasets REPO TYPE --collections C[,C...] [--where EXPR] [--find-first] [--json]\n"
    "  query-collections REPO [--json]               every collection, its type and chain\n"
    "  remove-runs REPO RUN...                       remove runs, their datasets and files\n"
    "  collection-chain REPO PARENT [CHILD...]       define a CHAINED collection\n"
    "  register-dataset-type REPO NAME               add a dataset type\n"
    "  retrieve-artifacts REPO DEST --collections C[,C...] [--dataset-type GLOB[,GLOB...]]...\n"
    "      [--where EXPR] [--transfer auto|copy|link|hardlink] [--no-preserve-path]\n"
    "                                                copy (or hard-link) the datasets' files into DEST\n"
    "REPO is a path or a label of the index named by $DAF_BUTLER_REPOSITORY_INDEX.\n";

/* The command line after the command name: positionals and options. */
typedef struct ob_args {
    const char *positional[OB_MAX_ARGS];
    size_t npositional;
    const char *collections[OB_MAX_ARGS];
    size_t ncollections;
    char *collection_text[OB_MAX_ARGS]; /* owned copies split at ',' */
    size_t ntext;
    const char *where;
    const char *run;
    bool json;
    bool find_first;
    const char *types[OB_MAX_ARGS]; /* --dataset-type values (each may hold commas) */
    size_t ntypes;
    const char *transfer; /* --transfer, NULL: auto */
    bool no_preserve_path;
} ob_args;

static int ob_usage_error(const char *fmt, const char *what)
{
    fprintf(stderr, "ocps-butler: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n%s", ob_usage);
    return OB_EXIT_USAGE;
}

static int ob_add_collections(ob_args *a, const char *value)
{
    if (a->ntext == OB_MAX_ARGS) {
        return ob_usage_error("too many %s", "--collections");
    }
    char *copy = strdup(value);
    if (copy == NULL) {
        fprintf(stderr, "ocps-butler: out of memory\n");
        return OB_EXIT_FAILURE;
    }
    a->collection_text[a->ntext++] = copy;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (a->ncollections == OB_MAX_ARGS) {
            return ob_usage_error("too many %s", "collections");
        }
        a->collections[a->ncollections++] = tok;
    }
    return 0;
}

/* --name VALUE or --name=VALUE; *i advanced past the value. */
static const char *ob_option_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=') {
        return argv[*i] + n + 1;
    }
    if (strcmp(argv[*i], name) == 0 && *i + 1 < argc) {
        return argv[++*i];
    }
    return NULL;
}

static bool ob_is_option(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

static int ob_parse_option(ob_args *a, int argc, char **argv, int *i)
{
    static const char *const valued[] = {"--collections", "--where", "--run", "--dataset-type", "--transfer"};
    const char *arg = argv[*i];
    if (strcmp(arg, "--json") == 0) {
        a->json = true;
        return 0;
    }
    if (strcmp(arg, "--no-preserve-path") == 0 || strcmp(arg, "--preserve-path") == 0) {
        a->no_preserve_path = arg[2] == 'n';
        return 0;
    }
    if (strcmp(arg, "--find-first") == 0) {
        a->find_first = true;
        return 0;
    }
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) {
        if (!ob_is_option(arg, valued[k])) {
            continue;
        }
        const char *value = ob_option_value(argc, argv, i, valued[k]);
        if (value == NULL) {
            return ob_usage_error("%s needs a value", valued[k]);
        }
        if (k == 0) {
            return ob_add_collections(a, value);
        }
        if (k == 3) {
            if (a->ntypes == OB_MAX_ARGS) {
                return ob_usage_error("too many %s", "--dataset-type");
            }
            a->types[a->ntypes++] = value;
            return 0;
        }
        *(k == 1 ? &a->where : k == 2 ? &a->run : &a->transfer) = value;
        return 0;
    }
    return ob_usage_error("unknown option %s", arg);
}

static int ob_parse(ob_args *a, int argc, char **argv)
{
    bool options = true;
    for (int i = 2; i < argc; i++) {
        if (options && strcmp(argv[i], "--") == 0) {
            options = false;
        } else if (options && strncmp(argv[i], "--", 2) == 0) {
            int rc = ob_parse_option(a, argc, argv, &i);
            if (rc != 0) {
                return rc;
            }
        } else if (a->npositional == OB_MAX_ARGS) {
            return ob_usage_error("too many %s", "arguments");
        } else {
            a->positional[a->npositional++] = argv[i];
        }
    }
    return 0;
}

static void ob_free_args(ob_args *a)
{
    for (size_t i = 0; i < a->ntext; i++) {
        free(a->collection_text[i]);
    }
}

static int ob_fail(const char *message)
{
    fprintf(stderr, "ocps-butler: %s\n", message);
    return OB_EXIT_FAILURE;
}

/* Open (or with create, make) the repository named by label or path. */
static int ob_open(const char *label, bool create, butler_repo **repo)
{
    char path[PATH_MAX];
    char err[1024];
    if (butler_resolve_label(label, path, sizeof path, err, sizeof err) != 0 ||
        (create ? butler_create(path, repo, err, sizeof err) : butler_open(path, repo, err, sizeof err)) !=
            0) {
        if (!create) {
            butler_label_hint(label, err, sizeof err);
        }
        return ob_fail(err);
    }
    return 0;
}

/* ---- output --------------------------------------------------------------- */

enum { OB_NCOLS = 11 };
static const char *const ob_headers[OB_NCOLS] = {"type",     "run",      "instrument", "exposure",
                                                 "detector", "day_obs",  "seq_num",    "physical_filter",
                                                 "obs_type", "exp_time", "path"};

static void ob_int(char *out, size_t n, long long v)
{
    if (v == BUTLER_NONE) {
        snprintf(out, n, "-");
    } else {
        snprintf(out, n, "%lld", v);
    }
}

static void ob_cell(const butler_dataset *d, int col, char *out, size_t n)
{
    switch (col) {
    case 0:
        snprintf(out, n, "%s", d->dataset_type);
        break;
    case 1:
        snprintf(out, n, "%s", d->run);
        break;
    case 2:
        snprintf(out, n, "%s", d->instrument);
        break;
    case 3:
        ob_int(out, n, d->exposure);
        break;
    case 4:
        ob_int(out, n, d->detector);
        break;
    case 5:
        ob_int(out, n, d->day_obs);
        break;
    case 6:
        ob_int(out, n, d->seq_num);
        break;
    case 7:
        snprintf(out, n, "%s", d->physical_filter[0] ? d->physical_filter : "-");
        break;
    case 8:
        snprintf(out, n, "%s", d->observation_type[0] ? d->observation_type : "-");
        break;
    case 9:
        if (d->exposure_time < 0) {
            snprintf(out, n, "-");
        } else {
            snprintf(out, n, "%g", d->exposure_time);
        }
        break;
    default:
        snprintf(out, n, "%s", d->path);
    }
}

/* One cell padded to its column's width; the last one ends the line. */
static void ob_print_cell(int col, int width, const char *text)
{
    if (col + 1 < OB_NCOLS) {
        printf("%-*s  ", width, text);
    } else {
        printf("%s\n", text);
    }
}

static void ob_print_table(const butler_dataset *rows, size_t n)
{
    int width[OB_NCOLS];
    char cell[1100];
    for (int c = 0; c < OB_NCOLS; c++) {
        width[c] = (int)strlen(ob_headers[c]);
        for (size_t r = 0; r < n; r++) {
            ob_cell(&rows[r], c, cell, sizeof cell);
            width[c] = (int)strlen(cell) > width[c] ? (int)strlen(cell) : width[c];
        }
    }
    for (int c = 0; c < OB_NCOLS; c++) {
        ob_print_cell(c, width[c], ob_headers[c]);
    }
    for (size_t r = 0; r < n; r++) {
        for (int c = 0; c < OB_NCOLS; c++) {
            ob_cell(&rows[r], c, cell, sizeof cell);
            ob_print_cell(c, width[c], cell);
        }
    }
}

static json_t *ob_json_int(long long v)
{
    return v == BUTLER_NONE ? json_null() : json_integer(v);
}

static json_t *ob_json_text(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

static void ob_print_json(const butler_dataset *rows, size_t n)
{
    for (size_t r = 0; r < n; r++) {
        const butler_dataset *d = &rows[r];
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:s}",
                      "dataset_type", d->dataset_type, "run", d->run, "instrument", d->instrument, "exposure",
                      ob_json_int(d->exposure), "detector", ob_json_int(d->detector), "day_obs",
                      ob_json_int(d->day_obs), "seq_num", ob_json_int(d->seq_num), "physical_filter",
                      ob_json_text(d->physical_filter), "observation_type", ob_json_text(d->observation_type),
                      "exposure_time", d->exposure_time < 0 ? json_null() : json_real(d->exposure_time),
                      "obs_id", ob_json_text(d->obs_id), "date_obs", ob_json_text(d->date_obs), "path",
                      d->path, "checksum", d->checksum);
        char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (line != NULL) {
            printf("%s\n", line);
        }
        free(line);
        json_decref(o);
    }
}

/* ---- commands ------------------------------------------------------------- */

static int ob_create(const ob_args *a)
{
    if (a->npositional != 1) {
        return ob_usage_error("%s takes REPO", "create");
    }
    butler_repo *repo;
    int rc = ob_open(a->positional[0], true, &repo);
    if (rc == 0) {
        printf("created repository %s\n", butler_root(repo));
        butler_close(repo);
    }
    return rc;
}

static int ob_ingest(const ob_args *a)
{
    if (a->npositional < 2) {
        return ob_usage_error("%s takes REPO FILE...", "ingest-raws");
    }
    butler_repo *repo;
    int rc = ob_open(a->positional[0], false, &repo);
    if (rc != 0) {
        return rc;
    }
    char err[2048];
    if (butler_ingest_raws(repo, a->run, a->positional + 1, a->npositional - 1, err, sizeof err) != 0) {
        rc = ob_fail(err);
    } else {
        printf("ingested %zu raw(s) into %s\n", a->npositional - 1, a->run ? a->run : BUTLER_DEFAULT_RAW_RUN);
    }
    butler_close(repo);
    return rc;
}

static int ob_query_datasets(const ob_args *a)
{
    if (a->npositional != 2) {
        return ob_usage_error("%s takes REPO TYPE", "query-datasets");
    }
    if (a->ncollections == 0) {
        return ob_usage_error("%s needs --collections", "query-datasets");
    }
    butler_repo *repo;
    int rc = ob_open(a->positional[0], false, &repo);
    if (rc != 0) {
        return rc;
    }
    butler_dataset *rows = NULL;
    size_t n = 0;
    char err[2048];
    if (butler_query_datasets(repo, a->positional[1], a->collections, a->ncollections, a->where,
                              a->find_first, &rows, &n, err, sizeof err) != 0) {
        char msg[2200];
        snprintf(msg, sizeof msg, "%s%s", a->where && strncmp(err, "column ", 7) == 0 ? "--where: " : "",
                 err);
        rc = ob_fail(msg);
    } else if (a->json) {
        ob_print_json(rows, n);
    } else {
        ob_print_table(rows, n);
    }
    free(rows);
    butler_close(repo);
    return rc;
}

static void ob_print_collections(const butler_collection *c, size_t n, bool json)
{
    int w = 4;
    for (size_t i = 0; i < n; i++) {
        w = (int)strlen(c[i].name) > w ? (int)strlen(c[i].name) : w;
    }
    if (!json) {
        printf("%-*s  %-7s  %s\n", w, "name", "type", "children");
    }
    for (size_t i = 0; i < n; i++) {
        if (!json) {
            printf("%-*s  %-7s  %s\n", w, c[i].name, c[i].type, c[i].children[0] ? c[i].children : "-");
            continue;
        }
        json_t *children = json_array();
        char *copy = strdup(c[i].children);
        for (char *save = NULL, *t = copy ? strtok_r(copy, ",", &save) : NULL; t;
             t = strtok_r(NULL, ",", &save)) {
            json_array_append_new(children, json_string(t));
        }
        free(copy);
        json_t *o = json_pack("{s:s, s:s, s:o}", "name", c[i].name, "type", c[i].type, "children", children);
        char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (line != NULL) {
            printf("%s\n", line);
        }
        free(line);
        json_decref(o);
    }
}

static int ob_query_collections(const ob_args *a)
{
    if (a->npositional != 1) {
        return ob_usage_error("%s takes REPO", "query-collections");
    }
    butler_repo *repo;
    int rc = ob_open(a->positional[0], false, &repo);
    if (rc != 0) {
        return rc;
    }
    butler_collection *c = NULL;
    size_t n = 0;
    char err[1024];
    if (butler_list_collections(repo, &c, &n, err, sizeof err) != 0) {
        rc = ob_fail(err);
    } else {
        ob_print_collections(c, n, a->json);
    }
    butler_collections_free(c, n);
    butler_close(repo);
    return rc;
}

/* remove-runs, collection-chain and register-dataset-type: REPO and names. */
static int ob_names_command(const char *cmd, const ob_args *a)
{
    bool chain = strcmp(cmd, "collection-chain") == 0;
    bool type = strcmp(cmd, "register-dataset-type") == 0;
    if (a->npositional < 2 || (type && a->npositional != 2)) {
        return ob_usage_error("%s needs REPO and names", cmd);
    }
    butler_repo *repo;
    int rc = ob_open(a->positional[0], false, &repo);
    if (rc != 0) {
        return rc;
    }
    char err[1024];
    const char *const *names = a->positional + 1;
    size_t n = a->npositional - 1;
    int r = chain  ? butler_define_chain(repo, names[0], names + 1, n - 1, err, sizeof err)
            : type ? butler_register_dataset_type(repo, names[0], err, sizeof err)
                   : butler_remove_runs(repo, names, n, err, sizeof err);
    if (r != 0) {
        rc = ob_fail(err);
    }
    butler_close(repo);
    return rc;
}

/* ---- retrieve-artifacts --------------------------------------------------- */

/* Does `type` match one of the --dataset-type globs (each value split at
 * commas, blanks around an item ignored)? None given: every type. */
static bool ob_type_wanted(const ob_args *a, const char *type)
{
    if (a->ntypes == 0) {
        return true;
    }
    for (size_t i = 0; i < a->ntypes; i++) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", a->types[i]);
        for (char *save = NULL, *g = strtok_r(buf, ",", &save); g != NULL; g = strtok_r(NULL, ",", &save)) {
            while (*g == ' ') {
                g++;
            }
            size_t n = strlen(g);
            while (n > 0 && g[n - 1] == ' ') {
                g[--n] = '\0';
            }
            if (n > 0 && fnmatch(g, type, 0) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* mkdir -p of the directory part of path (and path itself if dir). */
static int ob_mkdirs(const char *path, bool dir, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    if (!dir) {
        char *slash = strrchr(buf, '/');
        if (slash == NULL) {
            return 0;
        }
        *slash = '\0';
    }
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (buf[0] != '\0' && mkdir(buf, 0755) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot make directory %.900s: %s", buf, strerror(errno));
                return -1;
            }
            *p = c;
            if (c == '\0') {
                break;
            }
        }
    }
    return 0;
}

/* Copy src to dst, which must not exist (written whole or removed). */
static int ob_copy_file(const char *src, const char *dst, char *err, size_t errlen)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        snprintf(err, errlen, "cannot read %.900s: %s", src, strerror(errno));
        return -1;
    }
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        snprintf(err, errlen, "cannot create %.900s: %s", dst, strerror(errno));
        close(in);
        return -1;
    }
    char buf[65536];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR) {
            continue;
        }
        for (ssize_t done = 0; n > 0 && done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                n = -1;
                break;
            }
            done += w;
        }
        if (n < 0) {
            snprintf(err, errlen, "cannot copy %.900s to %.900s: %s", src, dst, strerror(errno));
            rc = -1;
            break;
        }
    }
    close(in);
    if (close(out) != 0 && rc == 0) {
        snprintf(err, errlen, "cannot write %.900s: %s", dst, strerror(errno));
        rc = -1;
    }
    if (rc != 0) {
        unlink(dst);
    }
    return rc;
}

/* One dataset's file into DEST: a hard link (link, hardlink; auto when
 * the file system allows it) or a copy. An existing destination fails. */
static int ob_transfer(const char *mode, const char *src, const char *dst, char *err, size_t errlen)
{
    bool copy = strcmp(mode, "copy") == 0;
    if (!copy && link(src, dst) == 0) {
        return 0;
    }
    if (!copy && (errno == EEXIST || strcmp(mode, "auto") != 0)) {
        snprintf(err, errlen, "cannot link %.900s to %.900s: %s", src, dst, strerror(errno));
        return -1;
    }
    return ob_copy_file(src, dst, err, errlen);
}

static int ob_retrieve(const ob_args *a)
{
    if (a->npositional != 2) {
        return ob_usage_error("%s takes REPO DEST", "retrieve-artifacts");
    }
    if (a->ncollections == 0) {
        return ob_usage_error("%s needs --collections", "retrieve-artifacts");
    }
    const char *mode = a->transfer != NULL ? a->transfer : "auto";
    if (strcmp(mode, "auto") != 0 && strcmp(mode, "copy") != 0 && strcmp(mode, "link") != 0 &&
        strcmp(mode, "hardlink") != 0) {
        return ob_usage_error("--transfer %s is not supported (auto, copy, link, hardlink)", mode);
    }
    butler_repo *repo;
    int rc = ob_open(a->positional[0], false, &repo);
    if (rc != 0) {
        return rc;
    }
    const char *dest = a->positional[1];
    char err[2048];
    char **types = NULL;
    size_t ntypes = 0;
    size_t done = 0;
    if (ob_mkdirs(dest, true, err, sizeof err) != 0 ||
        butler_list_dataset_types(repo, &types, &ntypes, err, sizeof err) != 0) {
        rc = ob_fail(err);
    }
    for (size_t t = 0; rc == 0 && t < ntypes; t++) {
        if (!ob_type_wanted(a, types[t])) {
            continue;
        }
        butler_dataset *rows = NULL;
        size_t n = 0;
        if (butler_query_datasets(repo, types[t], a->collections, a->ncollections, a->where, false, &rows, &n,
                                  err, sizeof err) != 0) {
            rc = ob_fail(err);
        }
        for (size_t i = 0; rc == 0 && i < n; i++) {
            char src[PATH_MAX + 1100];
            char dst[PATH_MAX + 1100];
            const char *base = strrchr(rows[i].path, '/') ? strrchr(rows[i].path, '/') + 1 : rows[i].path;
            int ls = snprintf(src, sizeof src, "%s/%s", butler_root(repo), rows[i].path);
            int ld = snprintf(dst, sizeof dst, "%s/%s", dest, a->no_preserve_path ? base : rows[i].path);
            if (ls < 0 || (size_t)ls >= sizeof src || ld < 0 || (size_t)ld >= sizeof dst) {
                rc = ob_fail("path too long");
                break;
            }
            if ((!a->no_preserve_path && ob_mkdirs(dst, false, err, sizeof err) != 0) ||
                ob_transfer(mode, src, dst, err, sizeof err) != 0) {
                rc = ob_fail(err);
                break;
            }
            printf("%s\n", dst);
            done++;
        }
        free(rows);
    }
    for (size_t t = 0; t < ntypes; t++) {
        free(types[t]);
    }
    free(types);
    butler_close(repo);
    if (rc == 0) {
        printf("Number of artifacts retrieved into destination %s: %zu\n", dest, done);
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        return ob_usage_error("%s", "no command");
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(ob_usage, stdout);
        return 0;
    }
    ob_args *a = calloc(1, sizeof *a);
    if (a == NULL) {
        return ob_fail("out of memory");
    }
    int rc = ob_parse(a, argc, argv);
    if (rc == 0) {
        if (strcmp(cmd, "create") == 0) {
            rc = ob_create(a);
        } else if (strcmp(cmd, "ingest-raws") == 0) {
            rc = ob_ingest(a);
        } else if (strcmp(cmd, "query-datasets") == 0) {
            rc = ob_query_datasets(a);
        } else if (strcmp(cmd, "query-collections") == 0) {
            rc = ob_query_collections(a);
        } else if (strcmp(cmd, "remove-runs") == 0 || strcmp(cmd, "collection-chain") == 0 ||
                   strcmp(cmd, "register-dataset-type") == 0) {
            rc = ob_names_command(cmd, a);
        } else if (strcmp(cmd, "retrieve-artifacts") == 0) {
            rc = ob_retrieve(a);
        } else {
            rc = ob_usage_error("unknown command '%s'", cmd);
        }
    }
    ob_free_args(a);
    free(a);
    return rc;
}
