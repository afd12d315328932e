#!/bin/sh
# slurm_cluster.sh - a private single-node Slurm cluster for the tests:
# munged, slurmctld and slurmd (run as root, no systemd) with everything
# (key, config, state, spool, logs, pid files) under one directory.
#
#   slurm_cluster.sh start DIR   prints SLURM_CONF=DIR/etc/slurm.conf once
#                                the node is idle (exit 0), else exits 1
#   slurm_cluster.sh stop DIR    stops the daemons by pid file
#   slurm_cluster.sh ctld-stop DIR / ctld-start DIR   only slurmctld
#   slurm_cluster.sh ctld-kill DIR   SIGKILL to slurmctld (a crash)
#
# Ports are picked free at start. munged must listen on the default socket
# (/run/munge/munge.socket.2): Slurm 22.05 clients ignore AuthInfo=socket
# for some connections, so every cluster on the machine shares one munged:
# one already answering there is reused, else one is started. Clusters of
# other test runs may use it at once, so each cluster is counted as a user
# (a file in $munge_state/users) and stop ends munged only if a cluster
# started it and no cluster uses it any more; a munged no cluster started
# (the machine's own) is never stopped.
set -eu

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop|ctld-stop|ctld-kill|ctld-start DIR" >&2
    exit 2
fi

munge_state=/run/ocps-test-munge # shared by the clusters of every test run

# This cluster's file among the users of the shared munged.
munge_user() {
    printf '%s/users/%s' "$munge_state" "$(printf %s "$dir" | tr / %)"
}

# Run "$@" holding the lock of the shared munged (start and stop of
# clusters in other test runs wait).
with_munge_lock() {
    mkdir -p "$munge_state/users"
    (
        flock 9
        "$@"
    ) 9>"$munge_state/lock"
}

# A free port below the kernel's ephemeral range (above it if the range
# starts low), picked at random: a port that no outgoing connection can
# take between this check and the daemon's bind, and that clusters of test
# runs side by side are unlikely to share. $1: a port not to pick.
free_port() {
    python3 - "${1:-0}" <<'PY'
import random, socket, sys
avoid = int(sys.argv[1])
lo, hi = (int(v) for v in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
span = (10000, lo - 1) if lo > 12000 else (hi + 1, 65000) if hi < 63000 else None
for _ in range(100 if span else 0):
    port = random.randint(*span)
    if port == avoid:
        continue
    s = socket.socket()
    try:
        s.bind(("", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    sys.exit(0)
s = socket.socket()
s.bind(("", 0))
print(s.getsockname()[1])
PY
}

stop_pidfile() {
    [ -f "$1" ] || return 0
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$1"
}

# slurmstepd processes of this cluster (their environment names its
# slurm.conf) that outlived slurmd: they would retry forever to report to it.
stop_stepds() {
    for env in /proc/[0-9]*/environ; do
        pid=${env#/proc/}
        pid=${pid%/environ}
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = slurmstepd ] || continue
        if tr '\0' '\n' <"$env" 2>/dev/null | grep -qx "SLURM_CONF=$dir/etc/slurm.conf"; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
}

# Cancel what still runs, so that no job outlives the cluster.
cancel_jobs() {
    [ -f "$dir/slurmctld.pid" ] || return 0
    export SLURM_CONF="$dir/etc/slurm.conf"
    scancel --user="$(id -un)" 2>/dev/null || true
    i=0
    while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
}

# munged's files (started by a cluster) are in $munge_state/munged, not in
# the cluster's directory: it may outlive the cluster that started it.
start_munge_locked() {
    m="$munge_state/munged"
    if [ -f "$m/munged.pid" ] && ! kill -0 "$(cat "$m/munged.pid")" 2>/dev/null; then
        rm -f "$m/munged.pid" # from a munged gone since: not ours to stop
    fi
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        mkdir -p "$m" /run/munge
        rm -f "$m/munge.key"
        dd if=/dev/urandom bs=1024 count=1 of="$m/munge.key" status=none
        chown -R munge:munge "$m" /run/munge
        chmod 700 "$m"
        chmod 400 "$m/munge.key"
        # (without the lock's descriptor: the daemon would hold the lock)
        runuser -u munge -- /usr/sbin/munged --key-file="$m/munge.key" \
            --pid-file="$m/munged.pid" --log-file="$m/munged.log" --seed-file="$m/munged.seed" 9>&-
        munge -n | unmunge >/dev/null
    fi
    printf '%s\n' "$dir" >"$(munge_user)"
}

start_munge() {
    with_munge_lock start_munge_locked
}

# Stop munged if a cluster started it and no other cluster (whose
# directory is still there) uses it.
stop_munge_locked() {
    rm -f "$(munge_user)"
    for user in "$munge_state"/users/*; do
        [ -f "$user" ] || continue
        if [ -d "$(cat "$user")" ]; then
            return 0 # still in use
        fi
        rm -f "$user" # a cluster removed without stop
    done
    pidfile="$munge_state/munged/munged.pid"
    if [ -f "$pidfile" ] && [ "$(cat "/proc/$(cat "$pidfile")/comm" 2>/dev/null)" != munged ]; then
        rm -f "$pidfile" # gone (its pid perhaps taken since): nothing to stop
    fi
    stop_pidfile "$pidfile"
}

stop_munge() {
    with_munge_lock stop_munge_locked
}

write_conf() {
    host=$(hostname -s)
    mem=$(($(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 / 2))
    slots=${OCPS_SLURM_SLOTS:-8}
    ctld_port=$(free_port)
    cat >"$dir/etc/slurm.conf" <<CONF
ClusterName=ocpstest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$(free_port "$ctld_port")
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SlurmdParameters=config_overrides
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=120
KillWait=2
Waittime=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$slots RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

wait_idle() {
    i=0
    while [ $i -lt 300 ]; do
        st=$(sinfo -h -N -o %t 2>/dev/null || true)
        [ "$st" = "idle" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    echo "slurm_cluster: node not idle (state '${st:-}'); see $dir/log" >&2
    return 1
}

case "$cmd" in
start)
    mkdir -p "$dir/etc" "$dir/state" "$dir/spool" "$dir/log"
    dir=$(cd "$dir" && pwd)
    start_munge
    write_conf
    export SLURM_CONF="$dir/etc/slurm.conf"
    /usr/sbin/slurmctld
    /usr/sbin/slurmd
    wait_idle
    echo "SLURM_CONF=$SLURM_CONF"
    ;;
stop)
    dir=$(cd "$dir" && pwd)
    cancel_jobs
    stop_pidfile "$dir/slurmd.pid"
    stop_pidfile "$dir/slurmctld.pid"
    stop_stepds
    stop_munge
    ;;
ctld-stop)
    stop_pidfile "$dir/slurmctld.pid"
    ;;
ctld-kill)
    if [ -f "$dir/slurmctld.pid" ]; then
        pid=$(cat "$dir/slurmctld.pid")
        kill -9 "$pid" 2>/dev/null || true
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
            sleep 0.05
            i=$((i + 1))
        done
        rm -f "$dir/slurmctld.pid"
    fi
    ;;
ctld-start)
    SLURM_CONF="$dir/etc/slurm.conf" /usr/sbin/slurmctld
    ;;
*)
    echo "slurm_cluster: unknown command $cmd" >&2
    exit 2
    ;;
esac
