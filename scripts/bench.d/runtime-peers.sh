#!/usr/bin/env bash
# scripts/bench.d/runtime-peers.sh: `ufs run --rm --network MODE busybox true` against
# `podman run --rm --network MODE busybox true` (podman with runc, the same busybox image) for
# MODE none, bridge and host, all interleaved in one run: medians and their ratios. Then what a
# running (detached) container keeps in memory: its own processes (ufs: the monitor, which
# serves the union on its own event loop, and runc while it runs; podman: conmon), as RSS and as
# anonymous memory (RssAnon: RSS less the file-backed pages, such as node's own binary, that
# every process running that binary shares).
# Podman gets a containers.conf of this bench's own: runtime runc, cgroupfs, file events,
# default_ulimits for nofile/nproc no higher than this shell's hard limits (it fails to start
# containers here otherwise). Everything lives in a temp dir, removed on exit.
# Options: --runs N (default 10), --modes LIST (default none,bridge,host).
# Environment: UFS_BENCH_MAIN (the CLI, default bin/ufs.cjs, the `ufs` command).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
main=${UFS_BENCH_MAIN:-$repo/bin/ufs.cjs}
runs=10
modes=none,bridge,host
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --runs=*) runs=${1#*=} ;;
    --modes) modes=${2:?--modes needs a list}; shift ;;
    --modes=*) modes=${1#*=} ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "runtime-peers: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "runtime-peers: --runs wants a positive number" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "runtime-peers: run as root" >&2; exit 1; }
command -v podman >/dev/null || { echo "runtime-peers: podman not installed (scripts/setup)" >&2; exit 1; }

name=runtime-peers
. "$repo/scripts/bench.d/peer-env.sh"

# The same image for both: ufs's built-in busybox, saved and loaded into podman.
progress "preparing busybox for both"
ufs run --rm busybox true
ufs save -o "$work/busybox.tar" busybox
pod load -q -i "$work/busybox.tar" >/dev/null
mkdir -p "$work/networks"
IFS=, read -r -a mode_list <<<"$modes"
for m in "${mode_list[@]}"; do
  case $m in none|bridge|host) ;; *) echo "runtime-peers: unknown mode $m (none, bridge, host)" >&2; exit 2 ;; esac
  ufs run --rm --network "$m" busybox true # warm: the first bridge run creates the network
  pod run --rm --network "$m" busybox true
done

declare -A u p
for i in $(seq 1 "$runs"); do
  for m in "${mode_list[@]}"; do
    progress "run $i/$runs ($m)"
    t0=$(now); ufs run --rm --network "$m" busybox true; t1=$(now); u[$m]+="$(ms "$t0" "$t1") "
    t0=$(now); pod run --rm --network "$m" busybox true; t1=$(now); p[$m]+="$(ms "$t0" "$t1") "
  done
done
load=$(cut -d' ' -f1-3 /proc/loadavg)

# Memory of one running container's own processes (not the container's command): kB of
# VmRSS and of RssAnon, summed over the pids given.
mem() { local f=$1 q; shift; for q in "$@"; do awk -v f="$f" '$1 == f":" {print $2}' "/proc/$q/status" 2>/dev/null; done | awk '{s+=$1} END {printf "%.1f", s/1024}'; }
progress "memory of a running container"
id=$(ufs run -d --network none busybox sleep 300)
sleep 1 # settled: the monitor's start-up garbage collected
rec=$UFS_ROOT/containers/$id/config.json
pids=$(node -e 'const s=JSON.parse(require("fs").readFileSync(process.argv[1])).State; console.log([s.MonitorPid, s.InitPid].filter(Boolean).join(" "))' "$rec")
for f in "$UFS_RUN_DIR"/mounts/*.json; do pids="$pids $(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).pid)' "$f")"; done
pids=$(printf '%s\n' $pids | sort -u | tr '\n' ' ')
urss=$(mem VmRSS $pids) uanon=$(mem RssAnon $pids)
unames=$(for q in $pids; do cat "/proc/$q/comm" 2>/dev/null; done | sort | uniq -c | awk '{printf "%s%s%s", (NR>1?"+":""), ($1>1?$1"x":""), $2}')
pid=$(pod run -d --network none busybox sleep 300)
conmon=$(pod inspect -f '{{.State.ConmonPid}}' "$pid")
sleep 1
prss=$(mem VmRSS "$conmon") panon=$(mem RssAnon "$conmon")
[ -t 2 ] && printf '\r%60s\r' '' >&2 || true

ratio() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { printf f, (b > 0 ? a / b : 0) }'; }
printf '| %-62s | %10s | %10s | %8s |\n' "runtime vs podman (runc, same image; load $load)" 'ufs' 'podman' 'ufs/pod'
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 1 64))" "$(printf -- '-%.0s' $(seq 1 12))" "$(printf -- '-%.0s' $(seq 1 12))" "$(printf -- '-%.0s' $(seq 1 10))"
for m in "${mode_list[@]}"; do
  um=$(printf '%s\n' ${u[$m]} | median) pm=$(printf '%s\n' ${p[$m]} | median)
  printf '| %-62s | %7s ms | %7s ms | %8s |\n' "run --rm --network $m busybox true (median of $runs)" "$um" "$pm" "$(ratio "$um" "$pm" %.2f)"
done
printf '| %-62s | %7s MB | %7s MB | %8s |\n' "RSS of a running container's own processes ($unames)" "$urss" "$prss" "$(ratio "$urss" "$prss" %.1f)"
printf '| %-62s | %7s MB | %7s MB | %8s |\n' "  of which anonymous (RssAnon; the rest is shared file pages)" "$uanon" "$panon" "$(ratio "$uanon" "$panon" %.1f)"
