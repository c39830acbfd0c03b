#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (needs root and Debian's slurm-wlm + munge), with
# its own config directory: an existing /etc/slurm/slurm.conf is never touched. Idempotent: returns
# at once when our node is already up. Used by tests/test_launcher.py::test_real_slurm_multirun and
# `make slurm-up`; clients need `export SLURM_CONF=/run/atlas-slurm/slurm.conf`; stop with stop.sh.
set -euo pipefail
dir=/run/atlas-slurm
export SLURM_CONF=$dir/slurm.conf
command -v slurmctld >/dev/null || { echo "slurm-wlm is not installed (apt-get install slurm-wlm munge)" >&2; exit 2; }
if [ -s "$SLURM_CONF" ] && sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed|allocated'; then exit 0; fi
if pgrep -x slurmctld >/dev/null && [ ! -s "$dir/slurmctld.pid" ]; then
  echo "a SLURM controller not started by this script is running; point SLURM_CONF at its config instead" >&2
  exit 2
fi

host=$(hostname -s)
node=$(slurmd -C | head -1)                                   # NodeName=… CPUs=… RealMemory=…
mem=$(( $(free -m | awk '/^Mem:/{print $2}') * 3 / 4 ))       # RealMemory must stay below free -m
node=$(sed -E "s/RealMemory=[0-9]+/RealMemory=${mem}/" <<<"$node")
mkdir -p "$dir/state" "$dir/spool" "$dir/log" /run/munge
cat > "$SLURM_CONF" <<CONF
ClusterName=atlas
SlurmctldHost=${host}
AuthType=auth/munge
SlurmUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
DefMemPerCPU=1024
${node} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF

if ! pgrep -x munged >/dev/null; then                         # a running munged (ours or the system's) is reused
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  runuser -u munge -- /usr/sbin/munged
  pgrep -x munged > "$dir/munged.pid"
fi
[ -s "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null || slurmctld -f "$SLURM_CONF"
[ -s "$dir/slurmd.pid" ] && kill -0 "$(cat "$dir/slurmd.pid")" 2>/dev/null || slurmd -f "$SLURM_CONF"

for _ in $(seq 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed'; then exit 0; fi
  scontrol update nodename="${host}" state=resume >/dev/null 2>&1 || true
  sleep 1
done
echo "SLURM node did not come up; see $dir/log/" >&2
sinfo >&2 || true
exit 1
