#!/usr/bin/env bash
# scripts/bench.d/commit.sh: `ufs commit` and `ufs diff` of a container that wrote 100 MiB in
# 1,000 files (random data, 10 dirs), against `podman commit` and `podman diff` of a podman
# container that ran the same command on the same busybox image, and `node -e 0` (a bare Node
# start, what `ufs diff` is measured against). Interleaved in one run; medians and ratios.
# Before each commit the previous run's image is removed and its layer collected (untimed), so
# every commit makes its layer anew. Podman gets runtime-peers.sh's containers.conf (runc,
# cgroupfs, ulimits within this shell's). Everything lives in a temp dir, removed on exit.
# Options: --runs N (default 5). Environment: UFS_BENCH_MAIN (the CLI, default bin/ufs.cjs, the `ufs` command).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
main=${UFS_BENCH_MAIN:-$repo/bin/ufs.cjs}
runs=5
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --runs=*) runs=${1#*=} ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "commit.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "commit.sh: --runs wants a positive number" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "commit.sh: run as root" >&2; exit 1; }
command -v podman >/dev/null || { echo "commit.sh: podman not installed (scripts/setup)" >&2; exit 1; }

name=commit.sh
. "$repo/scripts/bench.d/peer-env.sh"
# timed VAR CMD...: appends CMD's wall time (ms) to the array VAR; its output is dropped
timed() { local v=$1 t0 t1; shift; t0=$(now); "$@" >/dev/null; t1=$(now); eval "$v+=($(ms "$t0" "$t1"))"; }

progress "preparing busybox for both"
ufs run --rm busybox true
ufs save -o "$work/busybox.tar" busybox
pod load -q -i "$work/busybox.tar" >/dev/null

write='for d in 0 1 2 3 4 5 6 7 8 9; do mkdir -p /data/d$d; done
i=0
while [ $i -lt 1000 ]; do
  head -c 104858 /dev/urandom > /data/d$((i % 10))/f$i
  i=$((i + 1))
done'
progress "writing 100 MiB in 1,000 files (both)"
ufs run --name bench-commit busybox sh -c "$write"
pod run --name bench-commit --network none busybox sh -c "$write"
lines=$(ufs diff bench-commit | wc -l)
plines=$(pod diff bench-commit | wc -l)

ud=() pd=() nd=() uc=() pc=()
for i in $(seq 1 "$runs"); do
  progress "diff $i/$runs"
  timed ud ufs diff bench-commit
  timed pd pod diff bench-commit
  timed nd node -e 0
  progress "commit $i/$runs"
  ufs rmi -f bench:commit >/dev/null 2>&1 || true
  ufs image prune -f >/dev/null 2>&1 || true
  pod rmi -f bench:commit >/dev/null 2>&1 || true
  sync
  timed uc ufs commit bench-commit bench:commit
  sync
  timed pc pod commit -q bench-commit bench:commit
done
[ -t 2 ] && printf '\r%60s\r' '' >&2 || true
udm=$(printf '%s\n' "${ud[@]}" | median); pdm=$(printf '%s\n' "${pd[@]}" | median); ndm=$(printf '%s\n' "${nd[@]}" | median)
ucm=$(printf '%s\n' "${uc[@]}" | median); pcm=$(printf '%s\n' "${pc[@]}" | median)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
printf '| %-62s | %10s | %10s | %8s |\n' "commit and diff vs podman (median of $runs, interleaved)" 'ufs' 'podman' 'ufs/pod'
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 1 64))" "$(printf -- '-%.0s' $(seq 1 12))" "$(printf -- '-%.0s' $(seq 1 12))" "$(printf -- '-%.0s' $(seq 1 10))"
printf '| %-62s | %7s ms | %7s ms | %8s |\n' "commit of a container that wrote 100 MiB in 1,000 files" "$ucm" "$pcm" "$(ratio "$ucm" "$pcm")"
printf '| %-62s | %7s ms | %7s ms | %8s |\n' "diff of it ($lines / $plines lines)" "$udm" "$pdm" "$(ratio "$udm" "$pdm")"
printf '| %-62s | %7s ms | %10s | %8s |\n' "node -e 0 (ufs diff over it: $((udm - ndm)) ms)" "$ndm" '' ''
