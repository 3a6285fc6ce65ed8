#!/bin/bash
# A `segloss compare` grid in N shards at once, then merged:
#
#   scripts/parallel-compare.sh N [--sshloginfile FILE] [--jobs J] [compare flags...]
#
# Shard k runs `segloss compare --shard k/N --out OUT/shard-k [flags]`, with
# OUT the --out of the flags (default: results); when all have succeeded,
# `segloss merge --out OUT OUT/shard-1 ... OUT/shard-N` writes the summary
# and report into OUT. The shards run with GNU parallel when it is
# installed, else with `xargs -P` (local only). --jobs J: at most J shards
# at a time (default N). --sshloginfile FILE (GNU parallel only): run the
# shards on the hosts of FILE; OUT and this directory must then be on a
# shared file system and the command installed on every host. SEGLOSS is the
# command (default: segloss; e.g. SEGLOSS="lua5.4 bin/segloss" in the
# source tree). Give each shard --threads T so that J x T fits the cores.
# Run it again after a failure: finished runs are skipped.
set -euo pipefail

usage() {
  echo "usage: scripts/parallel-compare.sh N [--sshloginfile FILE] [--jobs J] [segloss compare flags...]" >&2
  exit 2
}
[[ $# -ge 1 && $1 =~ ^[1-9][0-9]*$ ]] || usage
n=$1
shift

out=results
jobs=$n
sshloginfile=
flags=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) [[ $# -ge 2 ]] || usage; out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --jobs) [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || usage; jobs=$2; shift 2 ;;
    --sshloginfile) [[ $# -ge 2 ]] || usage; sshloginfile=$2; shift 2 ;;
    --shard|--shard=*)
      echo "parallel-compare.sh: --shard is set per shard by this script" >&2
      exit 2 ;;
    *) flags+=("$1"); shift ;;
  esac
done

read -r -a segloss <<< "${SEGLOSS:-segloss}"
mkdir -p "$out"

# {} is the shard number k, in both runners
shard=("${segloss[@]}" compare "${flags[@]}" --shard "{}/$n" --out "$out/shard-{}")
if command -v parallel > /dev/null 2>&1 && parallel --version 2>/dev/null | grep -q "GNU parallel"; then
  echo "parallel-compare.sh: $n shards with GNU parallel, $jobs at a time" >&2
  remote=()
  if [[ -n $sshloginfile ]]; then remote=(--sshloginfile "$sshloginfile" --workdir "$PWD" --env SEGLOSS); fi
  status=0
  seq 1 "$n" | parallel --jobs "$jobs" --halt never --line-buffer "${remote[@]}" -q "${shard[@]}" || status=$?
else
  if [[ -n $sshloginfile ]]; then
    echo "parallel-compare.sh: --sshloginfile needs GNU parallel, which is not installed" >&2
    exit 2
  fi
  echo "parallel-compare.sh: $n shards with xargs -P $jobs (GNU parallel is not installed)" >&2
  status=0
  seq 1 "$n" | xargs -P "$jobs" -I{} "${shard[@]}" || status=$?
fi
if [[ $status -ne 0 ]]; then
  echo "parallel-compare.sh: a shard failed (status $status); not merging. Run again to finish the missing runs." >&2
  exit 1
fi

dirs=()
for k in $(seq 1 "$n"); do dirs+=("$out/shard-$k"); done
"${segloss[@]}" merge --out "$out" "${dirs[@]}"
