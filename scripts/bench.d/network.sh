#!/usr/bin/env bash
# scripts/bench.d/network.sh: what a network mode adds to a container's start, ufs against
# podman in the same run: `run --rm --network bridge|none|host busybox true`, median of N
# runs after one warm-up round, interleaved, wall time and CPU time of every process the
# command started, and ufs/podman ratios. Called by scripts/bench (extras).
# ufs uses a temp store whose default bridge has its own name and a free /24 (never ufs0);
# podman a temp --root/--runroot with the same busybox image (ufs save | podman load) on its
# default network, with rlimits this VM allows. Options: --runs N (default 10). Environment: UFS_BENCH_MAIN (the CLI).
# CPU rows: podman's conmon lives in a cgroup of its own, so the teardown it starts
# (`podman container cleanup`) is not in podman's CPU; ufs's teardown is in ufs's.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
main=${UFS_BENCH_MAIN:-$repo/bin/ufs.cjs}
runs=10
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --runs=*) runs=${1#*=} ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "scripts/bench.d/network.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "network.sh: --runs wants a positive number" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "network.sh: run as root" >&2; exit 1; }
[ -f "$main" ] || { echo "network.sh: $main not built (npm run build)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ufs-bench-network.XXXXXX")
export UFS_ROOT=$work/root UFS_RUN_DIR=$work/run
mkdir -p "$UFS_RUN_DIR"
ufs() { node "$main" "$@"; }
have_podman=0
command -v podman >/dev/null 2>&1 && have_podman=1
pod() { podman --root "$work/podman/root" --runroot "$work/podman/run" --cgroup-manager cgroupfs --events-backend none "$@"; }
# podman's default rlimits (nofile 1048576, nproc 32768) are refused in this VM: give ones it takes.
pod_limits=(--ulimit "nofile=1024:$(ulimit -Hn)" --ulimit nproc=1024:1024)

. "$(dirname "${BASH_SOURCE[0]}")/workdir.sh"
cleanup() {
  local rc=$? ids m
  trap - EXIT INT TERM
  if [ -d "$UFS_ROOT/containers" ]; then
    ids=$(ls "$UFS_ROOT/containers" | grep -E '^[0-9a-f]{64}$' || true)
    [ -z "$ids" ] || ufs rm -f $ids >/dev/null 2>&1 || true
  fi
  # whatever a failed run left attached in this store (namespaces, veths, rules, leases)
  node --input-type=module -e "
    const { Store } = await import('$repo/dist/src/store/index.js');
    const N = await import('$repo/dist/src/network/index.js');
    await N.reconcile(await Store.open(process.env.UFS_ROOT), () => false);" >/dev/null 2>&1 || true
  if [ "$have_podman" = 1 ] && [ -d "$work/podman" ]; then
    pod rm -af >/dev/null 2>&1 || true
    pod rmi -af >/dev/null 2>&1 || true
    for m in $(awk -v p="$work/podman/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m" 2>/dev/null || true; done
  fi
  remove_work_dir network.sh "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s%N; }
progress() { [ -t 2 ] && printf '\rnetwork.sh: %s   ' "$*" >&2 || true; }
median() { sort -n | awk '{a[NR]=$1} END { if (NR % 2) print a[(NR+1)/2]; else printf "%.0f", (a[NR/2] + a[NR/2+1]) / 2 }'; }

# This store's default bridge: a unique name and the first /24 of 10.93.0.0/16 the host does not route.
node --input-type=module -e "
  const { Store } = await import('$repo/dist/src/store/index.js');
  const N = await import('$repo/dist/src/network/index.js');
  const { execFileSync } = await import('node:child_process');
  const used = execFileSync('ip', ['-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' });
  let subnet;
  for (let i = 0; i < 256 && !subnet; i++) if (!used.includes('10.93.' + i + '.')) subnet = '10.93.' + i + '.0/24';
  await N.ensureDefaultNetwork(await Store.open(process.env.UFS_ROOT), { bridge: 'ufsb' + process.pid, subnet });"

# one_run CMD...: the time of one run in ms, or n/a if it fails.
one_run() {
  local t0 t1
  t0=$(now); "$@" >/dev/null 2>"$work/err" || { echo "n/a"; return; }; t1=$(now)
  echo "$(( (t1 - t0) / 1000000 ))"
}
# cpu_run CMD...: the CPU time in ms that CMD and every process it started used (its own
# cpuacct cgroup; containers leave it for their runtime's cgroups under both tools), which
# a busy machine inflates far less than wall time. Prints "WALL CPU", or "n/a n/a".
cg_root=/sys/fs/cgroup/cpuacct
cpu_run() {
  local t0 t1 cg=$cg_root/ufs-bench-net-$$ usage rc=0
  if [ ! -w "$cg_root" ]; then echo "$(one_run "$@") n/a"; return; fi
  mkdir -p "$cg"
  t0=$(now)
  bash -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' _ "$cg" "$@" >/dev/null 2>"$work/err" || rc=1
  t1=$(now)
  usage=$(cat "$cg/cpuacct.usage")
  # a process still in it (a union server on its way out) is waited for, then the group goes
  for _ in $(seq 1 50); do [ -s "$cg/cgroup.procs" ] || break; sleep 0.1; done
  usage=$(cat "$cg/cpuacct.usage"); rmdir "$cg" 2>/dev/null || true
  [ "$rc" = 0 ] || { echo "n/a n/a"; return; }
  echo "$(( (t1 - t0) / 1000000 )) $(( usage / 1000000 ))"
}
# median of the numbers on stdin, n/a if any run failed
median_or_na() { local v; v=$(cat); if grep -q n/a <<<"$v"; then echo n/a; else median <<<"$v"; fi; }

progress "busybox:latest"
ufs run --rm --network none busybox true
if [ "$have_podman" = 1 ]; then
  progress "podman load"
  ufs save -o "$work/busybox.tar" busybox:latest
  pod load -q -i "$work/busybox.tar" >/dev/null
fi

# Interleaved: each round runs every (tool, mode) once, so a change of load on this shared
# machine hits both tools alike; one warm-up round first.
declare -A U P UT PT UC PC UCT PCT
for round in $(seq 0 "$runs"); do
  for mode in bridge none host; do
    progress "round $round/$runs --network $mode"
    read -r u uc < <(cpu_run node "$main" run --rm --network "$mode" busybox true)
    [ "$round" = 0 ] || { UT[$mode]+="$u"$'\n'; UCT[$mode]+="$uc"$'\n'; }
    if [ "$have_podman" = 1 ]; then
      read -r p pc < <(cpu_run podman --root "$work/podman/root" --runroot "$work/podman/run" --cgroup-manager cgroupfs --events-backend none run --rm "${pod_limits[@]}" --network "$mode" busybox:latest true)
      [ "$round" = 0 ] || { PT[$mode]+="$p"$'\n'; PCT[$mode]+="$pc"$'\n'; }
    fi
  done
done
for mode in bridge none host; do
  U[$mode]=$(printf '%s' "${UT[$mode]}" | median_or_na); UC[$mode]=$(printf '%s' "${UCT[$mode]}" | median_or_na)
  if [ "$have_podman" = 1 ]; then P[$mode]=$(printf '%s' "${PT[$mode]}" | median_or_na); PC[$mode]=$(printf '%s' "${PCT[$mode]}" | median_or_na); else P[$mode]=n/a; PC[$mode]=n/a; fi
done
[ -t 2 ] && printf '\r%60s\r' '' >&2 || true

ratio() { [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ && $2 -gt 0 ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || echo '-'; }
printf '| %-46s | %10s | %10s | %10s |\n' "run --rm busybox true (median of $runs)" 'ufs' 'podman' 'ufs/podman'
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 1 48))" "$(printf -- '-%.0s' $(seq 1 12))" "$(printf -- '-%.0s' $(seq 1 12))" "$(printf -- '-%.0s' $(seq 1 12))"
rows() { # rows WHAT UFS_ARRAY PODMAN_ARRAY
  local -n uu=$2 pp=$3
  local mode
  for mode in bridge none host; do
    printf '| %-46s | %7s ms | %7s ms | %10s |\n' "$1, --network $mode" "${uu[$mode]}" "${pp[$mode]}" "$(ratio "${uu[$mode]}" "${pp[$mode]}")"
  done
  if [[ ${uu[bridge]} =~ ^[0-9]+$ && ${uu[none]} =~ ^[0-9]+$ && ${pp[bridge]} =~ ^[0-9]+$ && ${pp[none]} =~ ^[0-9]+$ ]]; then
    printf '| %-46s | %7s ms | %7s ms | %10s |\n' "$1, what the bridge adds (bridge - none)" "$(( uu[bridge] - uu[none] ))" "$(( pp[bridge] - pp[none] ))" "$(ratio "$(( uu[bridge] - uu[none] ))" "$(( pp[bridge] - pp[none] ))")"
  fi
}
rows wall U P
rows CPU UC PC
printf '\nload average during the run: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
