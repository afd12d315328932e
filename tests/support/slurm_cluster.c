/*
 * slurm_cluster.c - see slurm_cluster.h.
 */
#include "slurm_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

static const char *const slurm_cluster_binaries[] = {
    "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/bin/sbatch",
    "/usr/bin/squeue",     "/usr/bin/scancel", "/usr/bin/scontrol"};

bool slurm_cluster_available(char *why, size_t whylen)
{
    for (size_t i = 0; i < sizeof slurm_cluster_binaries / sizeof *slurm_cluster_binaries; i++) {
        if (access(slurm_cluster_binaries[i], X_OK) != 0) {
            snprintf(why, whylen, "%s is not installed (deploy/install-deps.sh installs Slurm)",
                     slurm_cluster_binaries[i]);
            return false;
        }
    }
    return true;
}

static int slurm_cluster_script(const slurm_cluster *c, const char *cmd, char **output)
{
    char *argv[] = {"sh", OCPS_SLURM_CLUSTER_SCRIPT, (char *)cmd, c->dir, NULL};
    return tu_run(argv, output);
}

int slurm_cluster_start(slurm_cluster *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->dir = tu_make_temp_dir();
    if (c->dir == NULL) {
        snprintf(err, errlen, "cannot create a temporary directory");
        return -1;
    }
    char *out = NULL;
    int rc = slurm_cluster_script(c, "start", &out);
    const char *conf = out != NULL ? strstr(out, "SLURM_CONF=") : NULL;
    if (rc != 0 || conf == NULL) {
        snprintf(err, errlen, "slurm_cluster.sh start exited with %d: %s", rc, out != NULL ? out : "");
        free(out);
        slurm_cluster_stop(c);
        return -1;
    }
    conf += strlen("SLURM_CONF=");
    snprintf(c->slurm_conf, sizeof c->slurm_conf, "%.*s", (int)strcspn(conf, "\n"), conf);
    free(out);
    setenv("SLURM_CONF", c->slurm_conf, 1);
    return 0;
}

int slurm_cluster_ctld_stop(const slurm_cluster *c)
{
    return slurm_cluster_script(c, "ctld-stop", NULL);
}

int slurm_cluster_ctld_kill(const slurm_cluster *c)
{
    return slurm_cluster_script(c, "ctld-kill", NULL);
}

int slurm_cluster_ctld_start(const slurm_cluster *c)
{
    return slurm_cluster_script(c, "ctld-start", NULL);
}

double slurm_cluster_state_saved(const slurm_cluster *c)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/state/job_state", c->dir);
    if (stat(path, &st) != 0) {
        return 0;
    }
    return (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
}

void slurm_cluster_stop(slurm_cluster *c)
{
    if (c->dir == NULL) {
        return;
    }
    slurm_cluster_script(c, "stop", NULL);
    tu_remove_tree(c->dir);
    free(c->dir);
    c->dir = NULL;
}
