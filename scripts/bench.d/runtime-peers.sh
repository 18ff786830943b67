#!/usr/bin/env bash
# scripts/bench.d/runtime-peers.sh: `ufs run --rm busybox true` against `podman run --rm
# --network none busybox true` (podman with runc, the same busybox image), interleaved in one
# run, medians and their ratio; then what a running container keeps in memory (RSS of its
# own processes: ufs's monitor, union server and runc; podman's conmon).
# Podman gets a containers.conf of this bench's own: runtime runc, cgroupfs, file events,
# default_ulimits for nofile/nproc no higher than this shell's hard limits (it fails to start
# containers here otherwise). Everything lives in a temp dir, removed on exit.
# Options: --runs N (default 10). Environment: UFS_BENCH_MAIN (the CLI, default dist/).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
main=${UFS_BENCH_MAIN:-$repo/dist/src/cli/main.js}
runs=10
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --runs=*) runs=${1#*=} ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "runtime-peers: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "runtime-peers: --runs wants a positive number" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "runtime-peers: run as root" >&2; exit 1; }
command -v podman >/dev/null || { echo "runtime-peers: podman not installed (scripts/setup)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ufs-bench-peers.XXXXXX")
export UFS_ROOT=$work/ufs UFS_RUN_DIR=$work/run
mkdir -p "$UFS_RUN_DIR"
ufs() { node "$main" "$@"; }
hard_nofile=$(ulimit -Hn); hard_nproc=$(ulimit -Hu)
# At most the hard limit (nproc at most 4096: runc could not set it to this shell's hard
# limit here, without CAP_SYS_RESOURCE).
cap() { if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi; }
cat > "$work/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$(cap "$hard_nofile" 1048576):$(cap "$hard_nofile" 1048576)", "nproc=$(cap "$hard_nproc" 4096):$(cap "$hard_nproc" 4096)"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF=$work/containers.conf
pod() { podman --root "$work/podman" --runroot "$work/podman-run" --storage-driver overlay "$@"; }

cleanup() {
  local rc=$? ids m
  trap - EXIT INT TERM
  pod rm -af >/dev/null 2>&1 || true
  pod system reset -f >/dev/null 2>&1 || true
  if [ -d "$UFS_ROOT/containers" ]; then
    ids=$(ls "$UFS_ROOT/containers" | grep -E '^[0-9a-f]{64}$' || true)
    [ -z "$ids" ] || ufs rm -f $ids >/dev/null 2>&1 || true
  fi
  for m in $(awk -v p="$work/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    fusermount -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  if awk -v p="$work/" 'index($5, p) == 1 {f=1} END {exit !f}' /proc/self/mountinfo; then
    echo "runtime-peers: mounts remain under $work; not removing it" >&2
  else
    rm -rf --one-file-system "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) / 1e6 }'; }
median() { sort -n | awk '{a[NR]=$1} END { if (NR % 2) print a[(NR+1)/2]; else printf "%.0f", (a[NR/2] + a[NR/2+1]) / 2 }'; }
progress() { [ -t 2 ] && printf '\rruntime-peers: %s   ' "$*" >&2 || true; }

# The same image for both: ufs's built-in busybox, saved and loaded into podman.
progress "preparing busybox for both"
ufs run --rm busybox true
ufs save -o "$work/busybox.tar" busybox
pod load -q -i "$work/busybox.tar" >/dev/null
pod run --rm --network none busybox true

u=() p=()
for i in $(seq 1 "$runs"); do
  progress "run $i/$runs"
  t0=$(now); ufs run --rm busybox true; t1=$(now); u+=("$(ms "$t0" "$t1")")
  t0=$(now); pod run --rm --network none busybox true; t1=$(now); p+=("$(ms "$t0" "$t1")")
done
um=$(printf '%s\n' "${u[@]}" | median)
pm=$(printf '%s\n' "${p[@]}" | median)

# Memory of one running container's own processes (not the container's command).
progress "memory of a running container"
id=$(ufs run -d busybox sleep 300)
rec=$UFS_ROOT/containers/$id/config.json
pids=$(node -e 'const s=JSON.parse(require("fs").readFileSync(process.argv[1])).State; console.log([s.MonitorPid, s.InitPid].filter(Boolean).join(" "))' "$rec")
for f in "$UFS_RUN_DIR"/mounts/*.json; do pids="$pids $(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).pid)' "$f")"; done
urss=$(for q in $pids; do awk '/^VmRSS/ {print $2}' "/proc/$q/status" 2>/dev/null; done | awk '{s+=$1} END {printf "%.1f", s/1024}')
pid=$(pod run -d --network none busybox sleep 300)
conmon=$(pod inspect -f '{{.State.ConmonPid}}' "$pid")
prss=$(awk '/^VmRSS/ {printf "%.1f", $2/1024}' "/proc/$conmon/status")
[ -t 2 ] && printf '\r%60s\r' '' >&2 || true

ratio=$(awk -v a="$um" -v b="$pm" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
mratio=$(awk -v a="$urss" -v b="$prss" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
printf '| %-62s | %10s | %10s | %8s |\n' 'runtime vs podman (runc, same image)' 'ufs' 'podman' 'ufs/pod'
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 1 64))" "$(printf -- '-%.0s' $(seq 1 12))" "$(printf -- '-%.0s' $(seq 1 12))" "$(printf -- '-%.0s' $(seq 1 10))"
printf '| %-62s | %7s ms | %7s ms | %8s |\n' "run --rm busybox true (median of $runs, interleaved)" "$um" "$pm" "$ratio"
printf '| %-62s | %7s MB | %7s MB | %8s |\n' 'RSS of a running container'"'"'s own processes' "$urss" "$prss" "$mratio"
