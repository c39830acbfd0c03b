#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (needs root and Debian's slurm-wlm + munge).
# Idempotent: returns at once when the node is already up. Used by tests/test_slurm.py and
# `make slurm-up`; stop it with tests/slurm/stop.sh.
set -euo pipefail
command -v slurmctld >/dev/null || { echo "slurm-wlm is not installed (apt-get install slurm-wlm munge)" >&2; exit 2; }
if sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed|allocated'; then exit 0; fi

host=$(hostname -s)
node=$(slurmd -C | head -1)                                   # NodeName=… CPUs=… RealMemory=…
mem=$(( $(free -m | awk '/^Mem:/{print $2}') * 3 / 4 ))       # RealMemory must stay below free -m
node=$(sed -E "s/RealMemory=[0-9]+/RealMemory=${mem}/" <<<"$node")
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
cat > /etc/slurm/slurm.conf <<EOF
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
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
DefMemPerCPU=1024
${node} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF

if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd

for _ in $(seq 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed'; then exit 0; fi
  scontrol update nodename="${host}" state=resume >/dev/null 2>&1 || true
  sleep 1
done
echo "SLURM node did not come up; see /var/log/slurm/" >&2
sinfo >&2 || true
exit 1
