#!/usr/bin/env bash
# Stop the daemons tests/slurm/start.sh started (by their pid files), and nothing else.
dir=/run/atlas-slurm
for daemon in slurmd slurmctld munged; do
  [ -s "$dir/$daemon.pid" ] && kill "$(cat "$dir/$daemon.pid")" 2>/dev/null
  rm -f "$dir/$daemon.pid"
done
exit 0
