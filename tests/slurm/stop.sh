#!/usr/bin/env bash
# Stop the one-node SLURM cluster started by tests/slurm/start.sh.
pkill -x slurmd; pkill -x slurmctld; pkill -x munged
exit 0
