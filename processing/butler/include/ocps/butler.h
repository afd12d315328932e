/*
 * butler.h - "butler-lite": a data repository in the manner of the Rubin
 * Data Butler. A directory holds FITS files and an SQLite registry
 * (butler.sqlite3, WAL, busy timeout) of datasets, dataset types and
 * collections (RUN and CHAINED). Several processes may write at once:
 * writers wait for each other, and every change that touches several rows
 * is one transaction, so nothing is ever half-registered.
 *
 * Layout, schema, the query language and the differences from the real
 * Butler: docs/butler.md. The query language: ocps/butler_query.h.
 *
 * Every function returns 0 on success, or -1 with a message in
 * err[0..errlen) naming the file, collection or expression at fault.
 */
#ifndef BUTLER_H
#define BUTLER_H

#include <stdbool.h>
#include <stddef.h>

/* The registry's file inside a repository directory. */
#define BUTLER_REGISTRY_FILE "butler.sqlite3"
/* The run raws are ingested into unless told otherwise (as Butler's
 * "<instrument>/raw/all"). */
#define BUTLER_DEFAULT_RAW_RUN "LATISS/raw/all"
/* Value of an integer field that is not part of a dataset's data ID (e.g.
 * the exposure of a master bias). */
#define BUTLER_NONE (-1LL)

typedef struct butler_repo butler_repo;

/* One dataset: its type, data ID, exposure metadata, run and file. */
typedef struct butler_dataset {
    long long id;              /* registry id (set by queries) */
    char dataset_type[64];     /* raw, bias, dark, flat, postISRCCD, ... */
    char instrument[32];       /* LATISS */
    long long exposure;        /* DAYOBS*100000+SEQNUM, or BUTLER_NONE */
    long long detector;        /* 0 for LATISS */
    long long day_obs;         /* YYYYMMDD, or BUTLER_NONE */
    long long seq_num;         /* or BUTLER_NONE */
    char physical_filter[128]; /* FILTER~GRATING, "" if none */
    char observation_type[32]; /* bias, dark, flat, science, ... "" if none */
    double exposure_time;      /* seconds; negative if unknown */
    char obs_id[64];           /* OBSID, "" if none */
    char date_obs[32];         /* DATE-OBS (TAI), "" if none */
    char run[256];             /* the RUN collection (set by queries) */
    char path[1024];           /* relative to the repository root */
    char checksum[40];         /* "fnv1a64:<16 hex digits>" (set on registration) */
} butler_dataset;

/* One collection as butler_list_collections describes it. */
typedef struct butler_collection {
    char name[256];
    char type[8];   /* "RUN" or "CHAINED" */
    char *children; /* CHAINED: the children in order, comma-separated; "" for RUN (owned) */
} butler_collection;

/* Create a repository at path (the directory is made if missing; an
 * existing repository is an error) and return it open in *out. */
int butler_create(const char *path, butler_repo **out, char *err, size_t errlen);

/* Open the existing repository at path. */
int butler_open(const char *path, butler_repo **out, char *err, size_t errlen);

/* Close a repository (NULL is fine). */
void butler_close(butler_repo *repo);

/* The repository's root directory (absolute). */
const char *butler_root(const butler_repo *repo);

/* Resolve a repository label as Butler does: looked up in the YAML mapping
 * (label: path or file:// URI) named by $DAF_BUTLER_REPOSITORY_INDEX, else
 * used as a path. A value naming a butler.yaml file resolves to its
 * directory. Writes the path into out[0..outlen). */
int butler_resolve_label(const char *label, char *out, size_t outlen, char *err, size_t errlen);

/* After a repository named `label` failed to open with message msg: when
 * the label is a bare name that is not a directory, append why it was not
 * found ("... is not a directory, and DAF_BUTLER_REPOSITORY_INDEX is not
 * set to name it"; or "nor a label of <index>"), within msglen. */
void butler_label_hint(const char *label, char *msg, size_t msglen);

/* Register a dataset type by name (letters, digits and _; no-op if it
 * exists). raw, bias, dark, flat and postISRCCD exist in every new repo. */
int butler_register_dataset_type(butler_repo *repo, const char *name, char *err, size_t errlen);

/* Fill ds from the primary header of a LATISS raw at file (the file must
 * open and each of its HDUs be readable and complete): dataset type raw,
 * instrument, exposure, detector 0, day_obs (from DAYOBS), seq_num,
 * physical_filter, observation_type, exposure_time, obs_id, date_obs.
 * ds->path is left empty. */
int butler_read_raw_header(const char *file, butler_dataset *ds, char *err, size_t errlen);

/* Ingest raws into run (NULL: BUTLER_DEFAULT_RAW_RUN, created if missing):
 * all files are checked first, then hard-linked (copied across file
 * systems) to <instrument>/raw/<day_obs>/<exposure>/<file name> and
 * registered in one transaction. All or nothing: one bad file, or a raw
 * whose data ID is already in the run, fails the whole batch, names the
 * file and leaves the repository as it was. */
int butler_ingest_raws(butler_repo *repo, const char *run, const char *const *files, size_t nfiles, char *err,
                       size_t errlen);

