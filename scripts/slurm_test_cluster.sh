#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the test suite (tests/slurm/) and for
# trying `launcher=slurm` without a cluster: munge, MariaDB, slurmdbd (accounting, so `sacct`
# works as on a real cluster, and submitit can see cancelled jobs), slurmctld and slurmd, each
# with its own key, config, data, logs and port under DIR. Nothing system-wide is configured;
# the Debian packages slurm-wlm, slurmdbd, munge and mariadb-server are installed if missing
# (root, or sudo). SlurmUser is the caller; ProctrackType=linuxproc and TaskPlugin=none need no
# cgroups, so it works in an unprivileged container.
#   scripts/slurm_test_cluster.sh start DIR [PORT]   prints `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm_test_cluster.sh stop DIR           cancels every job, stops the daemons
# PORT (default 16817) to PORT+3 are slurmctld's, slurmd's, slurmdbd's and MariaDB's: give each
# cluster its own.
# Two partitions: `debug` (default, no time limit) and `short` (2 minutes, for time-limit tests).
# One pretend GPU (its device file is /dev/null: no job can compute on it), so that SLURM
# schedules GPU requests as on a GPU node: a whole GPU (--gpus-per-node=1) or some of its 4
# shards (--gres=shard:N); gres.conf beside slurm.conf. (SLURM allows shards or MPS on a node,
# not both: MPS is not configured.)
set -euo pipefail
action=${1:?usage: $0 start|stop DIR [PORT]}
dir=${2:?usage: $0 start|stop DIR [PORT]}
port=${3:-16817}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf="$dir/slurm.conf"

stop_pidfile() {
    local file=$1 pid
    [[ -f "$file" ]] || return 0
    pid=$(cat "$file")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}

if [[ "$action" == stop ]]; then
    if [[ -f "$conf" ]]; then
        SLURM_CONF="$conf" scancel --full --user "$(id -un)" 2>/dev/null || true
    fi
    stop_pidfile "$dir/slurmd.pid"
    stop_pidfile "$dir/slurmctld.pid"
    stop_pidfile "$dir/slurmdbd.pid"
    stop_pidfile "$dir/db/pid"
    stop_pidfile "$dir/munge/pid"
    exit 0
fi
[[ "$action" == start ]] || { echo "$0: unknown action $action (start or stop)" >&2; exit 2; }

fail() {  # a start that fails leaves nothing running
    echo "$0: $*" >&2
    "$0" stop "$dir" >/dev/null 2>&1 || true
    exit 1
}
trap 'fail "a step failed (line $LINENO); logs in $dir/log"' ERR

PATH="$PATH:/usr/sbin:/sbin"
if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null \
    || ! command -v munged >/dev/null || ! command -v mariadbd >/dev/null; then
    sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo=sudo
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        slurm-wlm slurmdbd munge mariadb-server >/dev/null; } \
        || { echo "$0: could not install slurm-wlm, slurmdbd, munge and mariadb-server" >&2; exit 1; }
fi

mkdir -p "$dir"/{state,spool,log,munge}
chmod 700 "$dir/munge"
if [[ ! -f "$dir/munge/key" ]]; then
    head -c 1024 /dev/urandom >"$dir/munge/key"
    chmod 400 "$dir/munge/key"
fi
# --force: munged refuses to run as root or with a key it thinks others can read otherwise
munged --force --socket="$dir/munge/sock" --key-file="$dir/munge/key" \
    --pid-file="$dir/munge/pid" --log-file="$dir/munge/log" --seed-file="$dir/munge/seed"

node=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
user=$(id -un)

# MariaDB for slurmdbd, on 127.0.0.1:PORT+3, its data under DIR/db; a session of its own, as the
# other daemons (which fork into one), so that whoever kills the caller's group spares it
if [[ ! -d "$dir/db/data/mysql" ]]; then
    mkdir -p "$dir/db"
    mariadb-install-db --no-defaults --datadir="$dir/db/data" --user="$user" \
        --auth-root-authentication-method=normal --skip-test-db >"$dir/log/db-install.log" 2>&1
fi
setsid mariadbd --no-defaults --datadir="$dir/db/data" --socket="$dir/db/sock" --user="$user" \
    --bind-address=127.0.0.1 --port=$((port + 3)) --pid-file="$dir/db/pid" \
    --log-error="$dir/log/mariadb.log" >>"$dir/log/mariadb.out" 2>&1 &
for _ in $(seq 60); do
    mariadb --no-defaults -S "$dir/db/sock" -uroot -e "select 1" >/dev/null 2>&1 && break
    sleep 0.5
done
mariadb --no-defaults -S "$dir/db/sock" -uroot -e "
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'lmexp';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" \
    || fail "MariaDB did not start; see $dir/log/mariadb.log"
cat >"$dir/slurmdbd.conf" <<CONF
AuthType=auth/munge
AuthInfo=socket=$dir/munge/sock
DbdHost=$node
DbdPort=$((port + 2))
SlurmUser=$user
PidFile=$dir/slurmdbd.pid
LogFile=$dir/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$((port + 3))
StorageUser=slurm
StoragePass=lmexp
StorageLoc=slurm_acct_db
CONF
chmod 600 "$dir/slurmdbd.conf"
cat >"$conf" <<CONF
ClusterName=lmexp$port
SlurmctldHost=$node
SlurmUser=$user
SlurmdUser=$user
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$node
AccountingStoragePort=$((port + 2))
AccountingStorageTRES=gres/gpu,gres/shard
AccountingStoragePass=$dir/munge/sock
MinJobAge=600
KillWait=30
InactiveLimit=0
Waittime=0
GresTypes=gpu,shard
NodeName=$node CPUs=$cpus RealMemory=$mem_mb Gres=gpu:1,shard:4 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
PartitionName=short Nodes=$node MaxTime=2 State=UP
CONF
cat >"$dir/gres.conf" <<CONF
Name=gpu File=/dev/null
Name=shard Count=4
CONF
export SLURM_CONF="$conf"
slurmdbd  # reads slurmdbd.conf beside $SLURM_CONF
for _ in $(seq 60); do
    sacctmgr -n show cluster >/dev/null 2>&1 && break
    sleep 0.5
done
sacctmgr -n show cluster >/dev/null || fail "slurmdbd did not answer; see $dir/log/slurmdbd.log"
slurmctld -f "$conf"
slurmd -f "$conf"
for _ in $(seq 60); do
    if [[ "$(sinfo -h -n "$node" -o %T 2>/dev/null | head -1)" == idle ]]; then
        echo "export SLURM_CONF=$conf"
        exit 0
    fi
    sleep 0.5
done
tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
fail "the node did not come up idle in 30 s (logs above)"
