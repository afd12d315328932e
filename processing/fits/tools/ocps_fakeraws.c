/*
 * ocps-fakeraws - write synthetic raws in the LATISS layout.
 *
 *   ocps-fakeraws --instrument LATISS --type bias|dark|flat|science --count N
 *                 [--small] --out DIR [--seed S] [--day-obs YYYYMMDD]
 *                 [--start-seq N] [--exptime T] [--no-compress] [-j N]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocps/fitsproc.h"

static void fakeraws_usage(FILE *out)
{
    fprintf(out,
            "usage: ocps-fakeraws --instrument LATISS --type bias|dark|flat|science --count N [--small]\n"
            "                     --out DIR [--seed S] [--day-obs YYYYMMDD] [--start-seq N]\n"
            "                     [--exptime SECONDS] [--no-compress] [-j THREADS]\n"
            "Writes AT_O_<day-obs>_<seq>.fits raws (and .truth.json sidecars) into DIR.\n");
}

static int fakeraws_type(const char *s, fp_frame_type *t)
{
    static const char *const names[] = {"bias", "dark", "flat", "science"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *t = (fp_frame_type)i;
            return 0;
        }
    return -1;
}

/* Parse the command line into cfg and *out; 0 ok, 1 help, -1 error. */
static int fakeraws_parse(int argc, char **argv, fp_fake_config *cfg, const char **out)
{
    static const struct option opts[] = {{"instrument", required_argument, NULL, 'i'},
                                         {"type", required_argument, NULL, 't'},
                                         {"count", required_argument, NULL, 'n'},
                                         {"small", no_argument, NULL, 's'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"seed", required_argument, NULL, 'S'},
                                         {"day-obs", required_argument, NULL, 'd'},
                                         {"start-seq", required_argument, NULL, 'q'},
                                         {"exptime", required_argument, NULL, 'e'},
                                         {"no-compress", no_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c, have_type = 0;
    char *end;
    while ((c = getopt_long(argc, argv, "j:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            snprintf(cfg->instrument, sizeof cfg->instrument, "%s", optarg);
            break;
        case 't':
            if (fakeraws_type(optarg, &cfg->type) != 0) {
                fprintf(stderr, "ocps-fakeraws: unknown --type '%s' (bias, dark, flat, science)\n", optarg);
                return -1;
            }
            have_type = 1;
            break;
        case 'n':
            cfg->count = (int)strtol(optarg, &end, 10);
            if (*end || cfg->count < 1) {
                fprintf(stderr, "ocps-fakeraws: --count must be a positive integer\n");
                return -1;
            }
            break;
        case 's':
            cfg->small = true;
            break;
        case 'o':
            *out = optarg;
            break;
        case 'S':
            cfg->seed = strtoull(optarg, &end, 10);
            if (*end) {
                fprintf(stderr, "ocps-fakeraws: --seed must be an integer\n");
                return -1;
            }
            break;
        case 'd':
            snprintf(cfg->day_obs, sizeof cfg->day_obs, "%s", optarg);
            if (strlen(optarg) != 8) {
                fprintf(stderr, "ocps-fakeraws: --day-obs must be YYYYMMDD\n");
                return -1;
            }
            break;
        case 'q':
            cfg->start_seq = (int)strtol(optarg, &end, 10);
            if (*end) {
                fprintf(stderr, "ocps-fakeraws: --start-seq must be an integer\n");
                return -1;
            }
            break;
        case 'e':
            cfg->exptime = strtod(optarg, &end);
            if (*end || cfg->exptime < 0) {
                fprintf(stderr, "ocps-fakeraws: --exptime must be a non-negative number\n");
                return -1;
            }
            break;
        case 'C':
            cfg->compress = false;
            break;
        case 'j':
            cfg->threads = atoi(optarg);
            break;
        case 'h':
            return 1;
        default:
            return -1;
        }
    }
    if (optind < argc || !have_type || !*out) {
        fprintf(stderr, "ocps-fakeraws: --type and --out are required\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    fp_fake_config cfg;
    const char *out = NULL;
    char err[1024] = "";
    char **paths = NULL;
    fp_fake_config_default(&cfg);
    int rc = fakeraws_parse(argc, argv, &cfg, &out);
    if (rc != 0) {
        fakeraws_usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    if (fp_fake_write(&cfg, out, &paths, err, sizeof err) != 0) {
        fprintf(stderr, "ocps-fakeraws: %s\n", err);
        return 1;
    }
    for (int i = 0; i < cfg.count; i++)
        printf("%s\n", paths[i]);
    fp_free_paths(paths, cfg.count);
    return 0;
}
