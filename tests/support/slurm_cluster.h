/*
 * slurm_cluster.h - a private single-node Slurm cluster for tests, started
 * and stopped by tests/support/slurm_cluster.sh (munged, slurmctld, slurmd
 * in a temporary directory, free ports, no systemd).
 */
#ifndef SLURM_CLUSTER_H
#define SLURM_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct slurm_cluster {
    char *dir;            /* the cluster's private directory (owned) */
    char slurm_conf[600]; /* its slurm.conf, also exported as SLURM_CONF */
} slurm_cluster;

/* Are the Slurm daemons and clients installed? If not, why in `why`. */
bool slurm_cluster_available(char *why, size_t whylen);

/* Start a cluster in a new temporary directory and wait until its node is
 * idle; sets SLURM_CONF in this process's environment. 0, or -1 with the
 * script's output in err. */
int slurm_cluster_start(slurm_cluster *c, char *err, size_t errlen);

/* Stop only slurmctld / start it again (the controller unreachable). */
int slurm_cluster_ctld_stop(const slurm_cluster *c);
/* SIGKILL slurmctld (a crash: no state saved on the way out). */
int slurm_cluster_ctld_kill(const slurm_cluster *c);
int slurm_cluster_ctld_start(const slurm_cluster *c);

/* When slurmctld last saved its job state (the modification time of
 * state/job_state, UTC seconds), 0 if never. A slurmctld that crashes
 * forgets what happened since then. */
double slurm_cluster_state_saved(const slurm_cluster *c);

/* Stop the daemons by pid and remove the directory. */
void slurm_cluster_stop(slurm_cluster *c);

#endif
