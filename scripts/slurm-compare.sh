#!/bin/bash
# One shard of a `segloss compare` grid per task of a Slurm job array; the
# merge runs as a second job once every task has succeeded.
#
#   OUT=results jid=$(sbatch --parsable --array=1-4 scripts/slurm-compare.sh --losses bce,dice,iou --seeds 1,2,3)
#   sbatch --dependency=afterok:$jid --wrap "segloss merge --out results results/shard-*"
#
# Task k of the array runs `segloss compare --shard k/N --out $OUT/shard-k`
# with the flags given here (N = the number of tasks). The array must be
# 1-N (shard numbers start at 1); --array on the sbatch command line
# overrides the default below. OUT (default: results) and SEGLOSS (the
# command, default: segloss; e.g. SEGLOSS="lua5.4 bin/segloss" in the
# source tree) come from the environment, which sbatch passes on. Threads:
# the task's --cpus-per-task. A task that is run again skips the runs it
# has finished.
#
# Without Slurm, bash runs a task the same way (docs/experiment.md):
#   SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_COUNT=4 bash scripts/slurm-compare.sh --quick
#
#SBATCH --job-name=segloss-compare
#SBATCH --array=1-4
#SBATCH --cpus-per-task=4
#SBATCH --output=segloss-compare-%A_%a.log
set -euo pipefail

k=${SLURM_ARRAY_TASK_ID:-}
n=${SLURM_ARRAY_TASK_COUNT:-}
if [[ ! $k =~ ^[0-9]+$ || ! $n =~ ^[0-9]+$ || $k -lt 1 || $k -gt $n ]]; then
  echo "slurm-compare.sh: run it as a job array (sbatch --array=1-N), or set SLURM_ARRAY_TASK_ID=k and" \
    "SLURM_ARRAY_TASK_COUNT=N with 1 <= k <= N; got '$k' and '$n'" >&2
  exit 2
fi
out=${OUT:-results}
read -r -a segloss <<< "${SEGLOSS:-segloss}"
threads=()
if [[ -n ${SLURM_CPUS_PER_TASK:-} ]]; then threads=(--threads "$SLURM_CPUS_PER_TASK"); fi

exec "${segloss[@]}" compare "${threads[@]}" "$@" --shard "$k/$n" --out "$out/shard-$k"
