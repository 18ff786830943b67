#!/usr/bin/env bash
# scripts/bench.d/cli-startup.sh: the wall time of commands that touch no container
# (--help, ps, images, inspect, version) for ufs, `node -e 0` (the floor every ufs command
# pays) and podman's same commands, measured by hyperfine in the same run (called by
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
command -v hyperfine >/dev/null || { echo "cli-startup: needs hyperfine" >&2; exit 1; }
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

median() { # hyperfine's exported JSON -> median ms
  node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).results[0];process.stdout.write(String(Math.round(r.median*1000)))' "$1"
}
measure() { # command -> median ms
  hyperfine -N --style none -w 3 -r "$runs" --export-json "$work/h.json" "$1" >/dev/null 2>&1 && median "$work/h.json"
}

floor=$(measure "node -e 0")
echo "| command | ufs (ms) | ufs - node -e 0 (ms) | podman (ms) | ufs / podman |"
echo "|---|---:|---:|---:|---:|"
echo "| node -e 0 | $floor | 0 | | |"
for row in "${rows[@]}"; do
  IFS='|' read -r name ufs pod <<<"$row"
  u=$(measure "$ufs")
  if [ -n "$pod" ]; then
    p=$(measure "$pod")
    ratio=$(awk -v a="$u" -v b="$p" 'BEGIN { printf "%.2f", a / b }')
  else
    p="n/a (no podman)" ratio=
  fi
  echo "| $name | $u | $((u - floor)) | $p | $ratio |"
done
echo
echo "Medians of $runs runs each (hyperfine -N, 3 warm-ups), same machine, same run."
