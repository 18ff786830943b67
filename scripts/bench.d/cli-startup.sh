#!/usr/bin/env bash
# scripts/bench.d/cli-startup.sh: the wall time of commands that touch no container
# (--help, ps, images, inspect, version) for ufs, `node -e 0` (the floor every ufs command
# pays) and podman's same commands, measured in interleaved rounds in the same run (called by
# scripts/bench; runs alone too). Temp store roots for both, removed on exit.
# Options: --runs N (default 30). Environment: UFS_BENCH_MAIN (the CLI, default bin/ufs.cjs).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
main=${UFS_BENCH_MAIN:-$repo/bin/ufs.cjs}
runs=30
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --runs=*) runs=${1#*=} ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cli-startup: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "cli-startup: --runs wants a positive number" >&2; exit 2; }
[ -f "$main" ] || { echo "cli-startup: $main not built (npm run build)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ufs-bench-cli.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/ufs
node "$main" --root "$root" inspect -f '{{.Id}}' busybox >/dev/null # the store and its busybox

podman=()
if command -v podman >/dev/null; then
  podman=(podman --root "$work/podman" --runroot "$work/podman-run" --storage-driver vfs)
  if ! node "$main" --root "$root" save busybox | "${podman[@]}" load -q >/dev/null 2>&1; then podman=(); fi
fi

# name|ufs command|podman command
rows=(
  "--help|node $main --help|${podman[*]:+${podman[*]} --help}"
  "version|node $main version|${podman[*]:+${podman[*]} version}"
  "ps|node $main --root $root ps|${podman[*]:+${podman[*]} ps}"
  "images|node $main --root $root images|${podman[*]:+${podman[*]} images}"
  "inspect busybox|node $main --root $root inspect busybox|${podman[*]:+${podman[*]} inspect busybox}"
)

# Interleaved rounds: each round runs every command once, so a change in the machine's load
# (it is shared) falls on all of them alike; the medians are compared. Times are taken by
# bash's $EPOCHREALTIME around each run (the same few microseconds of bash for every row).
cmds=("node -e 0")
for row in "${rows[@]}"; do
  IFS='|' read -r _ ufs pod <<<"$row"
  cmds+=("$ufs" "${pod:-true}")
done
declare -a samples
once() { # command -> ms (3 decimals) of one run
  local t0 t1
  t0=$EPOCHREALTIME
  $1 >/dev/null 2>&1 || true
  t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1000 }'
}
for ((w = 0; w < 3; w++)); do for c in "${cmds[@]}"; do once "$c" >/dev/null; done; done
for ((r = 0; r < runs; r++)); do
  for i in "${!cmds[@]}"; do samples[i]+="$(once "${cmds[i]}") "; done
done
median() { # samples -> median ms, rounded
  tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%d", m + 0.5 }'
}

floor=$(median "${samples[0]}")
echo "| command | ufs (ms) | ufs - node -e 0 (ms) | ufs / node -e 0 | podman (ms) | ufs / podman |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| node -e 0 | $floor | 0 | 1.00 | | |"
i=1
for row in "${rows[@]}"; do
  IFS='|' read -r name _ pod <<<"$row"
  u=$(median "${samples[i]}")
  if [ -n "$pod" ]; then
    p=$(median "${samples[i + 1]}")
    ratio=$(awk -v a="$u" -v b="$p" 'BEGIN { printf "%.2f", a / b }')
  else
    p="n/a (no podman)" ratio=
  fi
  echo "| $name | $u | $((u - floor)) | $(awk -v a="$u" -v b="$floor" 'BEGIN { printf "%.2f", a / b }') | $p | $ratio |"
  i=$((i + 2))
done
echo
echo "Medians of $runs interleaved rounds (3 warm-up rounds), same machine, same run; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