/* Register n datasets whose files are already in the repository (ds[i].path
 * relative to the root) into run, created as a RUN collection if missing.
 * The checksums are computed here. One transaction: all or nothing; a data
 * ID already in the run for that type is refused. */
int butler_register(butler_repo *repo, const char *run, const butler_dataset *ds, size_t n, char *err,
                    size_t errlen);

/* The process holding a claimed run (butler_claim_run): enough to tell,
 * on the machine it ran on, whether it is still alive. */
typedef struct butler_run_owner {
    char host[256];                /* gethostname() */
    char boot_id[64];              /* /proc/sys/kernel/random/boot_id: "" if unknown */
    char pid_ns[64];               /* /proc/self/ns/pid, as "pid:[N]": "" if unknown */
    long long pid;                 /* its pid */
    unsigned long long start_time; /* /proc/PID/stat field 22 (clock ticks after boot): 0 if unknown */
} butler_run_owner;

/* What butler_claim_run found besides its verdict. */
typedef struct butler_claim_info {
    bool taken_over;        /* claimed (0) from an owner that is certainly dead */
    bool has_owner;         /* owner below is set (taken over, or refused because of it) */
    butler_run_owner owner; /* the dead owner taken over, or the holder that is refused */
    char reason[512];       /* refused (1): why, naming the owner or the datasets */
} butler_claim_info;

/* Fill o with this process's identity (host, boot id, pid namespace, pid,
 * start time); the parts /proc does not give are left empty or 0, and a
 * claim with them is never taken over. */
void butler_run_owner_self(butler_run_owner *o);

/* Claim a RUN collection for a writer (as pipetask's output run) before it
 * does any work, in a transaction of its own, so that of two writers
 * wanting the same run exactly one gets it. The claim records this process
 * as the run's owner (table run_claim). A run that exists already is
 * taken over (in the same transaction, so that no other writer claims a
 * run below it meanwhile: the owner replaced and the files the registry
 * does not know under <root>/<name>/, outside another collection's
 * directory, removed) only when it
 * holds no datasets and its recorded owner is certainly dead: on this host
 * with the same boot id and pid namespace and that pid gone, a zombie or
 * another process. Returns 0 when claimed (*info says whether it was taken
 * over, and from whom), 1 when refused (the run holds datasets, has no
 * owner recorded, or an owner that is alive or cannot be checked from
 * here: on another host, another boot of a host of this name, or in
 * another pid namespace; info->reason says which, naming the owner's host
 * and pid),
 * -1 on error. info may be NULL. */
int butler_claim_run(butler_repo *repo, const char *name, butler_claim_info *info, char *err, size_t errlen);

/* Define (or redefine) the CHAINED collection name as the ordered list of
 * existing children. A cycle, an unknown child or a name held by a RUN is
 * refused. */
int butler_define_chain(butler_repo *repo, const char *name, const char *const *children, size_t nchildren,
                        char *err, size_t errlen);

/* butler_register into run and butler_define_chain(chain, children) in one
 * transaction (as a pipetask run's outputs and its output collection):
 * both happen, or neither. chain NULL: the registration alone. A chain
 * that exists already keeps its children: children[0] (the new run) is put
 * in front and the other children it lacks are appended, as pipetask does
 * with an existing output chain. */
int butler_register_chained(butler_repo *repo, const char *run, const butler_dataset *ds, size_t n,
                            const char *chain, const char *const *children, size_t nchildren, char *err,
                            size_t errlen);

/* Query the datasets of dataset_type in collections (chains flattened in
 * order, depth first, each run once), optionally restricted by a --where
 * expression (NULL or "" for none). With find_first, each data ID gives
 * only its dataset in the first collection that has one (Butler's
 * find-first, as used for calibrations). Rows are ordered by data ID then
 * collection order. *rows is malloc'd (free()); *nrows its length. */
int butler_query_datasets(butler_repo *repo, const char *dataset_type, const char *const *collections,
                          size_t ncollections, const char *where, bool find_first, butler_dataset **rows,
                          size_t *nrows, char *err, size_t errlen);

/* Every registered dataset type's name, sorted: *names is a malloc'd
 * array of *n malloc'd strings (free each, then the array). */
int butler_list_dataset_types(butler_repo *repo, char ***names, size_t *n, char *err, size_t errlen);

/* Every collection, sorted by name. Free with butler_collections_free. */
int butler_list_collections(butler_repo *repo, butler_collection **out, size_t *n, char *err, size_t errlen);

/* Free what butler_list_collections returned. */
void butler_collections_free(butler_collection *c, size_t n);

/* Remove RUN collections: their datasets, their files, and their places
 * in chains, in one transaction (files are deleted after it commits). An
 * unknown or CHAINED name fails the whole call before anything changes. */
int butler_remove_runs(butler_repo *repo, const char *const *runs, size_t nruns, char *err, size_t errlen);

/* The checksum butler_register records, of the file at path:
 * "fnv1a64:" and 16 lower-case hex digits (64-bit FNV-1a of the bytes). */
int butler_checksum_file(const char *path, char *out, size_t outlen, char *err, size_t errlen);

#endif
